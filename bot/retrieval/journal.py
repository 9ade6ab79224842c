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
        try:
            with tmp.open("wb") as fh:
                fh.write(json.dumps({"deletes": deletes}).encode() + b"\n")
                for cid, vector, document, metadata in records:  # records may be computed as they come
                    line = {"id": cid, "embedding": np.asarray(vector, dtype=np.float32).tolist()}
                    line |= {"document": document, "metadata": metadata}
                    fh.write(json.dumps(line, ensure_ascii=False).encode("utf-8") + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:  # e.g. the embedder failed half-way: no journal, the store as it was
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)

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
