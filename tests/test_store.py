"""The card store: ingest is incremental and idempotent; retrieval returns the right cards."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bot.knowledge.ingest import IngestError, collect, ingest
from bot.retrieval.store import CardStore, open_store
from bot.settings import Settings

NOTES = Path(__file__).parent / "data" / "notes"


@pytest.fixture
def knowledge(tmp_path: Path) -> Path:
    k = tmp_path / "knowledge"
    k.mkdir()
    shutil.copy(NOTES / "markdown.md", k / "markdown.md")
    shutil.copy(NOTES / "qa.txt", k / "qa.txt")
    return k


@pytest.fixture
def store(settings: Settings, local_embedder: Any) -> CardStore:
    return open_store(settings, local_embedder)


def ids(store: CardStore) -> set[str]:
    return {c.id for c in store.all_cards()}


def test_ingest_twice_is_idempotent(store: CardStore, knowledge: Path) -> None:
    first = ingest([knowledge], store, knowledge)
    assert (first.files, first.cards, first.added) == (2, 11, 11)
    before = ids(store)
    second = ingest([knowledge], store, knowledge)
    assert (second.added, second.updated, second.removed, second.unchanged) == (0, 0, 0, 11)
    assert store.count() == 11 and ids(store) == before


def test_edited_notes_update_and_deleted_notes_are_removed(store: CardStore, knowledge: Path) -> None:
    ingest([knowledge], store, knowledge)
    qa = knowledge / "qa.txt"
    qa.write_text(qa.read_text().replace("harmonic mean", "HARMONIC MEAN (edited)"))
    s = ingest([knowledge], store, knowledge)
    assert (s.added, s.updated, s.removed) == (0, 1, 0)
    f1 = next(c for c in store.all_cards() if c.display_question == "What is the F1 score?")
    assert "edited" in f1.answer

    # Remove one question from a file, then a whole file.
    qa.write_text(qa.read_text().replace("Q: What is recall?", "Recall, no longer a question"))
    s = ingest([knowledge], store, knowledge)
    assert s.removed == 1 and store.count() == 10
    (knowledge / "markdown.md").unlink()
    s = ingest([knowledge], store, knowledge)
    assert s.removed == 6 and store.count() == 4
    assert all(c.source.path == "qa.txt" for c in store.all_cards())


def test_ingesting_one_file_keeps_other_sources(store: CardStore, knowledge: Path, tmp_path: Path) -> None:
    ingest([knowledge], store, knowledge)
    extra = tmp_path / "extra.md"
    extra.write_text("## What is a tensor?\nA multi-dimensional array.\n")
    s = ingest([extra], store, knowledge)
    assert (s.added, s.removed) == (1, 0) and store.count() == 12
    card = next(c for c in store.all_cards() if c.display_question == "What is a tensor?")
    assert card.source.path == extra.resolve().as_posix()


def test_related_and_search(seeded: Path, settings: Settings, local_embedder: Any) -> None:
    store = open_store(settings, local_embedder)
    assert store.count() == 95  # 91 written questions + 4 concept cards
    cards = store.all_cards()
    vg = next(c for c in cards if c.display_question == "What is vanishing gradient problem?")
    r = store.related(vg, k=3)
    assert r.reference == vg.answer and r.card.id == vg.id
    assert len(r.passages) == 3 and vg.id not in {h.card.id for h in r.passages}
    assert all(h.card.answer for h in r.passages)
    scores = [h.score for h in r.passages]
    assert scores == sorted(scores, reverse=True) and 0 < scores[-1] <= 1
    assert "How to solve this vanishing gradient problem?" in {h.card.display_question for h in r.passages}

    hits = store.search("attention lets every token look at every other token", k=5)
    assert hits[0].card.display_question == "What is self attention mechanism?"
    hits = store.search("gates that decide what to forget in recurrent networks", k=3)
    assert any("LSTM" in h.card.display_question for h in hits)
    assert store.search("   ") == []


def test_store_reopens_with_a_new_client(settings: Settings, local_embedder: Any, knowledge: Path) -> None:
    ingest([knowledge], open_store(settings, local_embedder), knowledge)
    again = open_store(settings, local_embedder)
    assert again.count() == 11
    assert again.search("harmonic mean of precision and recall", k=1)[0].card.display_question == (
        "What is the F1 score?"
    )


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.txt", b"", "empty"),
        ("blank.md", b"  \n\n  ", "empty"),
        ("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "not a text notes file"),
        ("prose.txt", b"Just some prose without any questions.\n", "no questions found"),
    ],
)
def test_bad_files_are_rejected_before_writing(
    store: CardStore, tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    bad = tmp_path / name
    bad.write_bytes(content)
    with pytest.raises(IngestError, match=message):
        ingest([bad], store, tmp_path)
    assert store.count() == 0


def test_directory_without_notes(tmp_path: Path) -> None:
    empty = tmp_path / "nothing"
    empty.mkdir()
    (empty / "data.csv").write_text("a,b\n")
    with pytest.raises(IngestError, match="no notes found"):
        collect([empty], tmp_path)
    with pytest.raises(IngestError, match="no such file"):
        collect([tmp_path / "missing"], tmp_path)


def test_directory_skips_bad_files_with_a_warning(knowledge: Path) -> None:
    (knowledge / "broken.txt").write_bytes(b"\x00\x01\x02binary")
    parsed, warnings = collect([knowledge], knowledge)
    assert len(parsed) == 2
    assert len(warnings) == 1 and "broken.txt" in warnings[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def chroma_server(tmp_path: Path) -> Any:
    exe = Path(sys.executable).with_name("chroma")
    if not exe.exists():
        pytest.fail("the chroma CLI is missing from the environment (it ships with chromadb)")
    port = _free_port()
    proc = subprocess.Popen(
        [str(exe), "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("chroma server did not start")
    yield port
    proc.terminate()
    proc.wait(timeout=10)


@pytest.mark.slow
def test_chroma_server_mode(
    chroma_server: int, monkeypatch: pytest.MonkeyPatch, local_embedder: Any, knowledge: Path
) -> None:
    monkeypatch.setenv("CHROMA_HOST", "127.0.0.1")
    monkeypatch.setenv("CHROMA_PORT", str(chroma_server))
    settings = Settings()
    store = open_store(settings, local_embedder)
    assert type(store._client).__name__ != "PersistentClient"
    s = ingest([knowledge], store, knowledge)
    assert s.added == 11
    assert not settings.chroma_path.exists()  # nothing embedded on disk: the server holds it
    again = open_store(Settings(), local_embedder)
    assert again.count() == 11
    assert ingest([knowledge], again, knowledge).unchanged == 11
    assert again.search("harmonic mean of precision and recall", k=1)[0].card.display_question == (
        "What is the F1 score?"
    )


def test_reopening_in_a_fresh_process_never_builds_chromas_default_model(
    settings: Settings, local_embedder: Any, knowledge: Path, tmp_path: Path
) -> None:
    ingest([knowledge], open_store(settings, local_embedder), knowledge)
    home = tmp_path / "home"  # Chroma's default ONNX model would be cached under ~/.cache/chroma
    code = (
        "import warnings; warnings.simplefilter('error', UserWarning)\n"
        "from bot.retrieval.store import open_store; from bot.settings import Settings\n"
        "s = open_store(Settings())\n"
        "print(s.count(), s.search('harmonic mean of precision and recall', k=1)[0].card.display_question)\n"
    )
    env = {**os.environ, "HOME": str(home), "INTERVIEW_DATA_DIR": str(settings.data_dir)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "11 What is the F1 score?"
    assert not (home / ".cache" / "chroma").exists()


def test_openai_compatible_embeddings_by_configuration(knowledge: Path) -> None:
    from bot.retrieval.embeddings import make_embedder
    from tests.fake_openai import FakeOpenAI

    with FakeOpenAI(embedding_dim=64) as fake:
        settings = Settings(
            embeddings="openai", openai_base_url=fake.base_url, openai_embedding_model="nomic-embed-text"
        )
        embedder = make_embedder(settings)
        assert embedder.model_id == "openai-nomic-embed-text"
        store = open_store(settings, embedder)
        assert store.name == "cards-openai-nomic-embed-text"  # never mixed with the local model's vectors
        summary = ingest([knowledge], store, knowledge)
        assert summary.added == 11 and store.count() == 11
        bodies = [r["json"] for r in fake.requests("embeddings")]
        assert bodies and all(b["model"] == "nomic-embed-text" for b in bodies)
        assert sum(len(b["input"]) for b in bodies) == 11
        hits = store.search("harmonic mean of precision and recall", k=3)
        assert len(hits) == 3 and all(-1 <= h.score <= 1 for h in hits)
