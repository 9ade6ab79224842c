"""Where rubrics live: compiled once per card version, edited per user.

Files under ``<data dir>/rubrics/`` (one JSON file each):

* ``compiled/<card id>.json`` — the compiled rubric with the card's content hash and the compiler
  version. Read when both still match; otherwise compiled again and rewritten, so a rubric is rebuilt
  only when the note (or the compiler) changes.
* ``compiled-llm/<card id>.json`` — with a chat model configured, the rubric the LLM distilled
  (:mod:`bot.grading.rubric_llm`), keyed the same way by the card's hash and the LLM compiler's
  version (model name + a hash of the rubric prompt files: a prompt edit rebuilds). One model call per
  card version, made lazily on first use, in the caller's thread (the app asks from a worker thread,
  never the event loop), at most one at a time per card version. When too few of its points are
  grounded in the note, the heuristic rubric is stored there instead (with a note saying why), so the
  model is not asked again for that version. When the call fails (timeout, 5xx, bad JSON) the
  heuristic rubric is used and nothing is stored: the call is tried again after ``RETRY_AFTER_S``.
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
import logging
import os
import re
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

from pydantic import ValidationError

from bot.grading.rubric import COMPILER_VERSION, Rubric, compile_rubric
from bot.knowledge.cards import Card

__all__ = ["NOT_COMPILED", "RubricBook", "RubricCompiler", "RubricError"]

log = logging.getLogger(__name__)

MEMORY_CACHE = 4096  # compiled rubrics kept in memory (a few KB each)
RETRY_AFTER_S = 300.0  # a failed LLM compilation is tried again after this long
NOT_COMPILED = "the LLM rubric could not be compiled (tried again later)"  # the heuristic rubric's note then


class RubricCompiler(Protocol):
    """A compiler other than the heuristic (the LLM's, :class:`bot.grading.rubric_llm.LLMRubricCompiler`)."""

    @property
    def version(self) -> str: ...

    def compile(self, card: Card, heuristic: Rubric | None = None) -> Rubric: ...


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

    def __init__(self, root: Path | None, compiler: RubricCompiler | None = None) -> None:
        self.root = root
        self.compiler = compiler
        self._memory: OrderedDict[tuple[str, str], Rubric] = OrderedDict()
        self._lock = threading.Lock()
        self._flights: dict[tuple[str, str], threading.Lock] = {}  # one LLM compilation per card version
        self._failed: dict[tuple[str, str], float] = {}  # card version -> when its LLM compilation failed

    # --- compiled ----------------------------------------------------------------------------

    def compiled(self, card: Card) -> Rubric:
        """The card's compiled rubric, compiled only when its version is new (by the LLM when this
        book has a compiler; blocking: call it from a worker thread in async code)."""
        key = (card.id, card.content_hash())
        with self._lock:
            hit = self._memory.get(key)
        if hit is not None:
            return hit
        rubric = self._heuristic(card, key[1])
        if self.compiler is None:
            self._remember(key, rubric)
            return rubric
        with self._lock:
            flight = self._flights.setdefault(key, threading.Lock())
        with flight:  # a second thread asking for the same card version waits for the first one's call
            with self._lock:
                hit = self._memory.get(key)
            if hit is not None:
                return hit
            distilled = self._distilled(card, key, rubric)
            if distilled is not None:
                self._remember(key, distilled)
        with self._lock:
            self._flights.pop(key, None)
        if distilled is None:
            return rubric.model_copy(update={"compile_note": NOT_COMPILED})
        return distilled

    def _remember(self, key: tuple[str, str], rubric: Rubric) -> None:
        with self._lock:
            self._memory[key] = rubric
            while len(self._memory) > MEMORY_CACHE:
                self._memory.popitem(last=False)

    def _heuristic(self, card: Card, card_hash: str) -> Rubric:
        rubric = self._read_compiled(card, card_hash, self._compiled_path(card.id), COMPILER_VERSION)
        if rubric is None:
            rubric = compile_rubric(card)
            if self.root is not None and rubric.card_hash == card_hash:
                self._try_write(self._compiled_path(card.id), {"compiler": COMPILER_VERSION, "rubric": rubric})
        return rubric

    def _distilled(self, card: Card, key: tuple[str, str], heuristic: Rubric) -> Rubric | None:
        """The stored LLM rubric, or a new one; None when the model failed (tried again later)."""
        assert self.compiler is not None
        version = self.compiler.version
        path = self._llm_path(card.id) if self.root is not None else None
        stored = self._read_compiled(card, key[1], path, version) if path is not None else None
        if stored is not None:
            return stored
        with self._lock:
            failed_at = self._failed.get(key)
        if failed_at is not None and time.monotonic() - failed_at < RETRY_AFTER_S:
            return None
        try:
            rubric = self.compiler.compile(card, heuristic)
        except Exception as exc:  # timeouts, 5xx, bad JSON: the heuristic rubric, and no error for the user
            log.warning("LLM rubric for card %s failed, using the heuristic one: %s", card.id, _describe(exc))
            with self._lock:
                self._failed[key] = time.monotonic()
            return None
        with self._lock:
            self._failed.pop(key, None)
        if path is not None:
            self._try_write(path, {"compiler": version, "rubric": rubric})
        return rubric

    def _compiled_path(self, card_id: str) -> Path | None:
        return None if self.root is None else self.root / "compiled" / f"{_safe(card_id)}.json"

    def _llm_path(self, card_id: str) -> Path:
        assert self.root is not None
        return self.root / "compiled-llm" / f"{_safe(card_id)}.json"

    def _read_compiled(self, card: Card, card_hash: str, path: Path | None, compiler: str) -> Rubric | None:
        if path is None:
            return None
        data = self._read(path)
        if not isinstance(data, dict) or data.get("compiler") != compiler:
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
    def _try_write(path: Path | None, data: dict[str, object]) -> None:
        if path is None:
            return
        rubric = data["rubric"]
        assert isinstance(rubric, Rubric)
        payload = json.dumps({"compiler": data["compiler"], "rubric": rubric.model_dump(mode="json")}, indent=1)
        with contextlib.suppress(OSError):  # a read-only data dir costs only the cache
            _write_atomic(path, payload)


def _describe(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}{f' {status}' if status else ''}: {text}".strip(": ")
