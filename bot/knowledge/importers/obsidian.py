"""Obsidian vaults: Markdown notes with front matter, ``[[wikilinks]]`` and embedded attachments.

Line numbers are kept: front matter becomes blank lines, links become their text in place.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["clean_markdown", "clean_markdown_lines", "front_matter_lines", "is_vault", "vault_notes"]

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?---[ \t]*(?:\n|\Z)", re.DOTALL)
_FENCE = re.compile(r"---[ \t]*")  # a line that opens or closes front matter
_EMBED = re.compile(r"!\[\[[^\]\n]*\]\]")
_WIKILINK = re.compile(r"\[\[([^\]|\n]+?)(?:\|([^\]\n]+))?\]\]")


def _link_text(match: re.Match[str]) -> str:
    target, alias = match.group(1), match.group(2)
    if alias:
        return alias.strip()
    page, _, heading = target.partition("#")
    page = page.strip().rsplit("/", 1)[-1]
    return page or heading.lstrip("^").strip()


def clean_markdown(text: str) -> str:
    """Front matter blanked, embeds (``![[image.png]]``) removed, ``[[page|alias]]`` → ``alias``."""
    front = _FRONT_MATTER.match(text)
    if front:
        text = "\n" * front.group(0).count("\n") + text[front.end() :]
    return _WIKILINK.sub(_link_text, _EMBED.sub("", text))


def front_matter_lines(lines: Iterable[str]) -> int:
    """How many lines at the start are front matter (0: none), reading no further than its end:
    a first line ``---`` up to the next ``---`` line, as :func:`clean_markdown` finds it."""
    found = iter(lines)
    if not _FENCE.fullmatch(next(found, "")):
        return 0
    return next((number for number, line in enumerate(found, start=2) if _FENCE.fullmatch(line)), 0)


def clean_markdown_lines(lines: Iterable[str], front_matter: int = 0) -> Iterator[str]:
    """:func:`clean_markdown` a line at a time (links and embeds never span lines); the first
    ``front_matter`` lines (:func:`front_matter_lines`) become blank."""
    for number, line in enumerate(lines, start=1):
        yield "" if number <= front_matter else _WIKILINK.sub(_link_text, _EMBED.sub("", line))


def is_vault(folder: Path) -> bool:
    return (folder / ".obsidian").is_dir()


def vault_notes(folder: Path) -> Iterator[Path]:
    """The Markdown notes of a vault: attachments and hidden folders (``.obsidian/``, ``.trash/``) skipped."""
    for child in sorted(folder.rglob("*.md")):
        if child.is_file() and not any(part.startswith(".") for part in child.relative_to(folder).parts):
            yield child
