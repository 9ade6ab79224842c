"""The ingest journal: a store write that is all or nothing, even through ``kill -9``.

A sync writes in batches (Chroma has no multi-batch transaction), so a killed ingest used to leave
a half-written store. Now :meth:`~bot.retrieval.store.CardStore.sync` first computes every
embedding, then writes the whole change (records to upsert, ids to delete) into one journal file,
atomically (a temporary file, fsync, ``os.replace``), then applies it to the collection and deletes
the journal. Applying is idempotent (upserts and deletes by id), so a journal found on the next
open is simply applied again (rolled forward) before anything reads the store:

- killed before the journal is in place: the store is the old state (the journal is not there);
- killed after: the next open completes the write, and the store is the new state.

Nothing is embedded twice: the journal holds the vectors.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Change", "Journal"]


@dataclass
class Change:
    """One sync's writes: records to upsert (ids, vectors, documents, metadatas) and ids to delete."""

    ids: list[str] = field(default_factory=list)
    embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    documents: list[str] = field(default_factory=list)
    metadatas: list[dict[str, Any]] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)

    def apply(self, collection: Any, batch: int) -> None:
        """Write the change into a Chroma collection, ``batch`` records per call (idempotent)."""
        for start in range(0, len(self.ids), batch):
            end = start + batch
            collection.upsert(
                ids=self.ids[start:end],
                embeddings=[row.tolist() for row in self.embeddings[start:end]],
                documents=self.documents[start:end],
                metadatas=self.metadatas[start:end],
            )
        for start in range(0, len(self.deletes), batch):
            collection.delete(ids=self.deletes[start : start + batch])


class Journal:
    """The journal file of one collection (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def pending(self) -> bool:
        return self.path.exists()

    def write(self, change: Change) -> None:
        """Durably record ``change`` (atomic: the file is either absent or complete)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(
            {
                "ids": change.ids,
                "documents": change.documents,
                "metadatas": change.metadatas,
                "deletes": change.deletes,
            },
            ensure_ascii=False,
        )
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            np.savez(fh, records=np.array(text), embeddings=np.asarray(change.embeddings, dtype=np.float32))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)

    def read(self) -> Change:
        with np.load(self.path, allow_pickle=False) as data:
            records = json.loads(str(data["records"]))
            embeddings = np.asarray(data["embeddings"], dtype=np.float32)
        return Change(
            ids=records["ids"],
            embeddings=embeddings,
            documents=records["documents"],
            metadatas=records["metadatas"],
            deletes=records["deletes"],
        )

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
        self.read().apply(collection, batch)
        self.done()
        return True


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
