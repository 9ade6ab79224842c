"""Issue 14, defect 8: large notes are parsed, embedded and written with bounded memory.

No wall clock here: what is pinned is that parsing yields cards as the lines come, and that the
Python heap's peak while collecting or syncing (tracemalloc) stays under a bound that is a
fraction of what the file or the cards hold — it does not grow with the size of the notes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.knowledge.cards import Card, Source
from bot.knowledge.ingest import collect
from bot.knowledge.notes import iter_cards, parse_notes
from bot.knowledge.spool import CardSpool
from bot.retrieval import store as store_module
from bot.retrieval.store import CardStore, make_chroma_client
from bot.settings import Settings

MB = 1 << 20


def _peak(work: Callable[[], Any]) -> int:
    """The Python heap's peak (bytes, over what was live before) while ``work`` runs."""
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _write_notes(path: Path, questions: int, answer_lines: int = 8) -> None:
    """Questions with answers of ``answer_lines`` × ~1 KB; an astral letter in every answer makes
    each decoded answer line 4 bytes a character (as in the bench's 50 MB file)."""
    with path.open("w", encoding="utf-8") as out:
        for n in range(questions):
            answer = "\n".join(f"Line {i} of answer {n} about 𝐰 " + "word " * 200 for i in range(answer_lines))
            out.write(f"What is concept number {n}?\n{answer}\n\n")


def test_cards_come_from_an_endless_stream_of_lines_as_they_are_read() -> None:
    def endless() -> Iterator[str]:
        for n in itertools.count():
            yield from (f"What is concept {n}?", f"Concept {n} is a thing.", "")

    cards = list(itertools.islice(iter_cards(endless(), "n.md"), 3))
    assert [c.display_question for c in cards] == ["What is concept 0?", "What is concept 1?", "What is concept 2?"]
    assert [c.answer for c in cards] == ["Concept 0 is a thing.", "Concept 1 is a thing.", "Concept 2 is a thing."]


def test_collecting_a_large_file_holds_a_card_not_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.knowledge.spool.SPOOL_MEMORY_BYTES", 64 * 1024)
    warm = tmp_path / "warm.md"
    _write_notes(warm, 2)
    collect([warm], tmp_path)  # first-use imports and regex compilation are not the file's
    notes = tmp_path / "big.md"
    _write_notes(notes, 150)  # 1.2 MB of UTF-8, 4.9 MB decoded
    assert notes.stat().st_size > MB
    got: list[Any] = []
    peak = _peak(lambda: got.append(collect([notes], tmp_path)))
    (parsed,), warnings = got[0]
    assert warnings == [] and len(parsed.cards) == 150
    assert peak < MB  # before: the bytes, the decoded text, its lines and every card (> 10 MB)
    assert [c.display_question for c in parsed.cards][-1] == "What is concept number 149?"


def test_a_spool_gives_back_the_same_cards_in_memory_and_on_disk() -> None:
    cards = parse_notes("".join(f"What is term {i}?\nTerm {i} is a 𝐰 term.\n\n" for i in range(40)), "n.md")
    small, spilled = CardSpool(cards), CardSpool(cards, memory_bytes=512)
    for spool in (small, spilled):
        assert len(spool) == 40 and list(spool) == cards and list(spool) == cards  # read as often as needed
        assert spool[3] == cards[3] and spool[-1] == cards[-1] and spool[1:3] == cards[1:3]
        first, second = iter(spool), iter(spool)
        assert next(first) == next(second) == cards[0] and next(first) == cards[1]
        spool.close()


class _HashEmbedder:
    """Deterministic 16-dimensional vectors from a text's hash (fast; the store's memory is the point)."""

    model_id = "hash-16"

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls = 0
        self.fail_after = fail_after

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("embedding service went away")
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[:16], dtype=np.uint8) for t in texts]
        vectors = np.asarray(rows, dtype=np.float32) + 1.0
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _cards(n: int, edition: str) -> CardSpool:
    answer = "An answer of about eight kilobytes. " * 230  # ~8 KB a card
    return CardSpool(
        Card(
            id=f"card{i:04d}",
            question=f"What is concept {i}?",
            display_question=f"What is concept {i}?",
            answer=f"{edition} {i}: {answer}",
            topic="ML",
            source=Source(path="big.md", line_start=i + 1, line_end=i + 1),
        )
        for i in range(n)
    )


