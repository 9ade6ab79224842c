"""Test harness: no real network, all state in a temp dir, offline everything.

* Outbound connections to anything but loopback (or a Unix socket) raise immediately.
* One autouse fixture points the data dir at a fresh temp folder and clears settings caches.
* Model files (ONNX embedding model, tiktoken files) come from the install (``make install``).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
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


@pytest.fixture(scope="session")
def token_counter() -> Any:
    from bot.grading.budget import TokenCounter
    from bot.settings import Settings

    return TokenCounter(Settings().tiktoken_dir)
