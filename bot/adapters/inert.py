"""Markdown from notes, answers and models made inert: no image to fetch, no link to follow.

Text the app did not write (a card's question and reference, a hint, a model's feedback, a
follow-up) goes into the chat's Markdown. An image there (``![x](http://host/p.png)``, or by
reference, ``![x][r]`` with ``[r]: http://...``) would make every browser showing it contact that
host, and a link could hide where it goes. :func:`inert` escapes image syntax, so it shows as the
text that was written, and turns links into their text followed by the address in plain text.
Code spans and fenced blocks are left alone (Markdown shows them literally anyway). Raw HTML is
already shown as text by the chat, and the Content-Security-Policy (``bot.adapters.security``)
blocks anything that slips through.
"""

from __future__ import annotations

import re

__all__ = ["inert"]

_CODE = re.compile(r"(```.*?```|~~~.*?~~~|`[^`\n]*`)", re.DOTALL)
_INLINE_IMAGE = re.compile(r"!\[([^\]\n]*)\]\(([^)\n]*)\)")
_IMAGE = re.compile(r"!\[")
_LINK = re.compile(r"(?<!\\)\[([^\]\n]*)\]\(\s*(?:<([^>\n]*)>|([^)\s]*))(?:\s+[\"'(][^)]*)?\)")
_REF_LINK = re.compile(r"(?<!\\)\[([^\]\n]*)\]\[([^\]\n]*)\]")
_REF_DEF = re.compile(r"^( {0,3})\[([^\]\n]+)\]:", re.MULTILINE)
_AUTOLINK = re.compile(r"<((?:https?|ftp|mailto|data|javascript):[^>\s]*)>", re.IGNORECASE)


def _link_text(m: re.Match[str]) -> str:
    target = m.group(2) or m.group(3)
    return f"{m.group(1)} ({target})" if target else m.group(1)


def _plain(text: str) -> str:
    text = _INLINE_IMAGE.sub(r"!\\[\1\\]\\(\2\\)", text)  # escaped: shown as it was typed
    text = _IMAGE.sub(r"!\\[", text)  # ![x][ref] too
    text = _LINK.sub(_link_text, text)
    text = _REF_LINK.sub(r"\1 \\[\2\\]", text)
    text = _REF_DEF.sub(r"\1\\[\2\\]:", text)
    return _AUTOLINK.sub(r"\\<\1\\>", text)


def inert(text: str) -> str:
    """``text`` with Markdown images escaped and links made plain text, code left as it is."""
    if "[" not in text and "<" not in text:
        return text
    parts = _CODE.split(text)
    return "".join(part if i % 2 else _plain(part) for i, part in enumerate(parts))
