"""Plain-text and Markdown notes (``.txt``, ``.md``): the line-oriented notes parser.

Markdown gets Obsidian's syntax removed first (front matter, ``[[wikilinks]]``, embeds); a
``.txt`` file that is an Anki plain-text notes export goes to :mod:`.anki`.

Files are decoded and parsed a line at a time (:class:`~bot.knowledge.reading.NotesLines`,
:func:`~bot.knowledge.notes.iter_cards`): memory is one card's, not the file's. Deciding what a
file is may take a first pass that keeps nothing (an Anki export's rows, a Markdown file's front
matter); ordinary notes are told from an Anki export by their first line. The lines are read
again only for the text of the sections not turned into questions (questions from prose).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.knowledge.cards import Card
from bot.knowledge.checks import display_path, unread_questions
from bot.knowledge.importers import anki, obsidian
from bot.knowledge.importers.base import ImportFailed, Reading
from bot.knowledge.notes import MAX_QUESTION_CHARS, iter_cards
from bot.knowledge.reading import NotesLines
from bot.knowledge.text import NotesDecodeError

__all__ = ["MarkdownImporter", "TextImporter", "open_lines"]


@contextmanager
def open_lines(path: Path) -> Iterator[NotesLines]:
    """The decoded lines of a notes file (iterate once; ``warnings`` says what decoding repaired,
    each naming its line); a clear :class:`ImportFailed` when it cannot be read or is binary."""
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise ImportFailed(f"{display_path(path)}: cannot read ({exc.strerror or exc})") from exc
    with stream:
        try:
            yield NotesLines(stream)
        except NotesDecodeError as exc:
            raise ImportFailed(f"{path}: not a text notes file ({exc})") from exc
        except OSError as exc:
            raise ImportFailed(f"{display_path(path)}: cannot read ({exc.strerror or exc})") from exc


class _LongLines:
    """Lines that end in "?" but are too long to be questions, noted as the lines pass."""

    def __init__(self) -> None:
        self.found: dict[int, int] = {}  # line number -> length

    def watch(self, lines: Iterable[str]) -> Iterator[str]:
        for number, line in enumerate(lines, start=1):
            if len(line) > MAX_QUESTION_CHARS and line.rstrip().endswith("?"):
                self.found[number] = len(line)
            yield line


def _notes_cards(
    path: Path, key: str, reading: Reading, clean: Callable[[Iterable[str]], Iterable[str]] | None = None
) -> Iterator[Card]:
    with open_lines(path) as lines:
        long_lines = _LongLines()
        asked: list[Card] = []  # only cards asked from a too-long line's number: none, normally
        cleaned = clean(lines) if clean is not None else lines
        for card in iter_cards(long_lines.watch(cleaned), key, leftovers=reading.leftovers):
            if card.source.line_start in long_lines.found:
                asked.append(card)
            yield card
        if not lines.has_text:
            raise ImportFailed(f"{path}: the file is empty")
        reading.warnings += [*lines.warnings, *unread_questions(long_lines.found, asked)]


def _anki_cards(path: Path, key: str, reading: Reading) -> Iterator[Card]:
    with open_lines(path) as lines:
        yield from anki.parse_anki(lines, key, path)
        reading.warnings += lines.warnings


def _lines(path: Path, clean: Callable[[Iterable[str]], Iterable[str]] | None = None) -> Iterator[str]:
    """The lines :func:`_notes_cards` parses, read again (for the text of the leftovers)."""
    with open_lines(path) as lines:
        yield from (clean(lines) if clean is not None else lines)


class TextImporter:
    name: str = "text"
    suffixes: tuple[str, ...] = (".txt",)

    def read(self, path: Path, key: str) -> Reading:
        with open_lines(path) as first:
            is_anki = anki.looks_like_anki(first)
        if is_anki:  # a card per row: no sections left over
            reading = Reading()
            reading.cards = _anki_cards(path, key, reading)
            return reading
        reading = Reading(lines=functools.partial(_lines, path))
        reading.cards = _notes_cards(path, key, reading)
        return reading


class MarkdownImporter:
    name: str = "markdown"
    suffixes: tuple[str, ...] = (".md", ".markdown")

    def read(self, path: Path, key: str) -> Reading:
        with open_lines(path) as first:
            front = obsidian.front_matter_lines(first)

        def clean(lines: Iterable[str]) -> Iterator[str]:
            return obsidian.clean_markdown_lines(lines, front)

        reading = Reading(lines=functools.partial(_lines, path, clean))
        reading.cards = _notes_cards(path, key, reading, clean)
        return reading
