"""LangSmith tracing, tested without the network: a recorder on 127.0.0.1 stands in for the API."""

from __future__ import annotations

import email.policy
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.fake_openai import FakeOpenAI, Reply
from tests.test_llm_grader import reply

SECRET_OPENAI = "sk-test-SECRET-openai-123"
SECRET_LANGSMITH = "lsv2_pt_SECRET_langsmith_456"


class Recorder:
    """Accepts LangSmith run uploads (multipart or JSON) and keeps every run payload it sees."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self.runs: list[dict[str, Any]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _json(self, obj: Any, status: int = 200) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/info"):
                    self._json({"version": "0.10.0"})
                else:
                    self._json({})

            def do_POST(self) -> None:
                body = self._body()
                recorder.raw.append(body)
                ctype = self.headers.get("Content-Type", "")
                if ctype.startswith("multipart/"):
                    msg = BytesParser(policy=email.policy.default).parsebytes(
                        f"Content-Type: {ctype}\r\n\r\n".encode() + body
                    )
                    parts: dict[str, dict[str, Any]] = {}
                    for part in msg.iter_parts():
                        name = part.get_param("name", header="content-disposition") or ""
                        payload = part.get_payload(decode=True) or b""
                        kind, _, rest = str(name).partition(".")
                        run_id, _, field = rest.partition(".")
                        entry = parts.setdefault(f"{kind}.{run_id}", {})
                        try:
                            value = json.loads(payload)
                        except ValueError:
                            continue
                        if field:
                            entry[field] = value
                        elif isinstance(value, dict):
                            entry.update(value)
                    recorder.runs.extend(parts.values())
                elif body:
                    data = json.loads(body)
                    if isinstance(data, dict):
                        for key in ("post", "patch"):
                            recorder.runs.extend(data.get(key, []) or [])
                        if "name" in data:
                            recorder.runs.append(data)
                self._json({})

            do_PATCH = do_POST

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Recorder:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with Recorder() as rec:
        yield rec


@pytest.mark.slow
def test_cli_grade_is_traced_with_metadata_and_no_secrets(recorder: Recorder, tmp_path: Path) -> None:
    with FakeOpenAI() as fake:
        fake.chat.default = lambda req: Reply.content(reply(("hit", "missed")))
        env = {
            **os.environ,
            "LANGSMITH_TRACING": "true",
            "LANGCHAIN_TRACING_V2": "true",
            "LANGSMITH_ENDPOINT": recorder.url,
            "LANGSMITH_API_KEY": SECRET_LANGSMITH,
            "LANGSMITH_PROJECT": "interview-coach-tests",
            "OPENAI_BASE_URL": fake.base_url,
            "OPENAI_API_KEY": SECRET_OPENAI,
            "INTERVIEW_DATA_DIR": str(tmp_path / "data"),
        }
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "bot",
                "grade",
                "--question",
                "What is dropout?",
                "--reference",
                "Dropout deactivates random neurons during training to curb overfitting.",
                "--answer",
                "It turns off random neurons while training.",
                "--grader",
                "llm",
                "--json",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["grader"] == "llm:gpt-4o-mini"
    grade_runs = [r for r in recorder.runs if r.get("name") == "grade"]
    assert grade_runs, f"no grade run recorded; saw {[r.get('name') for r in recorder.runs]}"
    meta = grade_runs[0].get("extra", {}).get("metadata", {})
    assert meta["grader"] == "llm:gpt-4o-mini" and meta["mode"] == "cli"
    assert meta["prompt_version"].startswith("grader-") and "card_id" in meta
    assert any(r.get("name") == "llm-grader" for r in recorder.runs)  # the model call is nested
    everything = b"".join(recorder.raw)
    assert SECRET_OPENAI.encode() not in everything and SECRET_LANGSMITH.encode() not in everything


@pytest.mark.slow
def test_unreachable_endpoint_warns_and_exits_promptly(tmp_path: Path) -> None:
    import socket
    import time

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    env = {
        **os.environ,
        "LANGSMITH_TRACING": "true",
        "LANGCHAIN_TRACING_V2": "true",
        "LANGSMITH_ENDPOINT": f"http://127.0.0.1:{dead}",
        "LANGSMITH_API_KEY": SECRET_LANGSMITH,
        "INTERVIEW_DATA_DIR": str(tmp_path / "data"),
    }
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "grade",
            "--question",
            "What is dropout?",
            "--reference",
            "Dropout deactivates random neurons during training.",
            "--answer",
            "Random neurons are off.",
            "--grader",
            "offline",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "graded"
    assert "LangSmith tracing is off for this run" in proc.stderr and str(dead) in proc.stderr
    assert elapsed < 20, elapsed
