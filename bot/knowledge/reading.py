"""Reading a notes file line by line: memory bounded by the cards, not by the file.

A whole 50 MB file decoded at once is up to 200 MB of ``str`` (one astral character, e.g. a
mathematical bold letter, makes every character of a string four bytes), and splitting it into
lines copies it again. :class:`NotesLines` decodes one line at a time instead; the parser
(:func:`bot.knowledge.notes.parse_lines`) consumes them as they come.

Decoding (the same rules as :func:`bot.knowledge.text.decode_notes`, which uses this): UTF-8,
with or without BOM; UTF-16 with a BOM; a line that is not UTF-8 is read as Windows-1252 unless
the file has shown UTF-8 multi-byte characters (then its bad bytes become U+FFFD). NUL bytes are
removed. Every repair is reported in :attr:`NotesLines.warnings`, naming the first line. A file
whose first 8 KB hold NUL bytes or mostly control characters is binary: :class:`NotesDecodeError`.
"""

from __future__ import annotations

import codecs
import io
import re
import unicodedata
from collections.abc import Iterator
from typing import BinaryIO

from bot.knowledge.text import NotesDecodeError

__all__ = ["HEAD_BYTES", "NotesLines"]

HEAD_BYTES = 8192  # what binary detection looks at
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


class NotesLines:
    """The lines of a notes file (``\\n``-free), decoded one at a time; iterate once.

    After iterating: :attr:`warnings` (what decoding repaired), :attr:`has_text` (anything but
    whitespace) and :attr:`long_lines` (line number → length, for lines over ``long_from``
    characters that end in "?": a caller may report the ones that did not become questions).
    """

    def __init__(self, stream: BinaryIO, *, long_from: int | None = None) -> None:
        self._stream = stream
        self._long_from = long_from
        self.warnings: list[str] = []
        self.has_text = False
        self.long_lines: dict[int, int] = {}
        head = stream.read(HEAD_BYTES)
        stream.seek(0)
        self._utf16 = head.startswith(_UTF16_BOMS)
        self._seen_utf8 = bool(_UTF8_MULTIBYTE.search(head))
        if not self._utf16:
            _check_not_binary(head)

    def __iter__(self) -> Iterator[str]:
        number = 0
        bad: list[int] = []  # lines with invalid UTF-8 replaced
        legacy: list[int] = []  # lines read as Windows-1252
        nuls: list[int] = []
        for raw in self._raw_lines():
            for line in raw.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
                number += 1
                if line and line[0] == "\ufeff" and number == 1:
                    line = line[1:]
                if "\x00" in line:
                    nuls.append(number)
                    line = line.replace("\x00", "")
                self._note(number, line)
                yield line
            if isinstance(raw, _Repaired):
                (legacy if raw.legacy else bad).append(number)
        self._report(bad, legacy, nuls)

    def _raw_lines(self) -> Iterator[str]:
        if self._utf16:
            text = io.TextIOWrapper(self._stream, encoding="utf-16", newline="")
            line = ""
            try:
                for line in text:
                    yield line.removesuffix("\n")
                if line.endswith("\n"):
                    yield ""  # as str.split: a final newline ends an empty last line
            except UnicodeDecodeError as exc:
                raise NotesDecodeError("starts with a utf-16 byte-order mark but is not utf-16") from exc
            finally:
                text.detach()
            return
        raw = b""
        for raw in self._stream:
            yield self._decode(raw.removesuffix(b"\n"))
        if raw.endswith(b"\n"):
            yield ""  # as str.split: a final newline ends an empty last line

    def _decode(self, raw: bytes) -> str:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            if self._seen_utf8 or _UTF8_MULTIBYTE.search(raw):
                self._seen_utf8 = True
                return _Repaired(raw.decode("utf-8", errors="replace"), legacy=False)
            return _Repaired(raw.decode("cp1252", errors="replace"), legacy=True)
        if not self._seen_utf8 and not line.isascii():
            self._seen_utf8 = True
        return line

    def _note(self, number: int, line: str) -> None:
        stripped = line.strip()
        if stripped:
            self.has_text = True
            if self._long_from is not None and len(stripped) > self._long_from and stripped.endswith("?"):
                self.long_lines[number] = len(stripped)

    def _report(self, bad: list[int], legacy: list[int], nuls: list[int]) -> None:
        if bad:
            self.warnings.append(
                f"line {bad[0]}: invalid UTF-8 replaced with \ufffd ({_lines(bad)}); the file is not quite UTF-8"
            )
        if legacy:
            self.warnings.append(
                f"line {legacy[0]}: not UTF-8; read as Windows-1252 ({_lines(legacy)}; "
                "if characters look wrong, save the file as UTF-8)"
            )
        if nuls:
            self.warnings.append(f"line {nuls[0]}: NUL bytes removed ({_lines(nuls)})")


class _Repaired(str):
    """A decoded line that needed repair (``legacy``: read as Windows-1252)."""

    legacy: bool

    def __new__(cls, text: str, *, legacy: bool) -> _Repaired:
        obj = super().__new__(cls, text)
        obj.legacy = legacy
        return obj


def _lines(numbers: list[int]) -> str:
    return f"{len(numbers):,} line" + ("s" if len(numbers) != 1 else "")


def _check_not_binary(head: bytes) -> None:
    if b"\x00" in head:
        raise NotesDecodeError("looks binary (contains NUL bytes)")
    sample = head.decode("utf-8", errors="replace").replace("\r\n", "\n")
    if sample:
        controls = sum(1 for ch in sample if unicodedata.category(ch) == "Cc" and ch not in "\n\t\f\v\r")
        if controls / len(sample) > 0.05:
            raise NotesDecodeError("looks binary (too many control characters)")
