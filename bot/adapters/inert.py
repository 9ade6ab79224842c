"""Markdown from notes, answers and models made inert: no image to fetch, no link to follow.

Text the app did not write (a card's question and reference, a hint, a model's feedback, a
follow-up) goes into the chat's Markdown. An image there (``![x](http://host/p.png)``, or by
reference, ``![x][r]`` with ``[r]: http://...``) would make every browser showing it contact that
host, and a link could hide where it goes. :func:`inert` escapes image syntax, turns links into their text
followed by the address, and shows every address as code (which no renderer turns into a link).
Code spans and fenced blocks are left alone (Markdown shows them literally anyway). Raw HTML is
already shown as text by the chat, and the Content-Security-Policy (``bot.adapters.security``)
blocks anything that slips through.
"""

from __future__ import annotations

import re

__all__ = ["inert"]

_CODE = re.compile(r"(```.*?```|~~~.*?~~~|`[^`\n]*`)", re.DOTALL)
_URL = re.compile(r"\b(?:[a-z][a-z0-9+.-]*://|www\.(?=\w))(?:[^\s<>`()]*[^\s<>`().,;:!?'\"])?", re.IGNORECASE)
_INLINE_IMAGE = re.compile(r"!\[([^\]\n]*)\]\(([^)\n]*)\)")
_IMAGE = re.compile(r"!\[")
_LINK = re.compile(r"(?<!\\)\[([^\]\n]*)\]\(\s*(?:<([^>\n]*)>|([^)\s]*))(?:\s+[\"'(][^)]*)?\)")
_REF_LINK = re.compile(r"(?<!\\)\[([^\]\n]*)\]\[([^\]\n]*)\]")
_REF_DEF = re.compile(r"(?<!\\)\[([^\]\n]+)\]:")
_AUTOLINK = re.compile(r"<([a-z][a-z0-9+.-]*:[^>\s]*)>", re.IGNORECASE)


def _link_text(m: re.Match[str]) -> str:
    target = m.group(2) or m.group(3)
    return f"{m.group(1)} ({target})" if target else m.group(1)


def _plain(text: str) -> str:
    # addresses as code first: no autolink, and the constructs below keep them as they are
    text = _URL.sub(lambda m: f"`{m.group(0)}`", _AUTOLINK.sub(r"\1", text))
    text = _INLINE_IMAGE.sub(r"!\\[\1\\] (\2)", text)  # shown as text: "![alt] (address)"
    text = _IMAGE.sub(r"!\\[", text)  # ![x][ref] too
    text = _LINK.sub(_link_text, text)
    text = _REF_LINK.sub(r"\1 \\[\2\\]", text)
    return _REF_DEF.sub(r"\\[\1\\]:", text)


def inert(text: str) -> str:
    """``text`` with Markdown images escaped and links made plain text, code left as it is."""
    if not any(mark in text for mark in ("[", "<", "://", "www.")):
        return text
    parts = _CODE.split(text)
    return "".join(part if i % 2 else _plain(part) for i, part in enumerate(parts))
