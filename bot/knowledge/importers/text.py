"""Plain-text and Markdown notes (``.txt``, ``.md``): the line-oriented notes parser.

Markdown gets Obsidian's syntax removed first (front matter, ``[[wikilinks]]``, embeds); a
``.txt`` file that is an Anki plain-text notes export goes to :mod:`.anki`.
"""

from __future__ import annotations

from pathlib import Path

from bot.knowledge.checks import display_path, unread_questions
from bot.knowledge.importers import anki, obsidian
from bot.knowledge.importers.base import Imported, ImportFailed
from bot.knowledge.notes import MAX_QUESTION_CHARS, Leftover, parse_notes
from bot.knowledge.text import NotesDecodeError, decode_notes_checked

__all__ = ["MarkdownImporter", "TextImporter", "read_text"]


def read_text(path: Path) -> tuple[str, list[str]]:
    """The decoded text of a notes file and what decoding repaired (invalid UTF-8, NUL bytes, each
    naming its line); a clear :class:`ImportFailed` when it is not a notes file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFailed(f"{display_path(path)}: cannot read ({exc.strerror or exc})") from exc
    if not data.strip():
        raise ImportFailed(f"{path}: the file is empty")
    try:
        text, repaired = decode_notes_checked(data)
    except NotesDecodeError as exc:
        raise ImportFailed(f"{path}: not a text notes file ({exc})") from exc
    if not text.strip():
        raise ImportFailed(f"{path}: the file is empty")
    return text, repaired


def _parse(text: str, key: str, repaired: list[str]) -> Imported:
    leftovers: list[Leftover] = []
    cards = parse_notes(text, key, leftovers=leftovers)
    long_lines = {
        number: len(line)
        for number, line in enumerate(text.split("\n"), start=1)
        if len(line) > MAX_QUESTION_CHARS and line.rstrip().endswith("?")
    }
    return Imported(
        cards=cards, leftovers=leftovers, warnings=[*repaired, *unread_questions(long_lines, cards)], text=text
    )


class TextImporter:
    name: str = "text"
    suffixes: tuple[str, ...] = (".txt",)

    def load(self, path: Path, key: str) -> Imported:
        text, repaired = read_text(path)
        if anki.looks_like_anki(text):
            return Imported(cards=anki.parse_anki(text, key, path), warnings=repaired)
        return _parse(text, key, repaired)


class MarkdownImporter:
    name: str = "markdown"
    suffixes: tuple[str, ...] = (".md", ".markdown")

    def load(self, path: Path, key: str) -> Imported:
        text, repaired = read_text(path)
        return _parse(obsidian.clean_markdown(text), key, repaired)
