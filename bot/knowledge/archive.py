"""A zipped Obsidian vault (or any zip of notes), extracted safely into a staging folder.

An uploaded zip is hostile until proven otherwise. It is refused whole, before anything is
written, when a member's name is absolute (``/etc/x``, ``C:\\x``, ``\\\\host\\x``) or climbs out with
``..``, when a member is a symlink or another special file, when it holds more than
:data:`MAX_MEMBERS` entries or more than :data:`MAX_TOTAL_BYTES` uncompressed (a zip bomb: the
declared sizes are checked first, and the bytes actually inflated are counted while extracting,
since a header can lie). Only notes files are written (``.md``, ``.txt``, ``.pdf``…); attachments
are skipped, as the Obsidian importer skips them in a vault folder, and so is ``.obsidian/``'s
content (an empty ``.obsidian/`` marks the staged folder as a vault).
"""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

__all__ = ["MAX_MEMBERS", "MAX_TOTAL_BYTES", "UnsafeArchive", "extract_notes"]

MAX_MEMBERS = 5000  # entries in the zip, folders and attachments included
MAX_TOTAL_BYTES = 100 * 1024 * 1024  # uncompressed notes written, at most
CHUNK = 64 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")


class UnsafeArchive(ValueError):
    """A zip that is refused; the message says why (nothing of it was kept)."""


def _member_path(name: str) -> PurePosixPath:
    """The member's relative path, or :class:`UnsafeArchive` for an absolute or escaping name."""
    unified = name.replace("\\", "/")
    if unified.startswith("/") or _DRIVE.match(unified) or "\0" in unified:
        raise UnsafeArchive(f"the zip holds an absolute path ({name!r})")
    parts = [p for p in unified.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(f"the zip holds a path that leaves its folder ({name!r})")
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _kind(info: zipfile.ZipInfo) -> str:
    mode = info.external_attr >> 16
    if info.create_system == 3 and mode and stat.S_IFMT(mode) not in (stat.S_IFREG, stat.S_IFDIR, 0):
        return "link" if stat.S_ISLNK(mode) else "special"
    return "dir" if info.is_dir() else "file"


def extract_notes(archive: Path, dest: Path, suffixes: tuple[str, ...]) -> Path:
    """Extract the notes files of ``archive`` into the empty or new folder ``dest``; return the vault's root.

    The root is ``dest`` or, when everything sits in one top-level folder (a zipped vault folder),
    that folder. Raises :class:`UnsafeArchive` (``dest`` is then removed) for a hostile or unreadable zip.
    """
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            _check(infos)
            wanted = [(info, _member_path(info.filename)) for info in infos if _kind(info) == "file"]
            dest.mkdir(parents=True, exist_ok=True)
            written = 0
            vault = any(".obsidian" in _member_path(i.filename).parts[:2] for i in infos)
            for info, rel in wanted:
                if rel.suffix.lower() not in suffixes or any(p.startswith(".") for p in rel.parts):
                    continue
                target = dest.joinpath(*rel.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, target.open("xb") as out:
                    while chunk := src.read(CHUNK):
                        written += len(chunk)
                        if written > MAX_TOTAL_BYTES:
                            raise UnsafeArchive(f"the zip inflates to more than {MAX_TOTAL_BYTES // 2**20} MB")
                        out.write(chunk)
    except UnsafeArchive:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError, RuntimeError) as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise UnsafeArchive(f"not a readable zip ({type(exc).__name__}: {exc})") from exc
    tops = [p for p in dest.iterdir() if not p.name.startswith(".")]
    root = tops[0] if len(tops) == 1 and tops[0].is_dir() else dest
    if vault:
        (root / ".obsidian").mkdir(exist_ok=True)
    return root


def _check(infos: list[zipfile.ZipInfo]) -> None:
    if len(infos) > MAX_MEMBERS:
        raise UnsafeArchive(f"the zip holds {len(infos):,} entries (at most {MAX_MEMBERS:,})")
    declared = 0
    for info in infos:
        _member_path(info.filename)
        kind = _kind(info)
        if kind == "link":
            raise UnsafeArchive(f"the zip holds a symbolic link ({info.filename!r})")
        if kind == "special":
            raise UnsafeArchive(f"the zip holds a special file ({info.filename!r})")
        declared += info.file_size
    if declared > MAX_TOTAL_BYTES:
        raise UnsafeArchive(f"the zip inflates to more than {MAX_TOTAL_BYTES // 2**20} MB")
