"""LangSmith tracing, tested without the network: a recorder on 127.0.0.1 stands in for the API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fake_openai import FakeOpenAI, Reply
from tests.langsmith_recorder import LangSmithRecorder
from tests.test_llm_grader import reply

SECRET_OPENAI = "sk-test-SECRET-openai-123"
SECRET_LANGSMITH = "lsv2_pt_SECRET_langsmith_456"


ROOT = Path(__file__).resolve().parents[1]


def tracing_env(recorder: LangSmithRecorder, fake: FakeOpenAI) -> dict[str, str]:
    return {
        **os.environ,
        "LANGSMITH_TRACING": "true",
        "LANGCHAIN_TRACING_V2": "true",
        "LANGSMITH_ENDPOINT": recorder.url,
        "LANGSMITH_API_KEY": SECRET_LANGSMITH,
        "LANGSMITH_PROJECT": "interview-coach-tests",
        "OPENAI_BASE_URL": fake.base_url,
        "OPENAI_API_KEY": SECRET_OPENAI,
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
    }


def grade_runs(recorder: LangSmithRecorder, mode: str) -> list[dict[str, Any]]:
    runs = [r for r in recorder.runs.values() if r.get("name") == "grade"]
    return [r for r in runs if r.get("extra", {}).get("metadata", {}).get("mode") == mode]


def nested_model_calls(recorder: LangSmithRecorder, parent: dict[str, Any]) -> int:
    return sum(
        r.get("name") == "llm-grader" and r.get("parent_run_id") == parent.get("id") for r in recorder.runs.values()
    )


def grade_in_subprocess(env: dict[str, str], grader: str, answer: str) -> subprocess.CompletedProcess[str]:
    """`interview grade --json` in a fresh process (so LangSmith's client starts from the env)."""
    args = ["grade", "--question", "What is dropout?", "--answer", answer, "--grader", grader, "--json"]
    args += ["--reference", "Dropout deactivates random neurons during training to curb overfitting."]
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


@pytest.mark.slow
def test_cli_grade_is_traced_with_metadata_and_no_secrets(
    langsmith_recorder: LangSmithRecorder, tmp_path: Path
) -> None:
    recorder = langsmith_recorder
    with FakeOpenAI() as fake:
        fake.chat.default = lambda req: Reply.content(reply(("hit", "missed")))
        env = {**tracing_env(recorder, fake), "INTERVIEW_DATA_DIR": str(tmp_path / "data")}
        proc = grade_in_subprocess(env, "llm", "It turns off random neurons while training.")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["grader"] == "llm:gpt-4o-mini"
    runs = list(recorder.runs.values())
    cli_runs = grade_runs(recorder, "cli")
    assert len(cli_runs) == 1, f"expected one grade run; saw {[r.get('name') for r in runs]}"
    meta = cli_runs[0].get("extra", {}).get("metadata", {})
    assert meta["grader"] == "llm:gpt-4o-mini" and meta["mode"] == "cli"
    assert meta["prompt_version"].startswith("grader-") and "card_id" in meta
    assert nested_model_calls(recorder, cli_runs[0]) == 1  # the model call is nested inside the grade
    everything = b"".join(recorder.raw)
    assert SECRET_OPENAI.encode() not in everything and SECRET_LANGSMITH.encode() not in everything


@pytest.mark.slow
def test_unreachable_endpoint_warns_and_grades_without_tracing(tmp_path: Path) -> None:
    import socket

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
    proc = grade_in_subprocess(env, "offline", "Random neurons are off.")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "graded"
    assert "LangSmith tracing is off for this run" in proc.stderr and str(dead) in proc.stderr


@pytest.mark.slow
def test_web_and_terminal_sessions_record_one_grade_run_per_grade(
    langsmith_recorder: LangSmithRecorder, seeded: Path
) -> None:
    """Streamed grades through the worker process (web), interview answers, a follow-up and appeals
    (terminal): every grade the user sees is exactly one ``grade`` run with its metadata."""
    with FakeOpenAI() as fake:
        fake.chat.default = lambda req: Reply.content(reply(("hit", "missed")))
        env = tracing_env(langsmith_recorder, fake)
        proc = subprocess.run(
            [sys.executable, "-m", "tests.tracing_paths"], capture_output=True, text=True, env=env, timeout=240
        )
    assert proc.returncode == 0, proc.stderr
    counts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert counts["web"] >= 3 and counts["web:appeal"] == 1 and counts["web:worker_fallbacks"] == 0, counts
    assert counts["terminal:follow_up"] >= 1 and counts["terminal:appeal"] == 1
    for mode in ("web", "terminal"):
        runs = grade_runs(langsmith_recorder, mode)
        assert len(runs) == counts[mode], (mode, len(runs), counts)
        appeals = [r for r in runs if r["extra"]["metadata"]["appeal"] == "yes"]
        assert len(appeals) == counts[f"{mode}:appeal"]
        for run in runs:
            meta = run["extra"]["metadata"]
            assert meta["grader"] == "llm:gpt-4o-mini" and meta["prompt_version"].startswith("grader-")
            assert meta["card_id"] and meta["topic"]
            assert nested_model_calls(langsmith_recorder, run) >= 1
    everything = b"".join(langsmith_recorder.raw)
    assert SECRET_OPENAI.encode() not in everything and SECRET_LANGSMITH.encode() not in everything


@pytest.mark.slow
@pytest.mark.parametrize("grader", ["offline", "llm"])
def test_eval_batches_record_one_grade_run_per_answer(
    langsmith_recorder: LangSmithRecorder, tmp_path: Path, grader: str
) -> None:
    rows = [
        {
            "question": "What is dropout?",
            "reference_answer": "Dropout deactivates random neurons during training to curb overfitting.",
            "student_answer": answer,
            "score": score,
            "score_max": 1,
            "question_id": f"q{i}",
        }
        for i, (answer, score) in enumerate(
            [("It turns off random neurons.", 1), ("No idea.", 0), ("Random units drop out in training.", 1)] * 2
        )
    ]
    data = tmp_path / "set.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    with FakeOpenAI() as fake:
        fake.chat.default = lambda req: Reply.content(reply(("hit", "missed")))
        env = {**tracing_env(langsmith_recorder, fake), "INTERVIEW_DATA_DIR": str(tmp_path / "data")}
        proc = subprocess.run(
            [sys.executable, "-m", "bot", "eval", str(data), "--grader", grader, "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=240,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    runs = grade_runs(langsmith_recorder, "eval")
    assert len(runs) == len(rows)
    assert sorted(r["extra"]["metadata"]["card_id"] for r in runs) == sorted(r["question_id"] for r in rows)
    assert all(r.get("outputs") for r in runs)  # each run carries its grade
    calls = [nested_model_calls(langsmith_recorder, r) for r in runs]
    assert calls == ([1] * len(rows) if grader == "llm" else [0] * len(rows))
