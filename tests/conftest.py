"""Test harness: no real network, all state in a temp dir, offline everything.

* Outbound connections to anything but loopback (or a Unix socket) raise immediately.
* One autouse fixture points the data dir at a fresh temp folder and clears settings caches.
* Model files (ONNX embedding model, tiktoken files) come from the install (``make install``).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.db_fixtures import db_url, history  # noqa: F401  (fixtures)
from tests.langsmith_recorder import langsmith_recorder  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
REAL_NOTES = ROOT / "knowledge" / "ml-interview-notes.txt"

# Environment for the whole run, set before any test module imports chromadb/chainlit/langsmith.
os.environ.update(
    {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
        "LANGSMITH_TRACING": "false",
        "LANGCHAIN_TRACING_V2": "false",
        "CHAINLIT_APP_ROOT": str(ROOT),
        "OTEL_SDK_DISABLED": "true",
    }
)
for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY", "CHROMA_HOST"):
    os.environ.pop(var, None)


class NetworkBlocked(RuntimeError):
    pass


def _is_local(address: Any) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0] if isinstance(address, tuple) and address else address
    if isinstance(host, bytes):
        host = host.decode()
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if not _is_local(address):
        raise NetworkBlocked(f"tests must not reach the network (tried {address!r})")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
    if not _is_local(address):
        raise NetworkBlocked(f"tests must not reach the network (tried {address!r})")
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if host not in (None, "localhost", b"localhost") and not _is_local((host,)):
        raise NetworkBlocked(f"tests must not resolve external hosts (tried {host!r})")
    return _real_getaddrinfo(host, *args, **kwargs)


def pytest_configure(config: pytest.Config) -> None:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _guarded_getaddrinfo


@pytest.fixture(autouse=True)
def isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own data dir; settings are re-read from the environment."""
    from bot.settings import get_settings

    data_dir = tmp_path / "data"
    monkeypatch.setenv("INTERVIEW_DATA_DIR", str(data_dir))
    monkeypatch.chdir(tmp_path)  # no stray .env, .chainlit or .files from the repo
    get_settings.cache_clear()
    yield data_dir
    get_settings.cache_clear()


@pytest.fixture
def settings() -> Any:
    from bot.settings import get_settings

    return get_settings()


@pytest.fixture(scope="session")
def real_notes() -> Path:
    return REAL_NOTES


@pytest.fixture(scope="session")
def local_embedder() -> Any:
    """One shared ONNX embedder for the session (loading it costs ~0.3 s)."""
    from bot.retrieval.embeddings import LocalEmbedder
    from bot.settings import Settings

    return LocalEmbedder(Settings())


@pytest.fixture(scope="session")
def _seeded_template(tmp_path_factory: pytest.TempPathFactory, local_embedder: Any) -> Path:
    """The real notes ingested once per test session (embedding 91 cards takes seconds)."""
    from bot.knowledge.ingest import ingest
    from bot.retrieval.store import open_store
    from bot.settings import Settings

    data_dir = tmp_path_factory.mktemp("seeded")
    store = open_store(Settings(data_dir=data_dir), local_embedder)
    ingest([REAL_NOTES], store, REAL_NOTES.parent)
    del store
    return data_dir


