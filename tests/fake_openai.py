"""A scriptable, OpenAI-compatible HTTP server on 127.0.0.1 for tests.

It speaks enough of the Chat Completions, Embeddings and Models APIs for the real ``openai`` client and
``langchain_openai.ChatOpenAI`` to run over real HTTP (retries, timeouts, SSE streaming, structured output)::

    with FakeOpenAI() as fake:                       # fake.base_url == "http://127.0.0.1:PORT/v1"
        fake.chat.push(Reply.json({"score": 2}), Reply.status(429, retry_after=0.01))
        fake.chat.default = lambda req: Reply.content("hello")
        client = fake.client(max_retries=2)          # a real openai.OpenAI pointed at the fake
        ...
        fake.requests("chat")                        # every request received, oldest first

Each endpoint (``fake.chat``, ``fake.embeddings``, ``fake.models``) has a FIFO queue of scripted
:class:`Reply` objects; once its queue is empty it answers with ``endpoint.default(request_json)``.
For pytest, ``from tests.fake_openai import fake_openai`` brings in a function-scoped fixture.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import re
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import pytest

if TYPE_CHECKING:
    import openai

__all__ = ["Endpoint", "FakeOpenAI", "Reply", "fake_openai", "hash_embedding"]

ReplyKind = Literal["auto", "content", "tool_calls", "refusal", "status", "slow", "malformed", "raw", "embeddings"]
Responder = Callable[[dict[str, Any]], "Reply"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


@dataclass(frozen=True)
class Reply:
    """One scripted response. Build it with the class methods, not the constructor."""

    kind: ReplyKind
    text: str | None = None
    calls: tuple[tuple[str, str, str], ...] = ()  # tool calls as (id, name, arguments JSON)
    finish_reason: str | None = None
    status_code: int = 200
    retry_after: float | None = None
    headers: tuple[tuple[str, str], ...] = ()
    seconds: float = 0.0
    then: Reply | None = None
    body: Any = None
    vectors: tuple[tuple[float, ...], ...] = ()
    chunk_delay: float = 0.0
    usage: tuple[int, int] | None = None  # (prompt_tokens, completion_tokens) override

    # -- normal answers --------------------------------------------------------------------------------
    @classmethod
    def content(
        cls,
        text: str,
        *,
        finish_reason: str = "stop",
        chunk_delay: float = 0.0,
        usage: tuple[int, int] | None = None,
    ) -> Reply:
        """An assistant message with this text (``chunk_delay`` seconds between SSE chunks when streaming)."""
        return cls("content", text=text, finish_reason=finish_reason, chunk_delay=chunk_delay, usage=usage)

    @classmethod
    def json(cls, obj: Any, *, finish_reason: str = "stop") -> Reply:
        """A json_schema / json_object style answer: the content is ``json.dumps(obj)`` (e.g. ``{"score": 42}``)."""
        return cls.content(json.dumps(obj), finish_reason=finish_reason)

    @classmethod
    def tool_call(cls, name: str, arguments: dict[str, Any] | str, *, call_id: str | None = None) -> Reply:
        """One function call (what ``with_structured_output(method="function_calling")`` expects)."""
        args = arguments if isinstance(arguments, str) else json.dumps(arguments)
        return cls("tool_calls", calls=((call_id or _new_id("call_"), name, args),), finish_reason="tool_calls")

    @classmethod
    def tool_calls(cls, *calls: tuple[str, dict[str, Any] | str]) -> Reply:
        """Several parallel function calls, each ``(name, arguments)``."""
        built = tuple(
            (_new_id("call_"), name, args if isinstance(args, str) else json.dumps(args)) for name, args in calls
        )
        return cls("tool_calls", calls=built, finish_reason="tool_calls")

    @classmethod
    def refusal(cls, text: str = "I can't help with that.") -> Reply:
        """A structured-output refusal (``message.refusal`` set, ``content`` null)."""
        return cls("refusal", text=text, finish_reason="stop")

    @classmethod
    def embeddings(cls, *vectors: list[float] | tuple[float, ...]) -> Reply:
        """Explicit vectors for one ``/v1/embeddings`` call (one per input)."""
        return cls("embeddings", vectors=tuple(tuple(float(x) for x in v) for v in vectors))

    # -- failures --------------------------------------------------------------------------------------
    @classmethod
    def status(
        cls,
        code: int,
        *,
        retry_after: float | None = None,
        message: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """An HTTP error with an OpenAI-style error body; ``retry_after`` sets the ``Retry-After`` header (s)."""
        return cls(
            "status",
            status_code=code,
            retry_after=retry_after,
            text=message or f"fake error {code}",
            headers=tuple((headers or {}).items()),
        )

    @classmethod
    def slow(cls, seconds: float, then: Reply | None = None) -> Reply:
        """Wait ``seconds`` before sending anything, then answer with ``then`` (default: content "slow")."""
        return cls("slow", seconds=seconds, then=then or cls.content("slow"))

    @classmethod
    def malformed(cls, text: str = '{"id": "chatcmpl-broken", "choices": [{"message": ') -> Reply:
        """HTTP 200 with ``Content-Type: application/json`` but a body that is not valid JSON."""
        return cls("malformed", text=text)

    @classmethod
    def raw(cls, body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        """Any JSON body, sent as is (an escape hatch for odd shapes)."""
        return cls("raw", body=body, status_code=status, headers=tuple((headers or {}).items()))


class Endpoint:
    """The scripted-reply queue of one endpoint plus its fallback responder."""

    def __init__(self, name: str, default: Responder) -> None:
        self.name = name
        self.default: Responder = default
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()

    def push(self, *replies: Reply) -> None:
        """Queue replies; each request consumes the oldest one."""
        with self._lock:
            self._queue.extend(replies)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    @property
    def pending(self) -> int:
        """How many scripted replies have not been consumed yet."""
        with self._lock:
            return len(self._queue)

    def next_reply(self, request_json: dict[str, Any]) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        return self.default(request_json)


class FakeOpenAI:
    """An OpenAI-compatible server on a free loopback port, run in a background thread."""

    def __init__(
        self,
        *,
        embedding_dim: int = 64,
        models: tuple[str, ...] = ("fake-chat", "fake-embed"),
        default_text: str = "ok",
    ) -> None:
        self.embedding_dim = embedding_dim
        self.model_ids = models
        self.chat = Endpoint("chat", lambda req: Reply.content(default_text))
        self.embeddings = Endpoint("embeddings", lambda req: Reply("auto"))  # hash_embedding of each input
        self.models = Endpoint("models", lambda req: Reply("auto"))  # the ``models`` ids
        self._records: list[dict[str, Any]] = []
        self._records_lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> FakeOpenAI:
        if self._server is not None:
            return self
        handler = type("_BoundHandler", (_Handler,), {"fake": self})
        server = _Server(("127.0.0.1", 0), handler)
        self._server = server
        self._stopping.clear()
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.name = f"fake-openai-{self.port}"
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in Reply.slow
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeOpenAI is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def client(self, **kwargs: Any) -> openai.OpenAI:
        """A real ``openai.OpenAI`` aimed at this server (``api_key="x"``, ``max_retries=2`` unless given)."""
        import openai

        kwargs.setdefault("api_key", "x")
        kwargs.setdefault("max_retries", 2)
        return openai.OpenAI(base_url=self.base_url, **kwargs)

    def env(self) -> dict[str, str]:
        """Environment variables that point OpenAI-compatible code here (for ``monkeypatch.setenv``)."""
        return {"OPENAI_BASE_URL": self.base_url, "OPENAI_API_KEY": "x"}

    # -- recorded traffic ------------------------------------------------------------------------------
    def requests(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """Every request received (``endpoint`` = "chat", "embeddings", "models" or None for all).

        Each is ``{"endpoint", "method", "path", "headers", "has_authorization", "json", "time"}``;
        ``headers`` has lower-cased names and no ``authorization`` value.
        """
        with self._records_lock:
            return [dict(r) for r in self._records if endpoint is None or r["endpoint"] == endpoint]

    def last_request(self, endpoint: str = "chat") -> dict[str, Any]:
        found = self.requests(endpoint)
        if not found:
            raise AssertionError(f"no {endpoint!r} request was received")
        return found[-1]

    def last_body(self, endpoint: str = "chat") -> dict[str, Any]:
        """The parsed JSON body of the newest request to ``endpoint``."""
        body = self.last_request(endpoint)["json"]
        assert isinstance(body, dict), body
        return body

    def prompt_text(self, index: int = -1) -> str:
        """All message contents of one chat request joined with newlines (what the model was shown)."""
        body = self.requests("chat")[index]["json"] or {}
        return "\n".join(_message_text(m) for m in body.get("messages", []))

    def reset(self) -> None:
        """Forget recorded requests and scripted replies (defaults stay)."""
        with self._records_lock:
            self._records.clear()
        for ep in (self.chat, self.embeddings, self.models):
            ep.clear()

    def _record(self, entry: dict[str, Any]) -> None:
        with self._records_lock:
            self._records.append(entry)


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A running :class:`FakeOpenAI` for one test."""
    with FakeOpenAI() as fake:
        yield fake


