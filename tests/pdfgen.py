"""Write simple text PDFs for tests and the bench with pypdf's own writer (no extra dependency)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["write_pdf"]


def _escape(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _image(size: int, seed: int) -> Any:
    """A grey-scale image XObject of about ``size`` bytes of noise (a figure that does not compress)."""
    from pypdf.generic import DecodedStreamObject, NameObject, NumberObject

    side = max(1, int(size**0.5))
    image = DecodedStreamObject()
    image.set_data(random.Random(seed).randbytes(side * side))
    image[NameObject("/Type")] = NameObject("/XObject")
    image[NameObject("/Subtype")] = NameObject("/Image")
    image[NameObject("/Width")] = NumberObject(side)
    image[NameObject("/Height")] = NumberObject(side)
    image[NameObject("/ColorSpace")] = NameObject("/DeviceGray")
    image[NameObject("/BitsPerComponent")] = NumberObject(8)
    return image


def write_pdf(path: Path, pages: Sequence[Sequence[str]], *, image_bytes: int = 0) -> None:
    """One PDF page per entry, each line of text set in Helvetica (Latin-1 text only).

    ``image_bytes`` adds a figure of about that size to every page, as slides and screenshots do.
    """
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
    for number, lines in enumerate(pages):
        page = writer.add_blank_page(612, 792)
        resources = DictionaryObject({NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
        figure = ""
        if image_bytes:
            resources[NameObject("/XObject")] = DictionaryObject({NameObject("/Im1"): _image(image_bytes, number)})
            figure = "q 200 0 0 150 380 40 cm /Im1 Do Q "
        page[NameObject("/Resources")] = resources
        body = " ".join(f"({_escape(line)}) Tj T*" for line in lines)
        stream = DecodedStreamObject()
        stream.set_data(f"{figure}BT /F1 9 Tf 11 TL 40 760 Td {body} ET".encode("latin-1"))
        page.replace_contents(stream)
    with path.open("wb") as fh:
        writer.write(fh)
