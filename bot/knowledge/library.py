"""Each user's notes library: uploaded notes files under the data dir, who sees which cards.

Framework-free (the Chainlit app only wires it). Uploaded files live in
``<data dir>/uploads/<user>/`` and their cards belong to that user (store metadata ``owner``);
the shipped notes (``knowledge/``, ``interview ingest``) belong to everyone, and a user can hide
them. A bad file gets a clear message and nothing of it is written: every file is parsed before
anything is copied or stored, and a store failure puts the previous files back.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bot.knowledge.archive import UnsafeArchive, extract_notes
from bot.knowledge.importers import SUFFIXES as NOTE_SUFFIXES
from bot.knowledge.ingest import IngestError, IngestSummary, ParsedFile, collect, ingest
from bot.retrieval.store import SHARED, CardStore

if TYPE_CHECKING:
    from bot.knowledge.prose import ProseQuestions

__all__ = ["UPLOAD_SUFFIXES", "Library", "NotesFile", "Upload", "UploadResult"]

UPLOADS = "uploads"
PREFS = ".prefs.json"
GENERATED = "generated"  # the flag of a card whose question the parser wrote (not the notes)
FROM_PROSE = "from_prose"  # (with "generated") a chat model wrote it from prose in the notes
ARCHIVE = ".zip"  # a zipped Obsidian vault (or folder of notes)
UPLOAD_SUFFIXES = (*NOTE_SUFFIXES, ARCHIVE)
MAX_NAME = 120  # characters kept of an uploaded file's name
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


@dataclass(frozen=True)
class Upload:
    """One file the user sent: the name they gave it and where the server stored the bytes."""

    name: str
    path: Path


@dataclass(frozen=True)
class NotesFile:
    name: str  # what the user calls it (the upload's file name, or the shipped file's path)
    key: str  # the store's source key
    cards: int
    shipped: bool


@dataclass
class UploadResult:
    summary: IngestSummary | None  # None when no file could be used
    rejected: list[str] = field(default_factory=list)  # "name: why", one per refused file
    names: list[str] = field(default_factory=list)  # the stored names of the accepted files
    generated: int = 0  # cards whose question was generated (flag "generated": concepts, headings, prose)
    from_prose: int = 0  # of those, written by a chat model from prose (flag "from_prose")
    unquestioned: list[str] = field(default_factory=list)  # "name: lines 3–9 (section): why", per section


def safe_name(name: str) -> str:
    """A plain file name (no folders, no odd characters); empty when nothing usable is left."""
    base = Path(name.replace("\\", "/")).name
    cleaned = _UNSAFE.sub("_", base).strip(" .")
    if len(cleaned) > MAX_NAME:
        stem, suffix = Path(cleaned).stem, Path(cleaned).suffix
        cleaned = stem[: MAX_NAME - len(suffix)] + suffix
    return cleaned


class Library:
    """The notes each user sees, on top of one card store."""

    def __init__(self, data_dir: Path, store: CardStore, *, prose: ProseQuestions | None = None) -> None:
        self.data_dir = data_dir
        self.store = store
        self.prose = prose  # a chat model writes questions about prose sections; None offline
        self._hidden: dict[str, bool] = {}  # the per-user preference, read once (asked on every message)

    # -- where things are ------------------------------------------------------------------------

    def user_dir(self, user: str) -> Path:
        return self.data_dir / UPLOADS / (safe_name(user) or "_")

    def _key(self, user: str, name: str) -> str:
        return f"{UPLOADS}/{safe_name(user) or '_'}/{name}"

    # -- who sees what ---------------------------------------------------------------------------

    def shipped_hidden(self, user: str) -> bool:
        if user not in self._hidden:
            path = self.user_dir(user) / PREFS
            try:
                self._hidden[user] = bool(json.loads(path.read_text(encoding="utf-8")).get("hide_shipped", False))
            except (OSError, ValueError, AttributeError):
                self._hidden[user] = False
        return self._hidden[user]

    def hide_shipped(self, user: str, hidden: bool = True) -> None:
        folder = self.user_dir(user)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"{PREFS}.tmp"
        tmp.write_text(json.dumps({"hide_shipped": hidden}), encoding="utf-8")
        tmp.replace(folder / PREFS)
        self._hidden[user] = hidden

    def owners(self, user: str) -> frozenset[str]:
        """The owners whose cards ``user`` sees: their own, and the shared notes unless hidden."""
        return frozenset({user} if self.shipped_hidden(user) else {SHARED, user})

    def files(self, user: str) -> list[NotesFile]:
        """The user's notes files (their uploads, then the shipped ones unless hidden) with card counts.

        A zipped vault is one entry (its name), its ``key`` the prefix of its notes' keys.
        """
        own_prefix = self._key(user, "")
        mine: dict[str, NotesFile] = {}
        for key, n in self.store.sources({user}).items():
            if key.startswith(own_prefix):
                name, sep, _ = key.removeprefix(own_prefix).partition("/")  # a vault's notes count as the vault
                have = mine.get(name)
                mine[name] = NotesFile(
                    name=name, key=own_prefix + name + sep, cards=n + (have.cards if have else 0), shipped=False
                )
        out = list(mine.values())
        if not self.shipped_hidden(user):
            out += [NotesFile(name=k, key=k, cards=n, shipped=True) for k, n in self.store.sources({SHARED}).items()]
        return out

    # -- changing --------------------------------------------------------------------------------

    def add(
        self,
        user: str,
        uploads: Sequence[Upload],
        *,
        progress: Callable[[int, int], None] | None = None,
        prose_progress: Callable[[str, int, int], None] | None = None,
    ) -> UploadResult:
        """Parse every upload, then store the good ones as ``user``'s notes; bad ones are listed.

        Blocking (model calls for prose, embedding): run it off the event loop.
        ``prose_progress(name, done, total)``: sections of a file sent to the model for questions.
        """
        started = time.perf_counter()
        result = UploadResult(summary=None)
        folder = self.user_dir(user)
        own = self._key(user, "")
        with tempfile.TemporaryDirectory(prefix="upload-", dir=self._staging_root()) as tmp:
            staged_root = Path(tmp)
            staged: list[_Staged] = []
            for up in uploads:
                name = safe_name(up.name)
                problem = self._refuse(name, up)
                if problem:
                    result.rejected.append(f"{up.name or '(no name)'}: {problem}")
                    continue
                stage = staged_root / self._key(user, name)
                stage.parent.mkdir(parents=True, exist_ok=True)
                shown = None if prose_progress is None else functools.partial(prose_progress, name)
                try:
                    if Path(name).suffix.lower() == ARCHIVE:  # a zipped vault: its notes, extracted safely
                        root = extract_notes(up.path, stage, NOTE_SUFFIXES)
                    else:
                        root = stage
                        shutil.copyfile(up.path, stage)
                    parsed, _ = collect([root], staged_root, prose=self.prose, prose_progress=shown)
                except (IngestError, UnsafeArchive) as exc:
                    result.rejected.append(f"{up.name}: {_reason(str(exc), stage)}")
                    continue
                staged = [s for s in staged if s.final.name != name]  # the same name twice: the last wins
                staged.append(_Staged(folder / name, stage, parsed))
            if not staged:
                return result
            if progress is not None:  # parsed: say how many questions are on their way in
                progress(0, sum(len(p.cards) for s in staged for p in s.parsed))
            result.summary = self._commit(user, staged, progress, started)
            result.names = [s.final.name for s in staged]
            for card in (c for s in staged for p in s.parsed for c in p.cards):  # a card at a time (spools)
                result.generated += GENERATED in card.flags
                result.from_prose += FROM_PROSE in card.flags
            result.unquestioned = [
                f"{p.key.removeprefix(own)}: {where}" for s in staged for p in s.parsed for where in p.unquestioned
            ]
        return result

    def _staging_root(self) -> Path:
        root = self.data_dir / UPLOADS
        root.mkdir(parents=True, exist_ok=True)
        return root

    @staticmethod
    def _refuse(name: str, up: Upload) -> str:
        if not name:
            return "the file name is not usable"
        if Path(name).suffix.lower() not in UPLOAD_SUFFIXES:
            return f"not a notes file (accepted: {', '.join(UPLOAD_SUFFIXES)})"
        if name == PREFS:
            return "reserved name"
        if not up.path.is_file():
            return "the upload did not arrive"
        return ""

    def _commit(
        self,
        user: str,
        staged: list[_Staged],
        progress: Callable[[int, int], None] | None,
        started: float,
    ) -> IngestSummary:
        """Move the staged files into place and sync their cards; on failure put everything back."""
        moved: list[tuple[Path, Path | None]] = []  # (final, backup of what it replaced)
        try:
            for s in staged:
                s.final.parent.mkdir(parents=True, exist_ok=True)
                backup = None
                if s.final.exists():
                    backup = s.final.with_name(f".{s.final.name}.bak")
                    _delete(backup)
                    s.final.replace(backup)
                moved.append((s.final, backup))
                shutil.move(s.stage, s.final)
            collected = [
                ParsedFile(path=s.final_path(p.path), key=p.key, cards=p.cards) for s in staged for p in s.parsed
            ]
            summary = ingest(
                [s.final for s in staged],
                self.store,
                self.data_dir,
                progress=progress,
                collected=(collected, []),
                started=started,
                owner=user,
            )
        except BaseException:
            for final, backup in reversed(moved):
                _delete(final)
                if backup is not None:
                    backup.replace(final)
            raise
        for _, backup in moved:
            if backup is not None:
                _delete(backup)
        return summary

    def remove(self, user: str, name: str) -> int:
        """Delete one of the user's uploaded notes files (or zipped vaults) and its cards; returns the cards removed."""
        clean = safe_name(name)
        mine = {f.name: f for f in self.files(user) if not f.shipped}
        if clean not in mine:
            have = ", ".join(sorted(mine)) or "none"
            raise LookupError(f"you have no uploaded notes file named “{name}” (yours: {have})")
        key = mine[clean].key
        keys = [k for k in self.store.sources({user}) if k.startswith(key)] if key.endswith("/") else [key]
        removed = sum(self.store.remove_source(k) for k in keys)
        _delete(self.user_dir(user) / clean)
        return removed


@dataclass(frozen=True)
class _Staged:
    """One accepted upload: where it goes, where it was staged, its parsed files (several for a vault)."""

    final: Path
    stage: Path
    parsed: list[ParsedFile]

    def final_path(self, staged_file: Path) -> Path:
        if staged_file == self.stage.resolve():
            return self.final.resolve()
        return (self.final / staged_file.relative_to(self.stage.resolve())).resolve()


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _reason(message: str, staged: Path) -> str:
    """An ingest message without the staging path (the user knows the file by its name)."""
    return message.replace(f"{staged}: ", "").replace(f"{staged}/", "").replace(str(staged), "the file")
