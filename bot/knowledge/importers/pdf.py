"""PDF notes: the text layer (pypdf), parsed like text notes; sources carry page numbers.

Pages are extracted and parsed one at a time: the text of the whole document is never held.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from pathlib import Path

from bot.knowledge.cards import Card
from bot.knowledge.importers.base import ImportFailed, Reading
from bot.knowledge.notes import iter_cards

__all__ = ["PdfImporter", "pdf_lines"]


def pdf_lines(path: Path, page_starts: list[int]) -> Iterator[str]:
    """The lines of every page, a page at a time, each page ended by a blank line (a page break ends
    a paragraph); ``page_starts`` receives the first line (1-based) of each page as it is read."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    count = 0
    has_text = False
    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            raise ImportFailed(f"{path}: the PDF is encrypted; export it without a password")
        for page in reader.pages:
            text = page.extract_text() or ""
            page_starts.append(count + 1)
            for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
                has_text = has_text or bool(line.strip())
                count += 1
                yield line
            count += 1
            yield ""
    except ImportFailed:
        raise
    except (PdfReadError, OSError, ValueError, KeyError) as exc:
        raise ImportFailed(f"{path}: not a readable PDF ({exc})") from exc
    if not has_text:
        raise ImportFailed(f"{path}: the PDF has no text layer (a scan?); export the notes as text or Markdown")


def _cards(path: Path, key: str, reading: Reading) -> Iterator[Card]:
    starts = reading.page_starts
    for card in iter_cards(pdf_lines(path, starts), key, leftovers=reading.leftovers):
        card.source.page_start = bisect.bisect_right(starts, card.source.line_start) or None
        card.source.page_end = bisect.bisect_right(starts, card.source.line_end) or None
        yield card


class PdfImporter:
    name: str = "pdf"
    suffixes: tuple[str, ...] = (".pdf",)

    def read(self, path: Path, key: str) -> Reading:
        reading = Reading(lines=lambda: pdf_lines(path, []))
        reading.cards = _cards(path, key, reading)
        return reading
