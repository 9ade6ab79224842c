"""Issue 14, defect 7: an ingest killed while writing leaves the old or the new store, never half of it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.adapters.cli import cli

NOTES = Path(__file__).parent / "data" / "notes"
ROOT = Path(__file__).resolve().parents[1]

# Runs `interview ingest FOLDER` and dies (os._exit, like kill -9: no cleanup) inside the
# collection write, after ``AFTER`` batches reached Chroma.
_KILLED_INGEST = textwrap.dedent(
    """
    import os, sys
    from chromadb.api.models.Collection import Collection
    from bot.adapters.cli import cli

    after, calls, real = int(sys.argv[2]), [], Collection.upsert

    def upsert(self, *args, **kwargs):
        real(self, *args, **kwargs)
        calls.append(1)
        if len(calls) >= after:
            os._exit(137)

    def before_the_journal(self, records, deletes):
        os._exit(137)

    if after == 0:  # killed after embedding, before anything is written
        from bot.retrieval.journal import Journal

        Journal.write = before_the_journal
    if after < 0:  # killed while embedding: in the embedder's call number -after
        from bot.retrieval.embeddings import LocalEmbedder

        embeds, real_embed = [], LocalEmbedder.embed

        def embed(self, texts):
            embeds.append(1)
            if len(embeds) >= -after:
                os._exit(137)
            return real_embed(self, texts)

        LocalEmbedder.embed = embed
    Collection.upsert = upsert
    cli(["ingest", sys.argv[1]])
    """
)


def _ingest_json(folder: Path) -> dict[str, object]:
    result = CliRunner().invoke(cli, ["ingest", str(folder), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    parsed: dict[str, object] = json.loads(result.stdout)
    return parsed


def _store_ids() -> set[str]:
    from bot.retrieval.store import open_store
    from bot.settings import Settings

    return {c.id for c in open_store(Settings()).all_cards()}


def _ingest_then_kill(tmp_path: Path, after: int) -> tuple[Path, set[str]]:
    """Ingest the test notes, add 600 cards and run an ingest that dies (see ``_KILLED_INGEST``);
    returns the notes folder and the card ids stored before."""
    folder = tmp_path / "notes"
    shutil.copytree(NOTES, folder)
    _ingest_json(folder)
    old = _store_ids()
    big = "\n\n".join(f"What is term number {i}?\nTerm number {i} is the {i}th term of the test." for i in range(600))
    (folder / "big.md").write_text(big, encoding="utf-8")
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_INGEST, str(folder), str(after)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == 137, killed.stderr
    return folder, old


@pytest.mark.parametrize("after", [0, 1, 2])
def test_an_ingest_killed_mid_write_leaves_the_old_or_the_new_store_and_the_next_completes(
    tmp_path: Path, isolated_state: Path, after: int
) -> None:
    folder, old = _ingest_then_kill(tmp_path, after)  # died inside the write (600 cards: three batches)

    now = _store_ids()  # opening the store completes a killed write
    assert now == old if after == 0 else (now > old and len(now) == len(old) + 600)
    summary = _ingest_json(folder)
    assert (summary["added"], summary["updated"], summary["removed"]) == (600 if after == 0 else 0, 0, 0)
    assert len(_store_ids()) == len(old) + 600
    assert not list(isolated_state.glob("ingest-journal-*"))


def test_an_ingest_killed_while_embedding_is_resumed_by_the_next(tmp_path: Path, isolated_state: Path) -> None:
    folder, old = _ingest_then_kill(tmp_path, -3)  # dies in the third batch of 256: two batches embedded
    assert _store_ids() == old  # nothing of the killed ingest is in the store
    summary = _ingest_json(folder)
    assert summary["added"] == 600 and summary["reused"] == 512  # the killed ingest's vectors, kept
    assert len(_store_ids()) == len(old) + 600
    assert not list(isolated_state.glob(".ingest-journal-*")) and not list(isolated_state.glob("ingest-journal-*"))
