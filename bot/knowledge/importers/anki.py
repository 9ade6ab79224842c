"""Anki "Notes in Plain Text" exports: one note a row, front and back separated by a tab.

Anki 2.1.55+ writes ``#separator:tab`` / ``#html:true`` / ``#deck column:3`` header lines;
older exports have none, so a ``.txt`` file whose every row has the same number (≥ 2) of
tab-separated fields counts as one too. Fields may hold HTML (``<br>``, entities).
"""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from pathlib import Path

from bot.knowledge.cards import FLAG_GENERATED, FLAG_NO_ANSWER, Card, Source
from bot.knowledge.concepts import concept_question
from bot.knowledge.importers.base import ImportFailed
from bot.knowledge.notes import card_id
from bot.knowledge.text import display_question, question_key
from bot.knowledge.topics import classify_topic

__all__ = ["looks_like_anki", "parse_anki"]

_HEADER = re.compile(r"^#([a-z ]+):(.*)$")
_SEPARATORS = {"tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " ", "colon": ":"}
_META_COLUMNS = ("notetype column", "deck column", "tags column", "guid column")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"br", "div", "p", "li"}:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _plain(field: str) -> str:
    parser = _Text()
    parser.feed(field)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).split("\n")]
    return "\n".join(line for line in lines if line).strip()


def _headers(lines: Iterable[str]) -> tuple[dict[str, str], Iterator[str]]:
    """Anki's header lines at the start of ``lines``, and all of ``lines`` again from the first
    (read lazily: only the header lines are held)."""
    found = iter(lines)
    head: list[str] = []
    out: dict[str, str] = {}
    for line in found:
        head.append(line)
        m = _HEADER.match(line.strip())
        if not m:
            break
        out[m.group(1).strip()] = m.group(2).strip()
    return out, itertools.chain(head, found)


def looks_like_anki(lines: Iterable[str]) -> bool:
    """An Anki plain-text export: Anki's header lines, or uniform tab-separated rows (read only
    until a row says otherwise: the first line of ordinary notes)."""
    headers, found = _headers(lines)
    if "separator" in headers:
        return True
    rows, width = 0, -1
    for line in found:
        if not line.strip():
            continue
        tabs = line.count("\t")
        if tabs == 0 or (width >= 0 and tabs != width):
            return False
        rows, width = rows + 1, tabs
    return rows >= 2


def _physical(lines: Iterable[str]) -> Iterator[str]:
    """The lines as csv reads a text joined by newlines: each with its newline, the last without."""
    previous: str | None = None
    for line in lines:
        if previous is not None:
            yield previous + "\n"
        previous = line
    if previous:
        yield previous


def parse_anki(lines: Iterable[str], key: str, path: Path) -> Iterator[Card]:
    """One card per note, as the rows are read: first field the question, second the answer."""
    headers, found = _headers(lines)
    separator = _SEPARATORS.get(headers.get("separator", "tab").lower(), headers.get("separator", "\t")[:1] or "\t")
    skip = {int(v) - 1 for k, v in headers.items() if k in _META_COLUMNS and v.isdigit()}
    body_start = len(headers)
    reader = csv.reader(_physical(itertools.islice(found, body_start, None)), delimiter=separator)
    seen: dict[str, int] = {}
    read = 0  # lines of the body read so far
    try:
        for row in reader:
            start, read = body_start + read + 1, reader.line_num
            fields = [_plain(f) for i, f in enumerate(row) if i not in skip]
            if len(fields) < 2 or not fields[0]:
                continue
            source = Source(path=key, line_start=start, line_end=max(start, body_start + read))
            yield _card(fields[0], fields[1], key, source, seen)
    except csv.Error as exc:
        raise ImportFailed(f"{path}: not a readable Anki export (line {body_start + read + 1}: {exc})") from exc


def _card(front: str, back: str, key: str, source: Source, seen: dict[str, int]) -> Card:
    occurrence = seen.get(question_key(front), 0)
    seen[question_key(front)] = occurrence + 1
    explicit = front.rstrip().endswith("?")
    display = display_question(front) if explicit else concept_question(front.split("\n")[0])
    flags = [] if explicit else [FLAG_GENERATED]
    if not back:
        flags.append(FLAG_NO_ANSWER)
    return Card(
        id=card_id(key, front, occurrence),
        question=front,
        display_question=display,
        answer=back,
        topic=classify_topic(display, back, ""),
        flags=flags,
        source=source,
    )
