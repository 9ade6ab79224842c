"""Importers: one module per notes format, chosen by file suffix.

* :mod:`.text` — ``.txt`` and ``.md`` notes (Markdown cleaned of Obsidian syntax; a ``.txt``
  Anki plain-text export goes to :mod:`.anki`);
* :mod:`.pdf` — the text layer of a PDF, page numbers in the sources;
* :mod:`.obsidian` — a vault folder (``.obsidian/`` inside): its Markdown notes only.

``read(path, key)`` imports one file a card at a time (memory bounded, whatever its size);
``load(path, key)`` reads it whole; ``note_files(root)`` expands a folder into the files an
importer can read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from bot.knowledge.importers.base import Imported, Importer, ImportFailed, Reading
from bot.knowledge.importers.obsidian import is_vault, vault_notes
from bot.knowledge.importers.pdf import PdfImporter
from bot.knowledge.importers.text import MarkdownImporter, TextImporter

__all__ = [
    "IMPORTERS",
    "SUFFIXES",
    "ImportFailed",
    "Imported",
    "Importer",
    "Reading",
    "importer_for",
    "load",
    "note_files",
    "read",
]

IMPORTERS: tuple[Importer, ...] = (TextImporter(), MarkdownImporter(), PdfImporter())
SUFFIXES: tuple[str, ...] = tuple(s for importer in IMPORTERS for s in importer.suffixes)


def importer_for(path: Path) -> Importer | None:
    suffix = path.suffix.lower()
    return next((i for i in IMPORTERS if suffix in i.suffixes), None)


def read(path: Path, key: str) -> Reading:
    """Import one notes file, a card at a time. Raises :class:`ImportFailed` with a clear message
    (an unknown kind of file at once, anything else possibly while iterating)."""
    importer = importer_for(path)
    if importer is None:
        raise ImportFailed(f"{path}: not a notes file (supported: {', '.join(SUFFIXES)}, or an Obsidian vault folder)")
    return importer.read(path, key)


def load(path: Path, key: str) -> Imported:
    """Import one notes file whole. Raises :class:`ImportFailed` with a clear message."""
    return Imported.of(read(path, key))


def note_files(root: Path) -> Iterator[Path]:
    """A file as is; a folder's notes files, sorted, recursively, hidden folders skipped.

    In an Obsidian vault only the Markdown notes count (attachments such as PDFs and images
    are skipped).
    """
    if not root.is_dir():
        yield root
        return
    if is_vault(root):
        yield from vault_notes(root)
        return
    for child in sorted(root.rglob("*")):
        if (
            child.is_file()
            and child.suffix.lower() in SUFFIXES
            and not any(part.startswith(".") for part in child.relative_to(root).parts)
        ):
            yield child
