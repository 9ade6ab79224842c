"""Issue 14, defect 2: apps started from one folder do not share (and delete) Chainlit's files folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.adapters.web import use_private_files_directory
from tests.chainlit_client import AppServer, ChainlitClient
from tests.conftest import REAL_NOTES

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
