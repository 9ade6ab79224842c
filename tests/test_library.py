"""Each user's own notes: uploads land under the data dir, belong to their user, and stay theirs."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from bot.knowledge.ingest import ingest
from bot.knowledge.library import Library, Upload, safe_name
from bot.retrieval.store import SHARED, CardStore, open_store
from bot.settings import Settings

NOTES = Path(__file__).parent / "data" / "notes"
ALICE_NOTES = """# Reinforcement learning

## What is a policy gradient?
A policy gradient method adjusts the parameters of a stochastic policy in the direction that increases
expected return, estimated from sampled trajectories (REINFORCE).

## What is reward shaping?
Reward shaping adds intermediate rewards to guide exploration without changing the optimal policy.
"""


@pytest.fixture
def store(settings: Settings, local_embedder: Any) -> CardStore:
    s = open_store(settings, local_embedder)
    k = settings.data_dir / "knowledge"
    k.mkdir(parents=True)
    shutil.copy(NOTES / "qa.txt", k / "qa.txt")
    ingest([k], s, k)  # the shared notes
    return s


@pytest.fixture
def library(settings: Settings, store: CardStore) -> Library:
    return Library(settings.data_dir, store)


def upload(tmp_path: Path, name: str, text: str | bytes) -> Upload:
    path = tmp_path / "incoming" / f"{len(list(tmp_path.glob('incoming/*')))}-{safe_name(name) or 'x'}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return Upload(name=name, path=path)


def questions(cards: list[Any]) -> set[str]:
    return {c.display_question for c in cards}


def test_uploaded_notes_belong_to_their_user_only(library: Library, store: CardStore, tmp_path: Path) -> None:
    shared = questions(store.all_cards({SHARED}))
    seen: list[tuple[int, int]] = []
    result = library.add("alice", [upload(tmp_path, "rl.md", ALICE_NOTES)], progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (0, 2) and seen[-1] == (2, 2)  # parsed, then indexed
    assert result.rejected == [] and result.summary is not None
    assert (result.summary.files, result.summary.cards, result.summary.added) == (1, 2, 2)
    assert sum(result.summary.topics.values()) == 2
    stored = library.user_dir("alice") / "rl.md"
    assert stored.read_text() == ALICE_NOTES  # under the data dir, not in knowledge/

    alice, bob = store.all_cards(library.owners("alice")), store.all_cards(library.owners("bob"))
    assert "What is a policy gradient?" in questions(alice) and shared <= questions(alice)
    assert questions(bob) == shared
    # search and related passages never cross users
    for hit in store.search("policy gradient stochastic policy expected return", 20, library.owners("bob")):
        assert "policy" not in hit.card.display_question.lower()
    assert store.search("policy gradient stochastic policy", 1, library.owners("alice"))[0].card.display_question == (
        "What is a policy gradient?"
    )
    some_shared = store.all_cards({SHARED})[0]
    for passage in store.related(some_shared, 20, library.owners("bob")).passages:
        assert passage.card.source.path == some_shared.source.path or not passage.card.source.path.startswith("uploads")
    assert any(
        p.card.source.path.startswith("uploads/alice/")
        for p in store.related(some_shared, 20, library.owners("alice")).passages
    )
    assert [f.name for f in library.files("alice") if not f.shipped] == ["rl.md"]
    assert [f.name for f in library.files("bob") if not f.shipped] == []


def test_same_file_name_for_two_users_stays_two_files(library: Library, store: CardStore, tmp_path: Path) -> None:
    library.add("alice", [upload(tmp_path, "notes.md", ALICE_NOTES)])
    library.add("bob", [upload(tmp_path, "notes.md", ALICE_NOTES.replace("reward shaping", "curiosity"))])
    assert "What is reward shaping?" in questions(store.all_cards(library.owners("alice")))
    assert "What is reward shaping?" not in questions(store.all_cards(library.owners("bob")))
    assert "What is curiosity?" in questions(store.all_cards(library.owners("bob")))


def test_bad_files_get_a_clear_message_and_nothing_is_written(
    library: Library, store: CardStore, tmp_path: Path
) -> None:
    before = store.count()
    result = library.add(
        "alice",
        [
            upload(tmp_path, "photo.png", b"\x89PNG\r\n\x1a\n\x00\x00"),
            upload(tmp_path, "empty.md", ""),
            upload(tmp_path, "binary.txt", b"\x00\x01\x02\xff" * 50),
            upload(tmp_path, "../../etc/evil.md", ALICE_NOTES),
        ],
    )
    reasons = dict(r.split(": ", 1) for r in result.rejected)
    assert "not a notes file" in reasons["photo.png"]
    assert "empty" in reasons["empty.md"]
    assert "binary.txt" in reasons
    assert str(tmp_path) not in " ".join(result.rejected)  # no server paths in messages
    assert result.names == ["evil.md"]  # a path in the name is only a name
    assert sorted(p.name for p in library.user_dir("alice").iterdir()) == ["evil.md"]
    assert store.count() == before + 2


def test_a_failed_store_write_restores_the_previous_file(
    library: Library, store: CardStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library.add("alice", [upload(tmp_path, "rl.md", ALICE_NOTES)])
    before = {c.id for c in store.all_cards()}

    def boom(*a: Any, **k: Any) -> Any:
        raise RuntimeError("embedder down")

    monkeypatch.setattr(store, "sync", boom)
    with pytest.raises(RuntimeError):
        library.add("alice", [upload(tmp_path, "rl.md", "## What is new?\nSomething new.\n")])
    assert (library.user_dir("alice") / "rl.md").read_text() == ALICE_NOTES
    assert {c.id for c in store.all_cards()} == before
    assert sorted(p.name for p in library.user_dir("alice").iterdir()) == ["rl.md"]


def test_remove_a_notes_file_and_hide_the_shipped_notes(library: Library, store: CardStore, tmp_path: Path) -> None:
    library.add("alice", [upload(tmp_path, "rl.md", ALICE_NOTES)])
    shared = questions(store.all_cards({SHARED}))
    library.hide_shipped("alice")
    assert questions(store.all_cards(library.owners("alice"))) == {
        "What is a policy gradient?",
        "What is reward shaping?",
    }
    assert [f.shipped for f in library.files("alice")] == [False]
    assert questions(store.all_cards(library.owners("bob"))) == shared  # only alice hid them
    library.hide_shipped("alice", False)
    assert shared <= questions(store.all_cards(library.owners("alice")))

    with pytest.raises(LookupError, match=r"rl\.md"):
        library.remove("alice", "nope.md")
    with pytest.raises(LookupError):
        library.remove("bob", "rl.md")  # not bob's
    with pytest.raises(LookupError):
        library.remove("alice", "qa.txt")  # the shipped notes are hidden, not removed
    assert library.remove("alice", "rl.md") == 2
    assert not (library.user_dir("alice") / "rl.md").exists()
    assert questions(store.all_cards(library.owners("alice"))) == shared


def test_a_store_written_before_owners_is_shared(store: CardStore) -> None:
    got = store._collection.get(include=["metadatas", "embeddings", "documents"])
    store._collection.delete(ids=got["ids"])
    metas = [{k: v for k, v in m.items() if k != "owner"} for m in got["metadatas"]]
    store._collection.add(ids=got["ids"], metadatas=metas, embeddings=got["embeddings"], documents=got["documents"])
    assert store.search("recall", 1, {SHARED}) == []  # no owner: a filtered search misses them until backfilled
    assert store.backfill_owner() == len(got["ids"])
    assert len(store.all_cards({SHARED, "bob"})) == len(got["ids"])
    assert store.search("recall", 1, {SHARED, "bob"})
    assert store.backfill_owner() == 0
