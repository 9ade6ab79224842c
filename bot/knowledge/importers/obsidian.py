"""Obsidian vaults: Markdown notes with front matter, ``[[wikilinks]]`` and embedded attachments.

Line numbers are kept: front matter becomes blank lines, links become their text in place.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

__all__ = ["clean_markdown", "is_vault", "vault_notes"]

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?---[ \t]*(?:\n|\Z)", re.DOTALL)
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


def is_vault(folder: Path) -> bool:
    return (folder / ".obsidian").is_dir()


def vault_notes(folder: Path) -> Iterator[Path]:
    """The Markdown notes of a vault: attachments and hidden folders (``.obsidian/``, ``.trash/``) skipped."""
    for child in sorted(folder.rglob("*.md")):
        if child.is_file() and not any(part.startswith(".") for part in child.relative_to(folder).parts):
            yield child
