"""Web app benchmarks (printed figures, not timed tests), over socket.io like the browser.

* Cold start: from spawning `interview web` (a fresh process, the store already ingested) to the
  first question delivered to a socket.io client. Median of 3 runs; target <= 5 s.
* 50 concurrent sessions against one app whose LLM grader talks to the fake OpenAI server
  (``tests/fake_openai.py``), each grading reply taking 1 s: every client starts a drill, waits for
  its question, then all answer at once; answer -> grade message time p50/p95/max and the error
  count (failed sessions, error messages, grades that fell back to the offline grader or came back
  ungraded). Target p95 <= 1.3 s (issue 14), zero errors.

Usage: ``.venv/bin/python bench/bench_app.py [--runs 3] [--sessions 50] [--grade-delay 1.0]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from tests.chainlit_client import AppServer, ChainlitClient  # noqa: E402
from tests.fake_openai import FakeOpenAI, Reply, _split_for_stream, rubric_size  # noqa: E402

GRADED = re.compile(r"Score: \d+(\.\d+)?/10|Ungraded")
ANSWER = "Dropout randomly drops neurons during training so the network cannot co-adapt; it reduces overfitting."
GRADER_REPLY = {
    "reasoning": "The answer names the mechanism and its purpose.",
    "key_points": [
        {"point": "randomly drops units during training", "status": "hit", "evidence": "randomly drops neurons"},
        {"point": "reduces overfitting", "status": "hit", "evidence": "it reduces overfitting"},
    ],
    "correctness": 3,
    "depth": 1,
    "misconceptions": [],
    "feedback": "Good: you named the mechanism. Say why co-adaptation hurts generalisation.",
    "model_answer": "Dropout zeroes random activations during training, which prevents co-adaptation.",
    "reference_issue": "",
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def base_env(data_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "LANGSMITH_", "LANGCHAIN_")) and k not in ("CHROMA_HOST", "DATABASE_URL")
    }
    env.update(
        {
            "INTERVIEW_DATA_DIR": str(data_dir),
            "INTERVIEW_KNOWLEDGE_DIR": str(ROOT / "knowledge"),
            "INTERVIEW_GRADER": "offline",
            "HF_HUB_OFFLINE": "1",
            "ANONYMIZED_TELEMETRY": "False",
            "LANGSMITH_TRACING": "false",
            "CHAINLIT_APP_ROOT": str(ROOT),
        }
    )
    return env


def ingest(env: dict[str, str], cwd: Path) -> float:
    exe = Path(sys.executable).with_name("interview")
    t0 = time.monotonic()
    subprocess.run([str(exe), "ingest"], env=env, cwd=cwd, check=True, capture_output=True)
    return time.monotonic() - t0


# ------------------------------------------------------------------------------------------ cold start


async def _first_question(server: AppServer) -> tuple[float, float]:
    async with ChainlitClient(server.url) as chat:
        connected = time.monotonic() - server.started_at
        await chat.send("/drill 5")
        await chat.wait_for("Question 1 of", timeout=60)
        return connected, time.monotonic() - server.started_at


def cold_start(env: dict[str, str], cwd: Path, runs: int) -> None:
    totals = []
    for i in range(runs):
        server = AppServer(env=env, cwd=cwd, timeout=60).spawn()
        try:
            ready = server.wait_ready()
            connected, total = asyncio.run(_first_question(server))
        except Exception:
            print(server.output()[-3000:], file=sys.stderr)
            raise
        finally:
            server.cleanup()
        totals.append(total)
        print(
            f"  run {i + 1}: HTTP up {ready:.2f} s, socket connected {connected:.2f} s, first question {total:.2f} s",
            flush=True,
        )
    print(
        f"cold start (spawn `interview web` -> first question over socket.io), median of {runs}: "
        f"{statistics.median(totals):.2f} s (max {max(totals):.2f} s)   target <= 5 s",
        flush=True,
    )


# --------------------------------------------------------------------------------- concurrent sessions


def _responder(delay: float) -> Any:
    def respond(req: dict[str, Any]) -> Reply:
        fmt = req.get("response_format") or {}
        schema_name = str((fmt.get("json_schema") or {}).get("name", ""))
        prompt = json.dumps(req.get("messages", []))
        if schema_name == "GraderOutput" or ("key_points" in prompt and fmt):
            # One entry per rubric point, as a model following the prompt marks them.
            points = [GRADER_REPLY["key_points"][i % 2] for i in range(rubric_size(req, 2))]
            return Reply.slow(delay, Reply.json({**GRADER_REPLY, "key_points": points}))
        return Reply.content("Think about what happens to the network at training time.")

    return respond


async def _open_session(url: str) -> ChainlitClient:
    chat = ChainlitClient(url)
    try:
        await chat.connect(timeout=60)
        await chat.send("/drill 5")
        await chat.wait_for("Question 1 of", timeout=120)
    except BaseException:
        await chat.close()
        raise
    return chat


async def _answer(chat: ChainlitClient) -> tuple[float, str]:
    mark = chat.mark()
    t0 = time.monotonic()
    await chat.send(ANSWER)
    grade = await chat.wait_for(GRADED, timeout=60, after=mark)
    return grade.matched_at - t0, grade.output


def _problem(output: str, chat: ChainlitClient) -> str | None:
    if chat.errors:
        return "; ".join(chat.errors)[:300]
    if "LLM grader unavailable" in output:
        return "offline fallback: " + output[output.index("LLM grader unavailable") :][:200]
    if "Ungraded" in output:
        return "ungraded: " + output[:200]
    return None


async def _concurrent(url: str, n: int) -> tuple[list[float], list[str], float, float]:
    t0 = time.monotonic()
    opened = await asyncio.gather(*(_open_session(url) for _ in range(n)), return_exceptions=True)
    setup = time.monotonic() - t0
    chats = [c for c in opened if isinstance(c, ChainlitClient)]
    errors = [f"session start: {type(e).__name__}: {e}"[:300] for e in opened if not isinstance(e, ChainlitClient)]
    answered_at = time.time()  # wall clock, comparable with the fake server's request times
    results = await asyncio.gather(*(_answer(c) for c in chats), return_exceptions=True)
    latencies = []
    for chat, res in zip(chats, results, strict=True):
        if isinstance(res, BaseException):
            errors.append(f"answer: {type(res).__name__}: {res}"[:300])
            continue
        latency, output = res
        latencies.append(latency)
        if (problem := _problem(output, chat)) is not None:
            errors.append(problem)
    await asyncio.gather(*(c.close() for c in chats))
    return latencies, errors, setup, answered_at


def _max_overlap(starts: list[float], duration: float) -> int:
    starts = sorted(starts)
    best, j = 0, 0
    for i, s in enumerate(starts):
        while starts[j] < s - duration:
            j += 1
        best = max(best, i - j + 1)
    return best


def _model_process(delay: float, conn: Any) -> None:
    """The fake model in its own process, like a real model server on another machine: its work
    (and the GIL it needs) is not charged to the app or to the clients."""
    with FakeOpenAI() as fake:
        fake.chat.default = _responder(delay)
        conn.send(fake.env())
        while True:
            command = conn.recv()
            if command == "reset":
                fake.reset()
                conn.send("ok")
            elif command == "requests":
                conn.send(fake.requests("chat"))
            else:
                return


class _RemoteModel:
    def __init__(self, delay: float) -> None:
        import multiprocessing as mp

        self._conn, child = mp.Pipe()
        self._proc = mp.get_context("fork").Process(target=_model_process, args=(delay, child), daemon=True)
        self._proc.start()
        self._env: dict[str, str] = self._conn.recv()

    def env(self) -> dict[str, str]:
        return self._env

    def reset(self) -> None:
        self._conn.send("reset")
        self._conn.recv()

    def requests(self, endpoint: str) -> list[dict[str, Any]]:
        self._conn.send("requests")
        return list(self._conn.recv())

    def __enter__(self) -> _RemoteModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.send("stop")
        self._proc.join(5)


def concurrent_sessions(env: dict[str, str], cwd: Path, n: int, delay: float, rounds: int) -> None:
    """``rounds`` bursts of ``n`` new sessions against one warm server; each round's figures, then
    the median round (a burst on a 2-core box shared with the clients and the fake model is noisy)."""
    with _RemoteModel(delay) as fake:
        llm_env = {
            **env,
            **fake.env(),
            "INTERVIEW_GRADER": "llm",
            "INTERVIEW_LLM_MODEL": "gpt-4o-mini",
            "OPENAI_TIMEOUT": "30",
        }
        p95s: list[float] = []
        all_errors = 0
        with AppServer(env=llm_env, cwd=cwd, timeout=60) as server:
            try:
                warm, _, _, _ = asyncio.run(_concurrent(server.url, 1))
                if warm:
                    print(f"  warm-up session (1 client): answer -> grade {warm[0]:.2f} s", flush=True)
                for r in range(1, rounds + 1):
                    fake.reset()
                    latencies, errors, setup, answered_at = asyncio.run(_concurrent(server.url, n))
                    _report_round(r, n, delay, latencies, errors, setup, answered_at, fake.requests("chat"))
                    all_errors += len(errors)
                    if latencies:
                        p95s.append(pct(latencies, 0.95))
            except Exception:
                print(server.output()[-3000:], file=sys.stderr)
                raise
    if p95s:
        print(
            f"{n} concurrent sessions, grader reply {delay:g} s, {len(p95s)} rounds: answer -> grade "
            f"p95 median {statistics.median(p95s):.2f} s (rounds: {', '.join(f'{x:.2f}' for x in p95s)}); "
            f"errors {all_errors}   target p95 <= 1.3 s, 0 errors",
            flush=True,
        )
    else:
        print(f"{n} concurrent sessions: no grade at all; errors {all_errors}", flush=True)


def _report_round(
    r: int,
    n: int,
    delay: float,
    latencies: list[float],
    errors: list[str],
    setup: float,
    answered_at: float,
    chat_requests: list[dict[str, Any]],
) -> None:
    grading = [
        q
        for q in chat_requests
        if ((q["json"] or {}).get("response_format") or {}).get("json_schema", {}).get("name") == "GraderOutput"
    ]
    arrivals = [q["time"] - answered_at for q in grading]
    streamed = sum(bool((q["json"] or {}).get("stream")) for q in grading)
    print(
        f"  round {r}: {n} sessions started in {setup:.2f} s; fake model: {len(chat_requests)} chat requests, "
        f"{len(grading)} grading ({streamed} streamed, {len(_split_for_stream(json.dumps(GRADER_REPLY)))} SSE "
        f"chunks each), up to {_max_overlap([q['time'] for q in grading], delay)} in flight",
        flush=True,
    )
    if arrivals:
        print(
            f"    grading requests reached the model {min(arrivals):.2f}-{max(arrivals):.2f} s after the answers "
            f"were sent; replies left it {delay:g} s later",
            flush=True,
        )
    for e in errors[:10]:
        print(f"    error: {e}", flush=True)
    if latencies:
        print(
            f"    answer -> grade p50 {statistics.median(latencies):.2f} s, p95 {pct(latencies, 0.95):.2f} s, "
            f"max {max(latencies):.2f} s; errors {len(errors)}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="cold-start runs (median reported)")
    parser.add_argument("--sessions", type=int, default=50, help="concurrent socket.io sessions")
    parser.add_argument("--grade-delay", type=float, default=1.0, help="seconds the fake grader takes")
    parser.add_argument("--rounds", type=int, default=3, help="bursts of concurrent sessions (median reported)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-app-") as tmp:
        data, cwd = Path(tmp) / "data", Path(tmp) / "cwd"
        cwd.mkdir()
        env = base_env(data)
        print(f"  store ingested from knowledge/ in {ingest(env, cwd):.1f} s (not timed below)", flush=True)
        cold_start(env, cwd, args.runs)
        concurrent_sessions(env, cwd, args.sessions, args.grade_delay, args.rounds)


if __name__ == "__main__":
    main()