# ------------------------------------------------------------------------------------------------------
# Embeddings
# ------------------------------------------------------------------------------------------------------
_WORD = re.compile(r"\w+", re.UNICODE)


def _signed_unit_hash(token: str, dim: int) -> list[float]:
    out: list[float] = []
    counter = 0
    while len(out) < dim:
        digest = hashlib.sha256(f"{counter}\x00{token}".encode()).digest()
        out.extend((b - 127.5) / 127.5 for b in digest)
        counter += 1
    return out[:dim]


def hash_embedding(text: str, dim: int) -> list[float]:
    """A deterministic, L2-normalised vector: the sum of per-word hash vectors.

    Texts that share words get a positive cosine, so retrieval tests behave sensibly.
    """
    words = _WORD.findall(text.lower()) or [text]
    acc = [0.0] * dim
    for w in words:
        for i, x in enumerate(_signed_unit_hash(w, dim)):
            acc[i] += x
    norm = math.sqrt(sum(x * x for x in acc)) or 1.0
    return [x / norm for x in acc]


# ------------------------------------------------------------------------------------------------------
# HTTP handling
# ------------------------------------------------------------------------------------------------------
def _new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def _message_text(message: Any) -> str:
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _count_tokens(text: str) -> int:
    """A rough token count (words and punctuation), enough for ``usage``."""
    return len(re.findall(r"\w+|[^\w\s]", text))