@pytest.fixture
def seeded(isolated_state: Path, _seeded_template: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's data dir, pre-filled with the real notes' cards (a private copy)."""
    import shutil

    shutil.copytree(_seeded_template, isolated_state, dirs_exist_ok=True)
    monkeypatch.setenv("INTERVIEW_KNOWLEDGE_DIR", str(REAL_NOTES.parent))
    return isolated_state


# --------------------------------------------------------------------------- fake chat models


class RecordingChatModel:
    """Factory for LangChain fake chat models that record the prompt they actually received."""

    @staticmethod
    def make(replies: list[str]) -> Any:
        from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
        from langchain_core.messages import AIMessage

        class Recording(GenericFakeChatModel):
            calls: list[dict[str, Any]] = []  # noqa: RUF012 - pydantic field, one list per instance

            def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
                self.calls.append({"messages": messages, "kwargs": kwargs})
                return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)

            def _stream(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
                self.calls.append({"messages": messages, "kwargs": kwargs, "stream": True})
                return super()._stream(messages, stop=stop, run_manager=run_manager, **kwargs)

        return Recording(messages=iter([AIMessage(content=r) for r in replies]), calls=[])


@pytest.fixture
def fake_chat() -> Any:
    return RecordingChatModel.make


@dataclass
class CallInfo:
    """What a :class:`FunctionChatModel` function sees besides the messages (pydantic-ai's ``AgentInfo``).

    ``tools``: the tools bound with ``bind_tools`` (OpenAI format); when there are any, the reply
    text is the JSON arguments of a call to ``tool_name``. ``kwargs``: anything else bound or passed
    (``extra_body``, ``stop`` …). ``call``: 0 for the model's first call, 1 for its second …
    """

    call: int
    stream: bool
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = None
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def tool_name(self) -> str | None:
        """The tool the reply calls: the forced one, else the first bound; None without tools."""
        if not self.tools:
            return None
        choice = self.tool_choice
        if isinstance(choice, dict):
            return str(choice.get("function", {}).get("name") or choice.get("name"))
        if isinstance(choice, str) and choice not in ("auto", "any", "required", "none"):
            return choice
        return str(self.tools[0]["function"]["name"])


# (messages, info) -> reply text; (messages, info) -> reply chunks. Messages are LangChain BaseMessages.
ReplyFunction = Callable[[list[Any], CallInfo], str]
StreamFunction = Callable[[list[Any], CallInfo], Iterable[str]]


@functools.cache
def _function_chat_model() -> type[Any]:
    """Build the class on first use, so importing conftest does not import LangChain."""
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
    from langchain_core.utils.function_calling import convert_to_openai_tool
    from pydantic import Field

    class FunctionChatModel(BaseChatModel):
        """A chat model whose reply is computed from the prompt it received, like pydantic-ai's
        ``FunctionModel``: ``function(messages, info)`` returns the reply text (or, with tools bound,
        the tool call's JSON arguments); ``stream_function(messages, info)`` yields it in chunks.
        Give either or both: without ``stream_function`` a stream is ``function``'s reply cut into
        ``chunk_size`` pieces; without ``function`` an invoke joins the streamed chunks.
        Every call is recorded in ``calls`` (messages, info)."""

        function: ReplyFunction | None = None
        stream_function: StreamFunction | None = None
        chunk_size: int = 7
        calls: list[tuple[list[BaseMessage], CallInfo]] = Field(default_factory=list)

        @property
        def _llm_type(self) -> str:
            return "function-fake"

        def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any) -> Any:
            return self.bind(tools=[convert_to_openai_tool(t) for t in tools], tool_choice=tool_choice, **kwargs)

        def _info(self, stream: bool, stop: Any, kwargs: dict[str, Any]) -> CallInfo:
            extra = dict(kwargs)
            if stop is not None:
                extra["stop"] = stop
            tools, choice = extra.pop("tools", None) or [], extra.pop("tool_choice", None)
            return CallInfo(call=len(self.calls), stream=stream, tools=tools, tool_choice=choice, kwargs=extra)

        def _chunks(self, messages: list[BaseMessage], info: CallInfo) -> Iterable[str]:
            if self.stream_function is not None:
                return self.stream_function(messages, info)
            assert self.function is not None, "FunctionChatModel needs a function or a stream_function"
            text = self.function(messages, info)
            return [text[i : i + self.chunk_size] for i in range(0, len(text), self.chunk_size)]

        def _generate(
            self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
        ) -> ChatResult:
            info = self._info(False, stop, kwargs)
            self.calls.append((messages, info))
            text = "".join(self._chunks(messages, info))
            return ChatResult(generations=[ChatGeneration(message=_message(text, info))])

        def _stream(
            self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
        ) -> Iterator[ChatGenerationChunk]:
            info = self._info(True, stop, kwargs)
            self.calls.append((messages, info))
            for i, piece in enumerate(self._chunks(messages, info)):
                if info.tool_name is None:
                    message = AIMessageChunk(content=piece)
                else:
                    first = i == 0
                    tool_chunk = {
                        "name": info.tool_name if first else None,
                        "args": piece,
                        "id": f"call_{info.call}" if first else None,
                        "index": 0,
                    }
                    message = AIMessageChunk(content="", tool_call_chunks=[tool_chunk])  # type: ignore[list-item]
                chunk = ChatGenerationChunk(message=message)
                if run_manager is not None:
                    run_manager.on_llm_new_token(piece, chunk=chunk)
                yield chunk

    def _message(text: str, info: CallInfo) -> AIMessage:
        if info.tool_name is None:
            return AIMessage(content=text)
        call_id = f"call_{info.call}"
        try:
            args = json.loads(text)
        except json.JSONDecodeError as exc:
            bad = {"name": info.tool_name, "args": text, "id": call_id, "error": str(exc), "type": "invalid_tool_call"}
            return AIMessage(content="", invalid_tool_calls=[bad])  # type: ignore[list-item]
        return AIMessage(content="", tool_calls=[{"name": info.tool_name, "args": args, "id": call_id}])

    return FunctionChatModel


@pytest.fixture
def function_chat() -> type[Any]:
    """The :class:`FunctionChatModel` class: ``function_chat(function=…, stream_function=…)``."""
    return _function_chat_model()


@pytest.fixture(scope="session")
def token_counter() -> Any:
    from bot.grading.budget import TokenCounter
    from bot.settings import Settings

    return TokenCounter(Settings().tiktoken_dir)
