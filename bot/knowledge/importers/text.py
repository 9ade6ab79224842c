"""Plain-text and Markdown notes (``.txt``, ``.md``): the line-oriented notes parser.

Markdown gets Obsidian's syntax removed first (front matter, ``[[wikilinks]]``, embeds); a
``.txt`` file that is an Anki plain-text notes export goes to :mod:`.anki`.
"""

from __future__ import annotations

from pathlib import Path

from bot.knowledge.importers import anki, obsidian
from bot.knowledge.importers.base import Imported, ImportFailed
from bot.knowledge.notes import Leftover, parse_notes
from bot.knowledge.text import NotesDecodeError, decode_notes

__all__ = ["MarkdownImporter", "TextImporter", "read_text"]


def read_text(path: Path) -> str:
    """The decoded text of a notes file; a clear :class:`ImportFailed` when it is not one."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFailed(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if not data.strip():
        raise ImportFailed(f"{path}: the file is empty")
    try:
        text = decode_notes(data)
    except NotesDecodeError as exc:
        raise ImportFailed(f"{path}: not a text notes file ({exc})") from exc
    if not text.strip():
        raise ImportFailed(f"{path}: the file is empty")
    return text


def _parse(text: str, key: str) -> Imported:
    leftovers: list[Leftover] = []
    cards = parse_notes(text, key, leftovers=leftovers)
    return Imported(cards=cards, leftovers=leftovers)


class TextImporter:
    name: str = "text"
    suffixes: tuple[str, ...] = (".txt",)

    def load(self, path: Path, key: str) -> Imported:
        text = read_text(path)
        if anki.looks_like_anki(text):
            return Imported(cards=anki.parse_anki(text, key, path))
        return _parse(text, key)


class MarkdownImporter:
    name: str = "markdown"
    suffixes: tuple[str, ...] = (".md", ".markdown")

    def load(self, path: Path, key: str) -> Imported:
        return _parse(obsidian.clean_markdown(read_text(path)), key)
