"""The ingest journal: a store write that is all or nothing, even through ``kill -9``.

A sync writes in batches (Chroma has no multi-batch transaction), so a killed ingest used to leave
a half-written store. Now :meth:`~bot.retrieval.store.CardStore.sync` writes the whole change
(records to upsert, ids to delete) into one journal file as it embeds, a batch at a time, atomically
(a temporary file, fsync, ``os.replace``: the journal exists only once every embedding is in it),
then applies it to the collection and deletes the journal. Applying is idempotent (upserts and
deletes by id), so a journal found on the next open is simply applied again (rolled forward) before
anything reads the store:

- killed before the journal is in place: the store is the old state (the journal is not there);
- killed after: the next open completes the write, and the store is the new state.

Nothing is embedded twice: the journal holds the vectors. The journal is JSON lines, written and
read a record at a time, so its memory is a batch's whatever the size of the ingest.

Resumable: the journal being written is flushed every ``FLUSH_EVERY`` records, so an ingest killed
(or interrupted, or failed) while it embeds leaves the vectors it had (a hidden
``.<journal>.<pid>.tmp``). The next sync reads them back (:meth:`Journal.leftovers`) and embeds
only the cards they do not cover; the leftover file goes once that sync's journal is done.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bot.retrieval.heap import trim

__all__ = ["Journal", "Record", "apply"]

Record = tuple[str, np.ndarray, str, dict[str, Any]]  # id, vector, document, metadata
FLUSH_EVERY = 64  # records between flushes of the journal being written (what a killed ingest leaves)


def apply(collection: Any, records: Iterable[Record], deletes: list[str], batch: int) -> None:
    """Write records and deletions into a Chroma collection, ``batch`` at a time (idempotent; freed
    memory goes back to the system after each batch: :mod:`bot.retrieval.heap`)."""
    chunk: list[Record] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == batch:
            _upsert(collection, chunk)
            chunk = []
            trim()
    if chunk:
        _upsert(collection, chunk)
        trim()
    for start in range(0, len(deletes), batch):
        collection.delete(ids=deletes[start : start + batch])


def _upsert(collection: Any, chunk: list[Record]) -> None:
    collection.upsert(
        ids=[r[0] for r in chunk],
        embeddings=[np.asarray(r[1], dtype=np.float32).tolist() for r in chunk],
        documents=[r[2] for r in chunk],
        metadatas=[r[3] for r in chunk],
    )


class Journal:
    """The journal file of one collection (see the module docstring).

    JSON lines, written and read one record at a time (memory bounded by a batch, whatever the
    size of the ingest): first ``{"deletes": [...]}``, then one ``{"id", "embedding", "document",
    "metadata"}`` per record.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def pending(self) -> bool:
        return self.path.exists()

    def write(self, records: Iterable[Record], deletes: list[str]) -> None:
        """Durably record the change (atomic: the file is either absent or complete)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        # If the embedder fails half-way (or Ctrl-C, or a kill) there is no journal and the store is as
        # it was; the vectors made so far stay in the unfinished file for the next sync (leftovers).
        with tmp.open("wb") as fh:
            fh.write(json.dumps({"deletes": deletes}).encode() + b"\n")
            for n, (cid, vector, document, metadata) in enumerate(records, 1):  # computed as they come
                line = {"id": cid, "embedding": np.asarray(vector, dtype=np.float32).tolist()}
                line |= {"document": document, "metadata": metadata}
                fh.write(json.dumps(line, ensure_ascii=False).encode("utf-8") + b"\n")
                if n % FLUSH_EVERY == 0:
                    fh.flush()  # a kill from here on leaves these vectors for the next sync
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)

    def leftovers(self) -> dict[str, tuple[str, np.ndarray]]:
        """The vectors a killed writer left in its unfinished journal: card id → (embedded text,
        vector). A torn last line is skipped; so is anything unreadable (it is only a head start)."""
        found: dict[str, tuple[str, np.ndarray]] = {}
        for stale in sorted(self.path.parent.glob(f".{self.path.name}.*.tmp")):
            try:
                with stale.open("rb") as fh:
                    fh.readline()  # the deletes
                    for raw in fh:
                        try:
                            line = json.loads(raw)
                            vector = np.asarray(line["embedding"], dtype=np.float32)
                            found[str(line["id"])] = (str(line["document"]), vector)
                        except (ValueError, KeyError, TypeError):
                            continue
            except OSError:
                continue
        return found

    def _deletes(self) -> list[str]:
        with self.path.open("rb") as fh:
            deletes: list[str] = json.loads(fh.readline())["deletes"]
        return deletes

    def _records(self) -> Iterator[Record]:
        with self.path.open("rb") as fh:
            fh.readline()  # the deletes
            for raw in fh:
                line = json.loads(raw)
                yield line["id"], np.asarray(line["embedding"], dtype=np.float32), line["document"], line["metadata"]

    def apply(self, collection: Any, batch: int) -> None:
        """Write the journal's change into the collection (again, after a kill: idempotent)."""
        apply(collection, self._records(), self._deletes(), batch)

    def done(self) -> None:
        """The change is in the store: forget it (and any temporary file a killed writer left)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()

    def recover(self, collection: Any, batch: int) -> bool:
        """Complete a write a killed process left (True if there was one)."""
        if not self.pending():
            return False
        self.apply(collection, batch)
        self.done()
        return True


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
