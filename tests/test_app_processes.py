"""Issue 14, defect 2: apps started from one folder do not share (and delete) Chainlit's files folder."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.adapters.web import use_private_files_directory
from tests.chainlit_client import AppServer, ChainlitClient
from tests.conftest import REAL_NOTES

NOTES = Path(__file__).parent / "data" / "notes"
ANSWER = "Dropout randomly drops neurons during training so the network cannot co-adapt; it reduces overfitting."


def test_each_server_gets_its_own_files_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    import chainlit.config
    import chainlit.server

    shared = chainlit.config.FILES_DIRECTORY
    monkeypatch.setattr(chainlit.config, "FILES_DIRECTORY", shared)
    monkeypatch.setattr(chainlit.server, "FILES_DIRECTORY", shared)
    first, second = use_private_files_directory(), use_private_files_directory()
    try:
        assert first != second and first.is_dir() and second.is_dir()
        assert shared not in (first, second) and not first.is_relative_to(Path(chainlit.config.APP_ROOT))
        assert chainlit.config.FILES_DIRECTORY == chainlit.server.FILES_DIRECTORY == second  # type: ignore[attr-defined]
    finally:
        shutil.rmtree(first)
        shutil.rmtree(second)


@pytest.mark.slow
async def test_stopping_one_app_leaves_another_from_the_same_folder_working(
    _seeded_template: Path, tmp_path: Path
) -> None:
    root = tmp_path / "app-root"  # both started from here: Chainlit's shared ./.files lived here
    root.mkdir()
    servers = []
    for name in ("a", "b"):
        shutil.copytree(_seeded_template, tmp_path / name)
        env = {"CHAINLIT_APP_ROOT": str(root), "INTERVIEW_KNOWLEDGE_DIR": str(REAL_NOTES.parent)}
        servers.append(AppServer(data_dir=tmp_path / name, cwd=root, env={**env, "INTERVIEW_GRADER": "offline"}))
    first, second = servers
    try:
        first.start()
        second.start()
        async with ChainlitClient(second.url) as chat:
            await chat.send("/drill 1")
            await chat.wait_for("Question 1 of")
            first.stop()  # Chainlit removes its files folder on shutdown
            mark = chat.mark()
            await chat.send(ANSWER)
            await chat.send("/end")
            report = await chat.wait_for(
                "Session report",
                after=mark,
                where=lambda m: any(e.get("type") == "file" for e in m.elements),
            )
            md = next(e for e in report.elements if e.get("type") == "file")
            assert (await chat.fetch_element(md)).decode().strip()
            assert not chat.errors, f"{chat.errors}\n{second.output()[-3000:]}"
        assert "FileNotFoundError" not in second.output()
    finally:
        first.cleanup()
        second.cleanup()


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[int]:
    """A Chroma server (`chroma run`) on a free loopback port, its files in this test's temp dir."""
    import subprocess
    import sys
    import time
    import urllib.request

    from tests.chainlit_client import free_port

    port = free_port()
    exe = Path(sys.executable).with_name("chroma")
    log = (tmp_path / "chroma.log").open("wb")
    proc = subprocess.Popen(
        [str(exe), "run", "--path", str(tmp_path / "chroma-server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail(f"chroma run did not start: {(tmp_path / 'chroma.log').read_text()[-2000:]}")
                time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.mark.slow
async def test_two_apps_on_one_chroma_server_and_one_postgres(
    chroma_server: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14 (1), the multi-process mode: two `interview web` on one data folder, one Chroma
    server, one PostgreSQL. A session started on one resumes on the other; cards ingested while
    both run are asked by the other without a restart."""
    from click.testing import CliRunner

    from bot.adapters.cli import cli
    from tests.db_fixtures import _postgres_schema_url

    urls = _postgres_schema_url()
    database_url = next(urls)
    knowledge = tmp_path / "knowledge"
    knowledge.mkdir()
    shutil.copy(NOTES / "qa.txt", knowledge / "qa.txt")
    env = {
        "CHROMA_HOST": "127.0.0.1",
        "CHROMA_PORT": str(chroma_server),
        "DATABASE_URL": database_url,
        "INTERVIEW_KNOWLEDGE_DIR": str(knowledge),
        "INTERVIEW_GRADER": "offline",
        "INTERVIEW_DATA_DIR": str(tmp_path / "data"),  # the same folder for both: no lock with a server
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert CliRunner().invoke(cli, ["ingest"], catch_exceptions=False).exit_code == 0
    first = AppServer(env=env, cwd=tmp_path)
    second = AppServer(env=env, cwd=tmp_path)
    try:
        first.start()
        second.start()
        async with ChainlitClient(first.url) as chat:
            await chat.send("/drill 2")
            await chat.wait_for("Question 1 of 2")
            mark = chat.mark()
            await chat.send(ANSWER)
            await chat.wait_for("Question 2 of 2", after=mark)
        async with ChainlitClient(second.url) as chat:
            await chat.send("/resume")
            await chat.wait_for("Question 2 of 2")
            assert not chat.errors, chat.errors

        (knowledge / "new.md").write_text(
            "#IMPORTANT\nWhat is the multi-process canary concept?\nA card ingested while both apps run.\n",
            encoding="utf-8",
        )
        result = CliRunner().invoke(cli, ["ingest"], catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
        async with ChainlitClient(second.url) as chat:
            await chat.send("/review 1")  # new cards, important first
            await chat.wait_for("multi-process canary concept")
            assert not chat.errors, chat.errors
    except AssertionError as exc:
        logs = f"first app:\n{first.output()[-3000:]}\nsecond app:\n{second.output()[-3000:]}"
        raise AssertionError(f"{exc}\n{logs}") from exc
    finally:
        first.cleanup()
        second.cleanup()
        urls.close()
