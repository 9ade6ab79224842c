"""Terminal mode: the shared session core driven from stdin, in-process and as a real piped process."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bot.adapters.cli import cli
from bot.adapters.terminal import read_answer


def test_read_answer_paragraphs_commands_and_end_of_input() -> None:
    stream = io.StringIO("\n\nfirst line\nsecond line\n\n/hint\n/appeal I said it\nlast words")
    assert read_answer(stream) == "first line\nsecond line"
    assert read_answer(stream) == "/hint"
    assert read_answer(stream) == "/appeal I said it"
    assert read_answer(stream) == "last words"
    assert read_answer(stream) is None


def _history(settings_dir: Path) -> Any:
    from bot.history.repository import History
    from bot.settings import Settings

    return History.from_settings(Settings())


def test_practice_from_a_pipe_records_everything_and_prints_the_report(seeded: Path) -> None:
    stdin = "Dropout switches off random neurons while training\nso the net does not overfit.\n\n/hint\n/skip\n"
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["practice", "-n", "3", "--seed", "7"], input=stdin)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Study session: 3 questions" in out and "offline grader" in out
    assert "Question 1 of 3" in out and "Score:" in out and "From your notes" in out
    assert "Hint 1" in out and "Skipped:" in out
    assert "Session report" in out and "1 skipped (counted as 0)" in out  # input ended: report
    history = _history(seeded)
    uid = history.user_id("local")
    kinds = [a.kind.value for a in history.attempts(uid)]
    assert kinds == ["answer", "skip"]
    assert history.unfinished_session(uid) is None  # finished by the end of input


def test_practice_interview_mode_on_one_topic_asks_follow_ups(seeded: Path) -> None:
    stdin = "It has gates.\n\nI do not know more.\n\n/end\n"
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        cli, ["practice", "--mode", "interview", "--topic", "rnn", "-n", "2", "--seed", "1"], input=stdin
    )
    assert result.exit_code == 0, result.output
    assert "Interview session: 2 questions" in result.output and "RNN & LSTM" in result.output
    assert "Follow-up 1 of 2" in result.output
    assert "From your notes" not in result.output.split("Session report")[0]  # hidden until the report


def test_practice_bad_topic_is_a_usage_error(seeded: Path) -> None:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["practice", "--topic", "astrology"], input="")
    assert result.exit_code == 2 and "choose from" in result.output


def test_resume_continues_at_the_next_question(seeded: Path) -> None:
    import asyncio

    from bot.practice.coach import Coach
    from bot.practice.session import SessionConfig
    from bot.settings import Settings

    async def half_a_session() -> None:
        coach = Coach.open(Settings())
        session = await coach.start(SessionConfig(n_questions=3))
        [e async for e in session.begin()]
        [e async for e in session.handle("an answer to the first question")]
        coach.history.close()

    asyncio.run(half_a_session())
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["practice", "--resume"], input="/end\n")
    assert result.exit_code == 0, result.output
    assert "Resuming your session at question 2 of 3" in result.output
    assert "Question 2 of 3" in result.output and "1 of 3 questions" in result.output


@pytest.mark.slow
def test_killed_process_loses_no_graded_answer_and_resumes(seeded: Path) -> None:
    """A real `interview practice` fed through a pipe, SIGKILLed after two graded answers."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    exe = str(Path(sys.executable).with_name("interview"))
    proc = subprocess.Popen(
        [exe, "practice", "-n", "4", "--seed", "3"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    seen = ""
    try:
        for n, answer in ((2, "first answer about weights"), (3, "second answer about data")):
            proc.stdin.write(answer + "\n\n")
            proc.stdin.flush()
            deadline = time.monotonic() + 60
            while f"Question {n} of 4" not in seen:
                line = proc.stdout.readline()
                assert line, seen[-2000:]
                seen += line
                assert time.monotonic() < deadline
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    history = _history(seeded)
    uid = history.user_id("local")
    assert [a.answer for a in history.attempts(uid)] == ["first answer about weights", "second answer about data"]
    result = subprocess.run(
        [exe, "practice", "--resume"], input="/end\n", capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "Resuming your session at question 3 of 4" in result.stdout
    assert "2 of 4 questions" in result.stdout