def test_sync_holds_a_batch_of_cards_not_all_of_them(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "_BATCH", 16)
    monkeypatch.setattr(store_module, "_WRITE_BATCH", 16)
    monkeypatch.setattr(store_module, "_PAGE", 40)
    store = CardStore(make_chroma_client(settings), _HashEmbedder())
    store.sync({"big.md": ("/notes/big.md", _cards(20, "warm-up"))})  # Chroma's first-write setup
    first, second = _cards(200, "first"), _cards(200, "second")
    reports: list[Any] = []
    peaks = [
        _peak(lambda: reports.append(store.sync({"big.md": ("/notes/big.md", first)}))),
        _peak(lambda: reports.append(store.sync({"big.md": ("/notes/big.md", second)}))),  # every card changed
    ]
    assert [(len(r.added), len(r.updated)) for r in reports] == [(180, 20), (0, 200)]
    assert store.count() == 200 and store.get("card0199") == second[199]
    # A batch of 16 cards is ~0.5 MB with its texts, metadata and journal lines; the 200 cards
    # are ~6 MB as Card objects, and the second sync's existing metadata (card JSON) as much again.
    assert max(peaks) < 1.5 * MB, peaks


def test_an_embedding_failure_half_way_leaves_the_store_and_the_next_sync_resumes(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.retrieval.journal import Journal

    monkeypatch.setattr(store_module, "_BATCH", 16)
    journal = Journal(tmp_path / "journal" / "ingest-journal.jsonl")
    client = make_chroma_client(settings)
    store = CardStore(client, _HashEmbedder(fail_after=2), journal=journal)
    cards = _cards(60, "first")
    with pytest.raises(RuntimeError, match="went away"):
        store.sync({"big.md": ("/notes/big.md", cards)})  # the third batch fails
    assert store.count() == 0 and not journal.pending()  # nothing written, no journal to apply
    assert len(journal.leftovers()) == 32  # the two batches embedded before the failure

    embedder = _HashEmbedder()
    texts: list[str] = []
    real = embedder.embed
    embedder.embed = lambda batch: (texts.extend(batch), real(batch))[1]  # type: ignore[method-assign]
    again = CardStore(client, embedder, journal=journal)
    progress: list[tuple[int, int]] = []
    report = again.sync({"big.md": ("/notes/big.md", cards)}, progress=lambda d, t: progress.append((d, t)))
    assert len(report.added) == 60 and report.reused == 32 and len(texts) == 28  # only the rest embedded
    assert again.count() == 60 and again.get("card0005") == cards[5] and progress[-1] == (60, 60)
    fresh = _HashEmbedder().embed([cards[5].search_text()])[0]
    stored = again._collection.get(ids=["card0005"], include=["embeddings"])["embeddings"][0]
    assert np.allclose(stored, fresh)  # the kept vector is the one the card's text gets
    assert list((tmp_path / "journal").glob("*")) == [] and journal.leftovers() == {}  # all cleared
    assert again.sync({"big.md": ("/notes/big.md", cards)}).unchanged == 60


def test_a_leftover_vector_for_a_changed_card_is_not_reused(settings: Settings, tmp_path: Path) -> None:
    from bot.retrieval.journal import Journal

    journal = Journal(tmp_path / "ingest-journal.jsonl")
    client = make_chroma_client(settings)
    with pytest.raises(RuntimeError):
        CardStore(client, _HashEmbedder(fail_after=0), journal=journal).sync({"b": ("/b.md", _cards(3, "old"))})
    torn = tmp_path / ".ingest-journal.jsonl.99999.tmp"  # a killed writer's file, its last line torn
    old = list(_cards(3, "old"))
    line = {"id": old[0].id, "embedding": [0.5] * 16, "document": old[0].search_text(), "metadata": {}}
    torn.write_text('{"deletes": []}\n' + json.dumps(line) + '\n{"id": "card0001", "emb', encoding="utf-8")
    assert set(journal.leftovers()) == {"card0000"}
    report = CardStore(client, _HashEmbedder(), journal=journal).sync({"b": ("/b.md", _cards(3, "new"))})
    assert report.reused == 0 and len(report.added) == 3  # the texts changed: embedded again


def test_questions_from_prose_read_only_the_sections_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.knowledge.cards import FLAG_FROM_PROSE
    from bot.knowledge.prose import Proposal, ProseQuestions

    class Writer:
        version = "test"

        def propose(self, text: str, section: str, limit: int) -> list[Proposal]:
            return [Proposal(f"What does the {section} section say?", text.split(". ")[0])]

    monkeypatch.setattr("bot.knowledge.spool.SPOOL_MEMORY_BYTES", 64 * 1024)
    notes = tmp_path / "big.md"
    _write_notes(notes, 150)
    with notes.open("a", encoding="utf-8") as out:
        out.write("#aside\nThe aside explains a thing in plain prose. It has no question in it at all.\n")
    collect([notes], tmp_path, prose=ProseQuestions(Writer(), None))  # warm-up
    got: list[Any] = []
    peak = _peak(lambda: got.append(collect([notes], tmp_path, prose=ProseQuestions(Writer(), None))))
    (parsed,), _ = got[0]
    assert len(parsed.cards) == 151 and parsed.unquestioned == ()
    last = parsed.cards[-1]
    assert FLAG_FROM_PROSE in last.flags and last.answer == "The aside explains a thing in plain prose."
    assert peak < MB  # the file is read twice, a line at a time; only the aside's lines are kept
