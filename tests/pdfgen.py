"""Write simple text PDFs for tests and the bench with pypdf's own writer (no extra dependency)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["write_pdf"]


def _escape(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def write_pdf(path: Path, pages: Sequence[Sequence[str]]) -> None:
    """One PDF page per entry, each line of text set in Helvetica (Latin-1 text only)."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    for lines in pages:
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        body = " ".join(f"({_escape(line)}) Tj T*" for line in lines)
        stream = DecodedStreamObject()
        stream.set_data(f"BT /F1 9 Tf 11 TL 40 760 Td {body} ET".encode("latin-1"))
        page.replace_contents(stream)
    with path.open("wb") as fh:
        writer.write(fh)
