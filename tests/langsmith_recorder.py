"""A stateful fake LangSmith API on 127.0.0.1 — just enough for ``langsmith.Client`` + ``evaluate``.

Implements ``/info``, datasets (create, read by id, list/filter by name), examples (bulk create,
single create, list by dataset, read), sessions a.k.a. projects/experiments (create, read by id
or name, update), runs (multipart, batch, single POST, PATCH) and feedback (POST). Everything
is stored so tests can assert on it; unknown paths are logged in :attr:`LangSmithRecorder.unknown`
and answered with an empty JSON object. Every request body is kept raw in :attr:`raw`.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import json
import threading
import uuid
from collections.abc import Iterator
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

TENANT_ID = "00000000-0000-4000-8000-000000000001"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


class LangSmithRecorder:
    """Context manager: ``with LangSmithRecorder() as ls: Client(api_url=ls.url, ...)``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []  # (method, path without query)
        self.raw: list[bytes] = []
        self.unknown: list[tuple[str, str]] = []
        self.datasets: dict[str, dict[str, Any]] = {}
        self.examples: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.feedback: list[dict[str, Any]] = []
        self.fail: dict[str, int] = {}  # first path segment -> HTTP status to answer with (e.g. 503)
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, obj: Any, status: int = 200) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                url = urlsplit(self.path)
                path = url.path.rstrip("/")
                for prefix in ("/api/v1", "/v1/platform"):
                    if path.startswith(prefix + "/"):
                        path = path[len(prefix) :]
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                with recorder.lock:
                    recorder.requests.append((method, path))
                    if body:
                        recorder.raw.append(body)
                    try:
                        status, obj = recorder.route(method, path, query, body, self.headers.get("Content-Type", ""))
                    except Exception as exc:  # a bug in the fake: make it visible, never hang
                        status, obj = 500, {"detail": f"recorder error: {exc!r}"}
                self._reply(obj, status)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

            def do_PUT(self) -> None:
                self._handle("PUT")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> LangSmithRecorder:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------------ helpers for tests

    def examples_of(self, dataset_id: str) -> list[dict[str, Any]]:
        return [e for e in self.examples.values() if e["dataset_id"] == dataset_id]

    def feedback_for(self, key: str) -> list[dict[str, Any]]:
        return [f for f in self.feedback if f.get("key") == key]

    def runs_in(self, session_id: str) -> list[dict[str, Any]]:
        """Runs of a session, addressed by id (``session_id``) or by name (``session_name``)."""
        name = (self.sessions.get(session_id) or {}).get("name")
        return [
            r
            for r in self.runs.values()
            if str(r.get("session_id")) == session_id or (name is not None and r.get("session_name") == name)
        ]

    def everything(self) -> bytes:
        return b"\n".join(self.raw)

    # ------------------------------------------------------------------ routing

    def route(self, method: str, path: str, query: dict[str, str], body: bytes, ctype: str) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        head = parts[0] if parts else ""
        data: Any = None
        if body and not ctype.startswith("multipart/"):
            try:
                data = json.loads(body)
            except ValueError:
                data = None
        if head in self.fail:
            return self.fail[head], {"detail": "failing on purpose"}
        if path == "/info":
            return 200, {"version": "0.10.0"}
        if head == "datasets":
            return self._datasets(method, parts, query, data)
        if head == "examples":
            return self._examples(method, parts, query, data)
        if head == "sessions":
            return self._sessions(method, parts, query, data)
        if head == "runs":
            return self._runs(method, parts, body, ctype, data)
        if head == "feedback" and method == "POST" and isinstance(data, dict):
            self.feedback.append(data)
            return 200, {**data, "id": data.get("id") or str(uuid.uuid4())}
        self.unknown.append((method, path))
        return 200, ([] if method == "GET" else {})

    def _datasets(self, method: str, parts: list[str], query: dict[str, str], data: Any) -> tuple[int, Any]:
        if method == "POST" and len(parts) == 1 and isinstance(data, dict):
            if any(d["name"] == data.get("name") for d in self.datasets.values()):
                return 409, {"detail": "Dataset with this name already exists."}
            ds = {
                "id": str(data.get("id") or uuid.uuid4()),
                "name": data["name"],
                "description": data.get("description"),
                "data_type": data.get("data_type", "kv"),
                "created_at": _now(),
                "modified_at": _now(),
                "tenant_id": TENANT_ID,
                "example_count": 0,
                "metadata": (data.get("extra") or {}).get("metadata"),
            }
            self.datasets[ds["id"]] = ds
            return 200, ds
        if method == "GET" and len(parts) == 1:
            found = [d for d in self.datasets.values() if "name" not in query or d["name"] == query["name"]]
            return 200, [self._with_count(d) for d in self._page(found, query)]
        if method == "GET" and len(parts) == 2:
            ds = self.datasets.get(parts[1])
            return (200, self._with_count(ds)) if ds else (404, {"detail": "Dataset not found"})
        self.unknown.append((method, "/" + "/".join(parts)))
        return 200, ([] if method == "GET" else {})

    def _with_count(self, ds: dict[str, Any]) -> dict[str, Any]:
        return {**ds, "example_count": len(self.examples_of(ds["id"]))}

    @staticmethod
    def _page(items: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]]:
        offset = int(query.get("offset", 0))
        limit = int(query.get("limit", 100))
        return items[offset : offset + limit]

    def _store_example(self, item: dict[str, Any], dataset_id: str | None = None) -> tuple[int, dict[str, Any]]:
        ds_id = str(item.get("dataset_id") or dataset_id)
        if ds_id not in self.datasets:
            return 404, {"detail": f"dataset {ds_id} not found"}
        ex_id = str(item.get("id") or uuid.uuid4())
        if ex_id in self.examples:
            return 409, {"detail": f"example {ex_id} already exists"}
        ex = {
            "id": ex_id,
            "dataset_id": ds_id,
            "inputs": item.get("inputs") or {},
            "outputs": item.get("outputs"),
            "metadata": item.get("metadata"),
            "created_at": item.get("created_at") or _now(),
            "modified_at": _now(),
        }
        self.examples[ex_id] = ex
        return 200, ex

    def _examples(self, method: str, parts: list[str], query: dict[str, str], data: Any) -> tuple[int, Any]:
        if method == "POST" and parts == ["examples", "bulk"] and isinstance(data, list):
            created = []
            for item in data:
                status, ex = self._store_example(item)
                if status != 200:
                    return status, ex
                created.append(ex)
            return 200, created
        if method == "POST" and len(parts) == 1 and isinstance(data, dict):
            return self._store_example(data)
        if method == "GET" and len(parts) == 1:
            found = list(self.examples.values())
            if "dataset" in query:
                found = [e for e in found if e["dataset_id"] == query["dataset"]]
            return 200, self._page(found, query)
        if method == "GET" and len(parts) == 2:
            ex = self.examples.get(parts[1])
            return (200, ex) if ex else (404, {"detail": "Example not found"})
        self.unknown.append((method, "/" + "/".join(parts)))
        return 200, ([] if method == "GET" else {})

    def _session_out(self, s: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in s.items() if k != "_history"}

    def _sessions(self, method: str, parts: list[str], query: dict[str, str], data: Any) -> tuple[int, Any]:
        if method == "POST" and len(parts) == 1 and isinstance(data, dict):
            if any(s["name"] == data.get("name") for s in self.sessions.values()):
                return 409, {"detail": "Session with this name already exists."}
            s = {
                "id": str(data.get("id") or uuid.uuid4()),
                "name": data.get("name"),
                "description": data.get("description"),
                "extra": data.get("extra") or {},
                "reference_dataset_id": data.get("reference_dataset_id"),
                "start_time": _now(),
                "end_time": None,
                "tenant_id": TENANT_ID,
                "_history": [data],
            }
            self.sessions[s["id"]] = s
            return 200, self._session_out(s)
        if method == "GET" and len(parts) == 1:
            found = [s for s in self.sessions.values() if "name" not in query or s["name"] == query["name"]]
            return 200, [self._session_out(s) for s in self._page(found, query)]
        if len(parts) == 2 and parts[1] in self.sessions:
            s = self.sessions[parts[1]]
            if method == "PATCH" and isinstance(data, dict):
                s["_history"].append(data)
                for key in ("name", "description", "end_time", "reference_dataset_id"):
                    if data.get(key) is not None:
                        s[key] = data[key]
                if data.get("extra") is not None:
                    s["extra"] = data["extra"] or {}
                return 200, self._session_out(s)
            if method == "GET":
                return 200, self._session_out(s)
        if len(parts) == 2 and method in ("GET", "PATCH"):
            return 404, {"detail": "Session not found"}
        self.unknown.append((method, "/" + "/".join(parts)))
        return 200, ([] if method == "GET" else {})

    def _merge_run(self, run: dict[str, Any]) -> None:
        if not isinstance(run, dict) or not run.get("id"):
            return
        entry = self.runs.setdefault(str(run["id"]), {})
        for key, value in run.items():
            if isinstance(value, dict) and isinstance(entry.get(key), dict):
                entry[key] = {**entry[key], **value}
            else:
                entry[key] = value

    def _runs(self, method: str, parts: list[str], body: bytes, ctype: str, data: Any) -> tuple[int, Any]:
        if method == "POST" and parts == ["runs", "multipart"]:
            msg = BytesParser(policy=email.policy.default).parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode() + body)
            grouped: dict[tuple[str, str], dict[str, Any]] = {}
            for part in msg.iter_parts():
                name = str(part.get_param("name", header="content-disposition") or "")
                payload = part.get_payload(decode=True) or b""
                kind, _, rest = name.partition(".")
                obj_id, _, field = rest.partition(".")
                try:
                    value = json.loads(payload)
                except ValueError:
                    continue
                entry = grouped.setdefault((kind, obj_id), {"id": obj_id})
                if field:
                    entry[field] = value
                elif isinstance(value, dict):
                    entry.update(value)
            for (kind, _), entry in grouped.items():
                if kind in ("post", "patch"):
                    self._merge_run(entry)
                elif kind == "feedback":
                    self.feedback.append(entry)
            return 200, {}
        if method == "POST" and parts == ["runs", "batch"] and isinstance(data, dict):
            for key in ("post", "patch"):
                for run in data.get(key) or []:
                    self._merge_run(run)
            return 200, {}
        if method == "POST" and parts == ["runs"] and isinstance(data, dict):
            self._merge_run(data)
            return 200, {}
        if method == "PATCH" and len(parts) == 2 and isinstance(data, dict):
            self._merge_run({**data, "id": parts[1]})
            return 200, {}
        if method == "GET" and len(parts) == 2 and parts[1] in self.runs:
            return 200, self.runs[parts[1]]
        self.unknown.append((method, "/" + "/".join(parts)))
        return 200, ([] if method == "GET" else {})


@pytest.fixture
def langsmith_recorder() -> Iterator[LangSmithRecorder]:
    with LangSmithRecorder() as rec:
        yield rec
