"""LangSmith tracing, tested without the network: a recorder on 127.0.0.1 stands in for the API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fake_openai import FakeOpenAI, Reply
from tests.langsmith_recorder import LangSmithRecorder
from tests.test_llm_grader import reply

SECRET_OPENAI = "sk-test-SECRET-openai-123"
SECRET_LANGSMITH = "lsv2_pt_SECRET_langsmith_456"


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
        proc = grade_in_subprocess(env, "llm", "It turns off random neurons while training.")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["grader"] == "llm:gpt-4o-mini"
    runs = list(recorder.runs.values())
    grade_runs = [r for r in runs if r.get("name") == "grade"]
    assert grade_runs, f"no grade run recorded; saw {[r.get('name') for r in runs]}"
    meta = grade_runs[0].get("extra", {}).get("metadata", {})
    assert meta["grader"] == "llm:gpt-4o-mini" and meta["mode"] == "cli"
    assert meta["prompt_version"].startswith("grader-") and "card_id" in meta
    assert any(r.get("name") == "llm-grader" for r in runs)  # the model call is nested
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
