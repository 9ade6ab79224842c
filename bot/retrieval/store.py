"""The card store: cards in a Chroma collection, retrieval of reference answers and passages.

Embedded ``PersistentClient`` under the data dir by default; a Chroma server when
``CHROMA_HOST`` is set. The collection name carries the embedding model, so switching models
never mixes vectors. The embedding function is always passed to Chroma (a reopened collection
would otherwise rebuild Chroma's default one, which downloads a model).
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.grading.base import GradeRequest
from bot.grading.rubric import Rubric
from bot.knowledge.cards import Card
from bot.retrieval.embeddings import Embedder
from bot.retrieval.heap import trim
from bot.retrieval.journal import Journal, Record

if TYPE_CHECKING:
    from bot.settings import Settings

__all__ = [
    "SHARED",
    "CardStore",
    "Hit",
    "Retrieval",
    "SyncReport",
    "collection_name",
    "make_chroma_client",
    "open_store",
]

_BATCH = 256  # cards embedded at a time (the progress lines count them)
_WRITE_BATCH = 256  # records per Chroma write
_PAGE = 200  # records per read of the existing metadata (each comes with its card's JSON)
_DIFF_KEYS = ("hash", "source_file", "source_key", "owner")  # what sync's diff and prune read
SHARED = "shared"  # the owner of notes every user sees (the shipped notes, `interview ingest`)


EF_NAME = "interview-coach"


@functools.cache
def _ef_class() -> Any:
    """A registered Chroma embedding function wrapping any :class:`Embedder` (built lazily)."""
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
    from chromadb.utils.embedding_functions import register_embedding_function

    class CardEmbeddingFunction(EmbeddingFunction[Documents]):
        """Chroma persists ``{"model_id"}``; reopening rebuilds a placeholder that refuses to embed,
        because the store always passes the real function (Chroma's default would download one)."""

        def __init__(self, embedder: Embedder | None = None, model_id: str = "") -> None:
            self._embedder = embedder
            self._model_id = embedder.model_id if embedder is not None else model_id

        def __call__(self, input: Documents) -> Embeddings:
            if self._embedder is None:
                raise RuntimeError(
                    f"open this collection through bot.retrieval.store with the {self._model_id} embedder"
                )
            return list(self._embedder.embed(list(input)))

        @staticmethod
        def name() -> str:
            return EF_NAME

        def get_config(self) -> dict[str, Any]:
            return {"model_id": self._model_id}

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> EmbeddingFunction[Documents]:
            return CardEmbeddingFunction(None, str(config.get("model_id", "")))

        def default_space(self) -> Space:
            return "cosine"

        def supported_spaces(self) -> list[Space]:
            return ["cosine", "ip", "l2"]

    register_embedding_function(CardEmbeddingFunction)  # type: ignore[no-untyped-call]
    return CardEmbeddingFunction


def _chroma_ef(embedder: Embedder) -> Any:
    return _ef_class()(embedder)


def collection_name(prefix: str, model_id: str) -> str:
    """Chroma names: 3-512 chars of [a-zA-Z0-9._-], starting and ending alphanumeric."""
    slug = re.sub(r"[^a-zA-Z0-9._-]+", "-", f"{prefix}-{model_id}").strip("-._")
    return slug[:200]


@dataclass(frozen=True)
class Hit:
    card: Card
    score: float  # cosine similarity, 1 = identical


@dataclass(frozen=True)
class Retrieval:
    """A card's reference answer plus related passages from other cards."""

    card: Card
    reference: str
    passages: list[Hit]
    rubric: Rubric | None = None  # the key points to grade against (see bot.grading.rubric_book)

    def request(self, answer: str) -> GradeRequest:
        """What a grader needs to grade ``answer`` to this card."""
        return GradeRequest(
            question=self.card.display_question,
            reference=self.reference,
            answer=answer,
            passages=[h.card.answer for h in self.passages],
            card_id=self.card.id,
            topic=self.card.topic,
            rubric=self.rubric,
        )


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    reused: int = 0  # of the written cards, vectors taken from an ingest killed while embedding


class CardStore:
    """Cards in Chroma. Construct with a client; see :func:`bot.retrieval.store.open_store`."""

    def __init__(self, client: Any, embedder: Embedder, prefix: str = "cards", journal: Journal | None = None) -> None:
        self._client = client
        self._embedder = embedder
        self._journal = journal
        self._writing = threading.Lock()  # one sync at a time in this process (two uploads at once)
        self._name = collection_name(prefix, embedder.model_id)
        self._collection = client.get_or_create_collection(
            name=self._name,
            embedding_function=_chroma_ef(embedder),
            metadata={"hnsw:space": "cosine", "embedding_model": embedder.model_id},
        )

    @property
    def name(self) -> str:
        return self._name

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    def recover(self) -> bool:
        """Complete a write that a killed ingest left in the journal (True if there was one)."""
        if self._journal is None or not self._journal.recover(self._collection, _WRITE_BATCH):
            return False
        self._bump_stamp()
        return True

    def _bump_stamp(self) -> None:
        import uuid

        stamps = self._client.get_or_create_collection(name=f"{self._name}-stamp", embedding_function=None)
        stamps.upsert(ids=["stamp"], embeddings=[[0.0]], documents=[uuid.uuid4().hex])

    def stamp(self) -> str:
        """Changes whenever the cards change, in any process (cheap: processes compare it per session).

        The count, and a generation every sync that writes renews (in a one-record collection beside
        the cards; read only here, so readers never write)."""
        from chromadb.errors import NotFoundError

        try:
            got = self._client.get_collection(f"{self._name}-stamp").get(ids=["stamp"], include=["documents"])
            generation = (got.get("documents") or [""])[0]
        except NotFoundError:
            generation = ""
        return f"{self.count()}:{generation}"

    def needs_recovery(self) -> bool:
        return self._journal is not None and self._journal.pending()

    def count(self) -> int:
        return int(self._collection.count())

    # -- writing -------------------------------------------------------------------------------

    def _existing(
        self, where: dict[str, Any] | None = None, keys: tuple[str, ...] | None = None
    ) -> dict[str, dict[str, Any]]:
        """Metadata by id (only ``keys`` of it when given), fetched a page at a time: a record's
        card JSON is dropped before the next page comes."""
        out: dict[str, dict[str, Any]] = {}
        offset = 0
        while True:
            got = self._collection.get(where=where, include=["metadatas"], limit=_PAGE, offset=offset)
            ids = got["ids"]
            for i, m in zip(ids, got["metadatas"] or [], strict=False):
                meta = dict(m or {})
                out[i] = meta if keys is None else {k: meta[k] for k in keys if k in meta}
            offset += len(ids)
            del got  # before the next page comes (two pages of card JSON would be held)
            if len(ids) < _PAGE:
                return out

    def sync(
        self,
        cards_by_source: Mapping[str, tuple[str, Sequence[Card]]],
        *,
        prune: Callable[[dict[str, Any]], bool] | None = None,
        progress: Callable[[int, int], None] | None = None,
        owner: str = SHARED,
    ) -> SyncReport:
        """Make the store hold exactly ``cards`` for each given source; keep other sources.

        ``cards_by_source`` maps a source key to ``(source_file, cards)``; each ``cards`` is read
        twice, a card at a time (a list, or a :class:`~bot.knowledge.spool.CardSpool`), so memory
        holds ids and hashes, not cards. Cards whose content is unchanged are not re-embedded.
        ``owner``: who sees the written cards (:data:`SHARED`: every user; else one user's own
        notes). ``prune(metadata)`` may mark records of *other* sources for removal (e.g. their file
        was deleted). Cards are embedded a batch at a time into the journal; nothing reaches the
        collection before every embedding is in it, so a failure leaves the store as it was, and
        the write itself is all or nothing (a killed process's write is completed on the next open:
        :mod:`bot.retrieval.journal`). Without a journal of its own the store uses a temporary one. A
        sync killed or failed while embedding leaves its vectors; the next one reuses those whose card
        text is unchanged (``SyncReport.reused``). One sync at a time per store object.
        """
        with self._writing:
            return self._sync(cards_by_source, prune=prune, progress=progress, owner=owner)

    def _sync(
        self,
        cards_by_source: Mapping[str, tuple[str, Sequence[Card]]],
        *,
        prune: Callable[[dict[str, Any]], bool] | None,
        progress: Callable[[int, int], None] | None,
        owner: str,
    ) -> SyncReport:
        self.recover()  # a killed ingest's write first: the diff below is against a whole state
        report = SyncReport()
        existing = self._existing(keys=_DIFF_KEYS)
        wanted: dict[str, tuple[str, str]] = {}  # id -> (content hash, source file)
        for source_file, cards in cards_by_source.values():
            for card in cards:
                wanted[card.id] = (card.content_hash(), source_file)
        to_write: dict[str, str] = {}  # id -> content hash, in the cards' order
        for cid, (digest, source_file) in wanted.items():
            meta = existing.get(cid)
            if meta is None:
                report.added.append(cid)
            elif (
                meta.get("hash") != digest
                or meta.get("source_file") != source_file
                or meta.get("owner", SHARED) != owner
            ):
                report.updated.append(cid)
            else:
                report.unchanged += 1
                continue
            to_write[cid] = digest
        for cid, meta in existing.items():
            if cid in wanted:
                continue
            if meta.get("source_key") in cards_by_source or (prune is not None and prune(meta)):
                report.removed.append(cid)
        del existing
        if not to_write and progress is not None:
            progress(0, 0)
        if not to_write and not report.removed:
            return report
        reuse = self._journal.leftovers() if self._journal is not None else {}
        records = self._embedded(cards_by_source, to_write, owner, progress, reuse, report)
        with contextlib.ExitStack() as stack:
            journal = self._journal
            if journal is None:  # still embed everything before writing anything
                folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="interview-sync-")))
                journal = Journal(folder / "journal.jsonl")
            journal.write(records, report.removed)  # from here on the write completes, even if we die
            journal.apply(self._collection, _WRITE_BATCH)
            journal.done()
        self._bump_stamp()
        return report

    def _embedded(
        self,
        cards_by_source: Mapping[str, tuple[str, Sequence[Card]]],
        to_write: dict[str, str],
        owner: str,
        progress: Callable[[int, int], None] | None,
        reuse: Mapping[str, tuple[str, np.ndarray]],
        report: SyncReport,
    ) -> Iterator[Record]:
        """The records to write, embedded :data:`_BATCH` cards at a time as they are read; a card whose
        text a killed ingest already embedded (``reuse``: id → (text, vector)) takes that vector."""
        pending = dict(to_write)
        total, done = len(pending), 0
        batch: list[tuple[Card, str, str]] = []  # card, source file, hash

        def flush() -> Iterator[Record]:
            nonlocal done
            texts = [card.search_text() for card, _, _ in batch]
            vectors = self._embedder.embed(texts)
            for (card, source_file, digest), vector, text in zip(batch, vectors, texts, strict=True):
                yield card.id, vector, text, _metadata(card, source_file, digest, owner)
            done += len(batch)
            batch.clear()
            trim()  # the tokenizer's and the model's freed buffers (bot.retrieval.heap)
            if progress is not None:
                progress(done, total)

        for source_file, cards in cards_by_source.values():
            for card in cards:
                digest = pending.pop(card.id, None)
                if digest is None:
                    continue
                earlier = reuse.get(card.id)
                if earlier is not None and earlier[0] == (text := card.search_text()):
                    yield card.id, earlier[1], text, _metadata(card, source_file, digest, owner)
                    report.reused += 1
                    done += 1
                    if progress is not None and done % _BATCH == 0:
                        progress(done, total)
                    continue
                batch.append((card, source_file, digest))
                if len(batch) == _BATCH:
                    yield from flush()
        if batch:
            yield from flush()

    # -- reading -------------------------------------------------------------------------------

    def all_cards(self, owners: Collection[str] | None = None) -> list[Card]:
        """Every card, or only those of ``owners`` (e.g. ``{SHARED, "alice"}``)."""
        got = self._collection.get(include=["metadatas"])
        cards = [_card(m) for m in got["metadatas"] or [] if _visible(m, owners)]
        return sorted(cards, key=lambda c: (c.source.path, c.source.line_start))

    def sources(self, owners: Collection[str] | None = None) -> dict[str, int]:
        """Cards per source key (notes file), for ``owners`` or everyone."""
        got = self._collection.get(include=["metadatas"])
        counts = Counter(str(m.get("source_key", "")) for m in got["metadatas"] or [] if _visible(m, owners))
        return dict(sorted(counts.items()))

    def remove_source(self, key: str) -> int:
        """Delete every card of one source key; returns how many went."""
        ids = list(self._existing({"source_key": key}))
        for start in range(0, len(ids), _BATCH):
            self._collection.delete(ids=ids[start : start + _BATCH])
        return len(ids)

    def backfill_owner(self) -> int:
        """Records written before owners existed belong to everyone (:data:`SHARED`)."""
        missing = {i: m for i, m in self._existing().items() if "owner" not in m}
        ids = list(missing)
        for start in range(0, len(ids), _BATCH):
            chunk = ids[start : start + _BATCH]
            self._collection.update(ids=chunk, metadatas=[{**missing[i], "owner": SHARED} for i in chunk])
        return len(ids)

    def get(self, card_id: str) -> Card | None:
        got = self._collection.get(ids=[card_id], include=["metadatas"])
        metas = got["metadatas"] or []
        return _card(metas[0]) if metas else None

    def topics(self) -> list[str]:
        return sorted({c.topic for c in self.all_cards()})

    def _query(
        self,
        vector: np.ndarray | list[float],
        k: int,
        exclude: str | None = None,
        owners: Collection[str] | None = None,
    ) -> list[Hit]:
        total = self.count() if k > 0 else 0
        if total == 0:
            return []
        n = min(k + (1 if exclude else 0), total)
        where = None if owners is None else {"owner": {"$in": sorted(owners)}}
        res = self._collection.query(
            query_embeddings=[list(map(float, vector))],
            n_results=n,
            where=where,
            include=["metadatas", "distances"],
        )
        hits = []
        for cid, meta, dist in zip(
            res["ids"][0], (res["metadatas"] or [[]])[0], (res["distances"] or [[]])[0], strict=False
        ):
            if cid == exclude:
                continue
            hits.append(Hit(card=_card(meta), score=round(1.0 - float(dist), 6)))
        return hits[:k]

    def search(self, text: str, k: int = 5, owners: Collection[str] | None = None) -> list[Hit]:
        """Nearest cards to free text (among ``owners``' cards when given)."""
        if not text.strip():
            return []
        return self._query(self._embedder.embed([text])[0], k, owners=owners)

    def related(self, card: Card, k: int = 3, owners: Collection[str] | None = None) -> Retrieval:
        """The card's reference answer and the top-k passages from *other* cards (of ``owners``)."""
        got = self._collection.get(ids=[card.id], include=["embeddings"])
        embeddings = got.get("embeddings")
        if embeddings is not None and len(embeddings) > 0:
            vector = np.asarray(embeddings[0], dtype=np.float32)
        else:
            vector = self._embedder.embed([card.search_text()])[0]
        passages = [h for h in self._query(vector, k + 2, exclude=card.id, owners=owners) if h.card.answer][:k]
        return Retrieval(card=card, reference=card.answer, passages=passages)


