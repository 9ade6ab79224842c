"""Issue 14, defect 1: one owner of an embedded data folder at a time (bot/retrieval/lock.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.adapters.cli import cli
from bot.retrieval.lock import OWNER_FILE, DataDirBusy, data_lock, read_owner
from bot.settings import Settings
from tests.chainlit_client import AppServer

NOTES = Path(__file__).parent / "data" / "notes"

_HOLDER = textwrap.dedent(
    """
    import sys, time
    from bot.retrieval.lock import data_lock
    from bot.settings import Settings
    with data_lock(Settings(), command="holder-for-the-test"):
        print("held", flush=True)
        sys.stdin.read()  # until the test closes stdin
    """
)


@pytest.fixture
def holder(isolated_state: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process owning this test's data folder."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    yield proc
    if proc.poll() is None:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


def test_a_second_app_on_the_same_folder_refuses_naming_the_owner(holder: subprocess.Popen[str]) -> None:
    result = CliRunner().invoke(cli, ["web", "--port", "1"], catch_exceptions=False)
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert f"pid {holder.pid}" in message and "holder-for-the-test" in message and "since" in message
    assert "CHROMA_HOST" in message and "DATABASE_URL" in message and "Running several processes" in message


def test_a_cli_ingest_waits_for_the_owner_then_refuses_clearly(
    holder: subprocess.Popen[str], monkeypatch: pytest.MonkeyPatch, isolated_state: Path
) -> None:
    monkeypatch.setenv("INTERVIEW_LOCK_WAIT", "0.3")
    result = CliRunner().invoke(cli, ["ingest", str(NOTES)], catch_exceptions=False)
    assert result.exit_code == 1
    err = " ".join(result.stderr.split())
    assert "waiting up to 0.3s" in err and f"pid {holder.pid}" in err and "waited 0.3s" in err
    assert not (isolated_state / "chroma").exists()  # nothing written beside the owner


def test_ingest_runs_once_the_owner_is_gone(holder: subprocess.Popen[str], isolated_state: Path) -> None:
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(timeout=30)  # the OS dropped its lock; its owner record went with it
    assert read_owner(isolated_state) is None
    result = CliRunner().invoke(cli, ["ingest", str(NOTES)], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert not (isolated_state / OWNER_FILE).exists()  # released after the write


def test_a_killed_owner_leaves_no_stuck_lock(holder: subprocess.Popen[str], isolated_state: Path) -> None:
    holder.kill()
    holder.wait(timeout=30)
    with data_lock(Settings(), command="next"):
        owner = read_owner(isolated_state)
        assert owner is not None and owner.pid == os.getpid() and owner.command == "next"


def test_the_lock_is_reentrant_within_a_process_and_exclusive_across(isolated_state: Path) -> None:
    settings = Settings()
    with data_lock(settings), data_lock(settings, wait=0):  # the app's own first-start ingest
        assert read_owner(isolated_state) is not None
        code = subprocess.run(
            [
                sys.executable,
                "-c",
                "from bot.retrieval.lock import data_lock; from bot.settings import Settings\n"
                "with data_lock(Settings()): pass",
            ],
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
            capture_output=True,
            text=True,
        )
        assert code.returncode != 0 and "DataDirBusy" in code.stderr
    assert read_owner(isolated_state) is None


def test_with_a_chroma_server_no_lock_is_taken(isolated_state: Path) -> None:
    with data_lock(Settings(chroma_host="127.0.0.1")):
        assert not isolated_state.exists()


def test_refusal_is_a_data_dir_busy_error(holder: subprocess.Popen[str]) -> None:
    with pytest.raises(DataDirBusy, match="holder-for-the-test"), data_lock(Settings()):
        pass


@pytest.mark.slow
def test_two_interview_web_on_one_folder_the_second_refuses(isolated_state: Path, tmp_path: Path) -> None:
    first = AppServer(data_dir=isolated_state, cwd=tmp_path).start()
    try:
        second = AppServer(data_dir=isolated_state, cwd=tmp_path).spawn()
        assert second.proc is not None
        assert second.proc.wait(timeout=60) == 1
        out = " ".join(second.output().split())
        assert first.proc is not None and f"pid {first.proc.pid}" in out and "interview web" in out
        assert "CHROMA_HOST" in out
        second.cleanup()
    finally:
        first.cleanup()
