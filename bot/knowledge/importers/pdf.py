"""PDF notes: the text layer (pypdf), parsed like text notes; sources carry page numbers."""

from __future__ import annotations

from pathlib import Path

from bot.knowledge.importers.base import Imported, ImportFailed
from bot.knowledge.notes import Leftover, parse_notes

__all__ = ["PdfImporter", "pdf_text"]


def pdf_text(path: Path) -> tuple[str, dict[int, int]]:
    """The text of every page, and the page (1-based) of each line (1-based)."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            raise ImportFailed(f"{path}: the PDF is encrypted; export it without a password")
        texts = [page.extract_text() or "" for page in reader.pages]
    except ImportFailed:
        raise
    except (PdfReadError, OSError, ValueError, KeyError) as exc:
        raise ImportFailed(f"{path}: not a readable PDF ({exc})") from exc
    pages: dict[int, int] = {}
    lines: list[str] = []
    for number, text in enumerate(texts, start=1):
        for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
            lines.append(line)
            pages[len(lines)] = number
        lines.append("")  # a page break ends a paragraph
        pages[len(lines)] = number
    if not any(line.strip() for line in lines):
        raise ImportFailed(f"{path}: the PDF has no text layer (a scan?); export the notes as text or Markdown")
    return "\n".join(lines), pages


class PdfImporter:
    name: str = "pdf"
    suffixes: tuple[str, ...] = (".pdf",)

    def load(self, path: Path, key: str) -> Imported:
        text, pages = pdf_text(path)
        leftovers: list[Leftover] = []
        cards = parse_notes(text, key, leftovers=leftovers)
        for card in cards:
            card.source.page_start = pages.get(card.source.line_start)
            card.source.page_end = pages.get(card.source.line_end)
        return Imported(cards=cards, leftovers=leftovers, pages=pages, text=text)