def _visible(meta: Any, owners: Collection[str] | None) -> bool:
    return owners is None or (meta or {}).get("owner", SHARED) in owners


def _metadata(card: Card, source_file: str, digest: str, owner: str = SHARED) -> dict[str, Any]:
    return {
        "owner": owner,
        "card": json.dumps(card.model_dump(mode="json"), ensure_ascii=False),
        "hash": digest,
        "source_key": card.source.path,
        "source_file": source_file,
        "topic": card.topic,
        "important": card.important,
        "no_answer": not card.has_answer,
    }


def _card(meta: Any) -> Card:
    return Card.model_validate_json(meta["card"])


def make_chroma_client(settings: Settings) -> Any:
    """Embedded PersistentClient under the data dir, or an HttpClient when CHROMA_HOST is set."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_host:
        return chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings)
    settings.chroma_path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.chroma_path), settings=chroma_settings)


def open_store(settings: Settings, embedder: Embedder | None = None) -> CardStore:
    """The configured store, with the configured embedder unless one is given."""
    from bot.retrieval.embeddings import make_embedder
    from bot.retrieval.lock import data_lock

    embedder = embedder or make_embedder(settings)
    name = collection_name(settings.collection, embedder.model_id)
    journal = Journal(settings.data_dir / f"ingest-journal-{name}.npz")
    store = CardStore(make_chroma_client(settings), embedder, prefix=settings.collection, journal=journal)
    if store.needs_recovery():  # an ingest was killed mid-write: finish it before anyone reads
        with data_lock(settings, wait=settings.lock_wait):
            store.recover()
    return store