def _split_for_stream(text: str) -> list[str]:
    pieces = re.findall(r"\s*\S+", text) or [text]
    if len(pieces) == 1 and len(text) > 1:  # always at least two content chunks for non-trivial text
        mid = len(text) // 2
        pieces = [text[:mid], text[mid:]]
    return pieces


class _Disconnected(Exception):
    pass


class _Server(ThreadingHTTPServer):
    """One thread per connection, so slow replies overlap instead of queueing.

    The listen backlog is raised from socketserver's 5: with dozens of clients connecting at once (the
    app benchmark's 50 sessions) a full accept queue makes the kernel drop or reset connections.
    """

    daemon_threads = True
    request_queue_size = 256


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAI  # set on the bound subclass
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections end on their own
    server_version = "FakeOpenAI/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    # -- plumbing --------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = self.path.split("?", 1)[0].rstrip("/")
        if path.startswith("/v1"):
            path = path[3:]
        endpoint = {"/chat/completions": "chat", "/embeddings": "embeddings"}.get(path)
        if endpoint is None and (path == "/models" or path.startswith("/models/")):
            endpoint = "models"
        headers = {k.lower(): v for k, v in self.headers.items() if k.lower() != "authorization"}
        self.fake._record(
            {
                "endpoint": endpoint or "other",
                "method": method,
                "path": self.path,
                "headers": headers,
                "has_authorization": "authorization" in {k.lower() for k in self.headers},
                "json": body,
                "time": time.time(),
            }
        )
        request_json: dict[str, Any] = body if isinstance(body, dict) else {}
        try:
            if endpoint == "chat" and method == "POST":
                self._answer(self.fake.chat.next_reply(request_json), request_json, self._chat)
            elif endpoint == "embeddings" and method == "POST":
                self._answer(self.fake.embeddings.next_reply(request_json), request_json, self._embeddings)
            elif endpoint == "models" and method == "GET":
                self._answer(self.fake.models.next_reply(request_json), request_json, self._models)
            else:
                self._send_error(404, f"Unknown endpoint {method} {self.path}")
        except (_Disconnected, BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a bug in the fake or a bad Reply: answer 500 instead of hanging up
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._send_error(500, f"FakeOpenAI failed: {type(exc).__name__}: {exc}")

    def _answer(self, reply: Reply, req: dict[str, Any], normal: Callable[[Reply, dict[str, Any]], None]) -> None:
        while reply.kind == "slow":
            if self.fake._stopping.wait(reply.seconds):
                raise _Disconnected
            assert reply.then is not None
            reply = reply.then
        if reply.kind == "status":
            extra = dict(reply.headers)
            if reply.retry_after is not None:
                extra["Retry-After"] = _fmt_seconds(reply.retry_after)
            self._send_error(reply.status_code, reply.text or "error", extra)
        elif reply.kind == "malformed":
            self._send_bytes(200, (reply.text or "").encode(), "application/json")
        elif reply.kind == "raw":
            self._send_json(reply.status_code, reply.body, dict(reply.headers))
        else:
            normal(reply, req)

    def _send_bytes(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", _new_id("req_"))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(obj).encode(), "application/json", headers)

    def _send_error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        err_type = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        body = {"error": {"message": message, "type": err_type, "param": None, "code": None}}
        self._send_json(status, body, headers)

    # -- /v1/chat/completions --------------------------------------------------------------------------
    def _chat(self, reply: Reply, req: dict[str, Any]) -> None:
        if reply.kind not in ("content", "tool_calls", "refusal"):
            self._send_error(500, f"reply kind {reply.kind!r} is not valid for chat completions")
            return
        model = str(req.get("model") or self.fake.model_ids[0])
        prompt_tokens = sum(_count_tokens(_message_text(m)) for m in req.get("messages", []) or [])
        completion_text = (reply.text or "") + "".join(args for _, _, args in reply.calls)
        completion_tokens = max(1, _count_tokens(completion_text))
        if reply.usage is not None:
            prompt_tokens, completion_tokens = reply.usage
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        cid, created = _new_id("chatcmpl-"), int(time.time())
        if req.get("stream"):
            self._chat_stream(reply, req, cid, created, model, usage)
            return
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        if reply.kind == "content":
            message["content"] = reply.text
        elif reply.kind == "refusal":
            message["refusal"] = reply.text
        else:
            message["tool_calls"] = [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}
                for call_id, name, args in reply.calls
            ]
        body = {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish_reason}],
            "usage": usage,
        }
        self._send_json(200, body)

    def _chat_stream(
        self, reply: Reply, req: dict[str, Any], cid: str, created: int, model: str, usage: dict[str, int]
    ) -> None:
        include_usage = bool((req.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }

        events: list[dict[str, Any]] = [chunk({"role": "assistant", "content": "", "refusal": None})]
        if reply.kind == "content":
            events += [chunk({"content": piece}) for piece in _split_for_stream(reply.text or "")]
        elif reply.kind == "refusal":
            events += [chunk({"refusal": piece}) for piece in _split_for_stream(reply.text or "")]
        else:
            for index, (call_id, name, args) in enumerate(reply.calls):
                head = {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
                events.append(chunk({"tool_calls": [head]}))
                events += [
                    chunk({"tool_calls": [{"index": index, "function": {"arguments": args[i : i + 16]}}]})
                    for i in range(0, len(args), 16)
                ]
        events.append(chunk({}, reply.finish_reason))
        if include_usage:
            for ev in events:
                ev["usage"] = None
            events.append(
                {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "system_fingerprint": "fp_fake",
                    "choices": [],
                    "usage": usage,
                }
            )
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.send_header("x-request-id", _new_id("req_"))
        self.end_headers()
        self.close_connection = True
        for i, ev in enumerate(events):
            if i and reply.chunk_delay and self.fake._stopping.wait(reply.chunk_delay):
                raise _Disconnected
            self.wfile.write(b"data: " + json.dumps(ev).encode() + b"\n\n")
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    # -- /v1/embeddings --------------------------------------------------------------------------------
    def _embeddings(self, reply: Reply, req: dict[str, Any]) -> None:
        raw_input = req.get("input")
        if isinstance(raw_input, str) or (
            isinstance(raw_input, list) and raw_input and all(isinstance(x, int) for x in raw_input)
        ):
            inputs: list[Any] = [raw_input]
        elif isinstance(raw_input, list):
            inputs = list(raw_input)
        else:
            self._send_error(400, "'input' must be a string or an array")
            return
        if reply.kind not in ("embeddings", "auto"):
            self._send_error(500, f"reply kind {reply.kind!r} is not valid for embeddings")
            return
        dim = int(req.get("dimensions") or self.fake.embedding_dim)
        if reply.vectors:
            vectors = [list(v) for v in reply.vectors]
        else:
            vectors = [hash_embedding(x if isinstance(x, str) else json.dumps(x), dim) for x in inputs]
        b64 = req.get("encoding_format") == "base64"
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode() if b64 else v,
            }
            for i, v in enumerate(vectors)
        ]
        tokens = sum(_count_tokens(x) if isinstance(x, str) else len(x) for x in inputs)
        body = {
            "object": "list",
            "data": data,
            "model": str(req.get("model") or self.fake.model_ids[-1]),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        self._send_json(200, body)

    # -- /v1/models ------------------------------------------------------------------------------------
    def _models(self, reply: Reply, req: dict[str, Any]) -> None:
        cards = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.fake.model_ids]
        path = self.path.split("?", 1)[0].rstrip("/")
        tail = path.split("/models", 1)[1].lstrip("/")
        if tail:
            card = next((c for c in cards if c["id"] == tail), None)
            if card is None:
                self._send_error(404, f"The model '{tail}' does not exist")
            else:
                self._send_json(200, card)
            return
        self._send_json(200, {"object": "list", "data": cards})


def _fmt_seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def rubric_size(req: dict[str, Any], default: int) -> int:
    """How many key points the grader prompt in ``req`` asks the model to mark (the card's rubric),
    or ``default`` when it carries none: a fake that answers like a model following the prompt."""
    import re

    found = re.search(r'<key_points source="the card\'s rubric" count="(\d+)">', str(req["messages"][-1]["content"]))
    return int(found.group(1)) if found else default
