"""Where rubrics live: compiled once per card version, edited per user.

Files under ``<data dir>/rubrics/`` (one JSON file each):

* ``compiled/<card id>.json`` — the compiled rubric with the card's content hash and the compiler
  version. Read when both still match; otherwise compiled again and rewritten, so a rubric is rebuilt
  only when the note (or the compiler) changes.
* ``users/<user>/<card id>.json`` — a user's edit. Used for grading while its ``card_hash`` matches the
  card; after the note changes it is kept, flagged ``stale``, and grading falls back to the freshly
  compiled rubric until the user edits again.

Why files and not Chroma metadata or a history table: every write is a whole file written to a
temporary name and renamed over the old one (``os.replace`` is atomic on POSIX and Windows), so any
number of processes (web workers, the CLI, a grader worker) can read and write at once without locks;
a reader sees the old or the new file, never half of one. Compiling is deterministic, so two processes
racing to write the same compiled rubric write the same bytes; two edits of one user's rubric: the last
one wins, as in any editor. It needs no schema migration and works without the history database.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

from pydantic import ValidationError

from bot.grading.rubric import COMPILER_VERSION, Rubric, compile_rubric
from bot.knowledge.cards import Card

__all__ = ["RubricBook", "RubricError"]

MEMORY_CACHE = 4096  # compiled rubrics kept in memory (a few KB each)


class RubricError(ValueError):
    """An edited rubric that cannot be used (the message says why)."""


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:100] or "_"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RubricBook:
    """Compiled and user-edited rubrics. ``root`` None keeps everything in memory (tests, eval)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._memory: OrderedDict[tuple[str, str], Rubric] = OrderedDict()
        self._lock = threading.Lock()

    # --- compiled ----------------------------------------------------------------------------

    def compiled(self, card: Card) -> Rubric:
        """The card's compiled rubric, compiled only when its version is new."""
        key = (card.id, card.content_hash())
        with self._lock:
            hit = self._memory.get(key)
        if hit is not None:
            return hit
        rubric = self._read_compiled(card, key[1]) or compile_rubric(card)
        if self.root is not None and rubric.card_hash == key[1]:
            self._try_write(self._compiled_path(card.id), {"compiler": COMPILER_VERSION, "rubric": rubric})
        with self._lock:
            self._memory[key] = rubric
            while len(self._memory) > MEMORY_CACHE:
                self._memory.popitem(last=False)
        return rubric

    def _compiled_path(self, card_id: str) -> Path:
        assert self.root is not None
        return self.root / "compiled" / f"{_safe(card_id)}.json"

    def _read_compiled(self, card: Card, card_hash: str) -> Rubric | None:
        if self.root is None:
            return None
        data = self._read(self._compiled_path(card.id))
        if not isinstance(data, dict) or data.get("compiler") != COMPILER_VERSION:
            return None
        try:
            rubric = Rubric.model_validate(data.get("rubric"))
        except ValidationError:
            return None
        return rubric if rubric.card_hash == card_hash else None

    # --- per user ----------------------------------------------------------------------------

    def _user_path(self, user: str, card_id: str) -> Path:
        assert self.root is not None
        return self.root / "users" / _safe(user) / f"{_safe(card_id)}.json"

    def user_edit(self, card: Card, user: str) -> Rubric | None:
        """The user's edit of this card's rubric (``stale`` when the note changed since), or None."""
        if self.root is None:
            return None
        data = self._read(self._user_path(user, card.id))
        if data is None:
            return None
        try:
            rubric = Rubric.model_validate(data)
        except ValidationError:
            return None
        return rubric.model_copy(update={"stale": rubric.card_hash != card.content_hash()})

    def for_user(self, card: Card, user: str) -> Rubric:
        """What ``user``'s answers to ``card`` are graded against: their fresh edit, else the compiled one."""
        edit = self.user_edit(card, user)
        return edit if edit is not None and not edit.stale else self.compiled(card)

    def edit(self, card: Card, user: str, rubric: Rubric) -> Rubric:
        """Store ``rubric`` as ``user``'s version for the card's current note; returns what was stored."""
        if self.root is None:
            raise RubricError("rubric edits need a data directory")
        if rubric.card_id != card.id:
            raise RubricError(f"this rubric is for card {rubric.card_id}, not {card.id}")
        previous = self.user_edit(card, user) or self.compiled(card)
        stored = rubric.model_copy(
            update={
                "card_hash": card.content_hash(),
                "compiled_by": "user",
                "version": max(previous.version, rubric.version) + 1,
                "stale": False,
            }
        )
        _write_atomic(self._user_path(user, card.id), stored.model_dump_json(indent=1))
        return stored

    def reset(self, card: Card, user: str) -> bool:
        """Drop the user's edit (back to the compiled rubric); False when there was none."""
        if self.root is None:
            return False
        path = self._user_path(user, card.id)
        existed = path.exists()
        path.unlink(missing_ok=True)
        return existed

    # --- files -------------------------------------------------------------------------------

    @staticmethod
    def _read(path: Path) -> object:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    @staticmethod
    def _try_write(path: Path, data: dict[str, object]) -> None:
        rubric = data["rubric"]
        assert isinstance(rubric, Rubric)
        payload = json.dumps({"compiler": data["compiler"], "rubric": rubric.model_dump(mode="json")}, indent=1)
        with contextlib.suppress(OSError):  # a read-only data dir costs only the cache
            _write_atomic(path, payload)
