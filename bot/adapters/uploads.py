"""The web app's notes library: uploads (attach button, the "Add notes" starter), ``/notes``, the welcome.

The Chainlit app only wires these in. The work is done by :class:`bot.knowledge.library.Library`
(off the event loop); this module turns it into messages.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import chainlit as cl

from bot.adapters.inert import inert
from bot.knowledge.importers import SUFFIXES as NOTE_SUFFIXES
from bot.knowledge.ingest import IngestError, IngestSummary
from bot.knowledge.library import UPLOAD_SUFFIXES, NotesFile, Upload, UploadResult
from bot.practice.coach import Coach

__all__ = ["NOTES_COMMAND", "add_notes", "ask_for_notes", "notes_command", "welcome_md"]

NOTES_COMMAND = re.compile(r"^/notes\b\s*(.*)$", re.I | re.S)
ASK_TIMEOUT_S = 600  # how long the "Add notes" file picker waits
MAX_FILES = 20
MAX_SIZE_MB = 20
PROGRESS_EVERY_S = 0.5
SHOWN_FILES = 6  # files listed by name on the welcome screen
SHOWN_TOPICS = 8
SHOWN_SECTIONS = 5  # sections not turned into questions, listed in an upload's summary
HOW_TO_ADD = (
    f"Attach notes files ({', '.join(NOTE_SUFFIXES)}, or an Obsidian vault as a .zip) with the paperclip button "
    "in the chat box, or pick the "
    "**Add notes** starter."
)


def _topics_line(topics: dict[str, int]) -> str:
    return ", ".join(f"{t} ({n})" for t, n in topics.items())


def summary_md(result: UploadResult) -> str:
    """What an upload did: files, cards added / updated, topics; refused files and why."""
    lines: list[str] = []
    s: IngestSummary | None = result.summary
    if s is not None:
        lines.append(
            f"**Added {s.files} notes file{'s' if s.files != 1 else ''}** ({', '.join(result.names)}): "
            f"{s.cards} questions — {s.added} new, {s.updated} updated, {s.unchanged} unchanged."
        )
        concepts = result.generated - result.from_prose
        if concepts:
            lines.append(f"{concepts} of them are generated from headings and definitions in your notes.")
        if result.from_prose:
            lines.append(
                f"{result.from_prose} of them were written by the model about paragraphs of prose in your notes; "
                "each one's reference answer is a passage quoted from the notes."
            )
        if s.topics:
            lines.append(f"Topics: {_topics_line(s.topics)}.")
        if s.no_answer:
            lines.append(f"{s.no_answer} of them have no answer in the notes (graded from general knowledge).")
        lines.append("They are in your next session: `/drill` asks them with the rest, `/notes` lists your files.")
    if result.unquestioned:
        shown = result.unquestioned[:SHOWN_SECTIONS]
        more = len(result.unquestioned) - len(shown)
        lines.append(
            "Not turned into questions (text under no question or heading):\n"
            + "\n".join(f"- {inert(u)}" for u in shown)
            + (f"\n- … and {more} more" if more > 0 else "")
        )
    if result.rejected:
        lines.append(
            "**Not added** (nothing of these files was stored):\n" + "\n".join(f"- {r}" for r in result.rejected)
        )
    if s is None and not result.rejected:
        lines.append("No files arrived. " + HOW_TO_ADD)
    return "\n\n".join(lines)


def _uploads(elements: Sequence[Any]) -> list[Upload]:
    out = []
    for el in elements:
        path = getattr(el, "path", None)
        out.append(Upload(name=str(getattr(el, "name", "") or ""), path=Path(path) if path else Path("/nonexistent")))
    return out


async def add_notes(coach: Coach, user: str, elements: Sequence[Any]) -> None:
    """Ingest uploaded files as ``user``'s notes, with a progress message and a summary."""
    uploads = _uploads(elements)
    names = ", ".join(u.name for u in uploads)
    msg = cl.Message(content=f"Adding your notes: reading {names}…")
    await msg.send()
    loop = asyncio.get_running_loop()
    state: dict[str, Any] = {"done": 0, "total": 0, "prose": None}

    def progress(done: int, total: int) -> None:  # called from the worker thread
        state["done"], state["total"] = done, total

    def prose_progress(name: str, done: int, total: int) -> None:  # worker thread: model calls for prose
        state["prose"] = (name, done, total)

    work = loop.run_in_executor(
        None, lambda: coach.library.add(user, uploads, progress=progress, prose_progress=prose_progress)
    )
    shown: str = msg.content
    while not work.done():
        await asyncio.wait([work], timeout=PROGRESS_EVERY_S)
        text = _progress_text(names, state)
        if text and text != shown and not work.done():
            shown = text
            msg.content = text
            await msg.update()
    try:
        result = work.result()
    except (IngestError, OSError) as exc:
        msg.content = f"Could not add those notes: {exc}. Nothing was changed."
        await msg.update()
        return
    coach.invalidate()
    msg.content = summary_md(result)
    await msg.update()


def _progress_text(names: str, state: dict[str, Any]) -> str:
    if state["total"]:
        return f"Adding your notes ({names}): {state['total']} questions found, {state['done']} indexed…"
    if state["prose"] is not None:
        name, done, total = state["prose"]
        return (
            f"Adding your notes ({names}): writing questions about the prose in {name}, "
            f"{done} of {total} section{'s' if total != 1 else ''} done…"
        )
    return ""


async def ask_for_notes(coach: Coach, user: str) -> None:
    """The "Add notes" starter: a file picker, then the same as the attach button."""
    files = await cl.AskFileMessage(
        content="Pick your notes files. " + _format_help(),
        accept={
            "text/plain": list(NOTE_SUFFIXES),
            "text/markdown": list(NOTE_SUFFIXES),
            "application/pdf": [".pdf"],
            "application/zip": [".zip"],
            "application/x-zip-compressed": [".zip"],
        },
        max_files=MAX_FILES,
        max_size_mb=MAX_SIZE_MB,
        timeout=ASK_TIMEOUT_S,
    ).send()
    if not files:
        await cl.Message(content="No files picked. " + HOW_TO_ADD).send()
        return
    await add_notes(coach, user, files)


def _format_help() -> str:
    return (
        "Questions are lines ending in `?`, `Q:`/`A:` pairs or headings; the text under each is its answer. "
        f"Accepted: {', '.join(UPLOAD_SUFFIXES)} (a zipped Obsidian vault)."
    )


def files_md(files: list[NotesFile], hidden: bool) -> str:
    own = [f for f in files if not f.shipped]
    shipped = [f for f in files if f.shipped]
    lines = ["**Your notes**"]
    lines += [f"- `{f.name}` — {f.cards} questions" for f in own] or ["- none uploaded yet. " + HOW_TO_ADD]
    if hidden:
        lines.append("\nThe shipped example notes are hidden (`/notes show-shipped` shows them again).")
    elif shipped:
        lines.append("\n**Shipped notes** (shared; `/notes hide-shipped` hides them from your sessions)")
        lines += [f"- `{f.name}` — {f.cards} questions" for f in shipped]
    lines.append("\n`/notes remove NAME` deletes one of your files and its questions.")
    return "\n".join(lines)


async def notes_command(coach: Coach, user: str, rest: str) -> None:
    """``/notes`` · ``/notes remove NAME`` · ``/notes hide-shipped`` · ``/notes show-shipped`` · ``/notes add``."""
    lib = coach.library
    verb, _, arg = rest.strip().partition(" ")
    verb = verb.lower()
    if verb == "add":
        await ask_for_notes(coach, user)
        return
    if verb == "remove":
        if not arg.strip():
            await cl.Message(content="Which file? `/notes remove NAME` (see `/notes` for the names).").send()
            return
        try:
            n = await asyncio.to_thread(lib.remove, user, arg.strip())
        except LookupError as exc:
            await cl.Message(content=f"{exc}.").send()
            return
        coach.invalidate()
        await cl.Message(content=f"Removed `{arg.strip()}` and its {n} questions.").send()
        return
    if verb in ("hide-shipped", "show-shipped"):
        await asyncio.to_thread(lib.hide_shipped, user, verb == "hide-shipped")
        coach.invalidate()
        left = len(await asyncio.to_thread(coach.cards, user))
        what = "hidden" if verb == "hide-shipped" else "shown again"
        await cl.Message(content=f"The shipped notes are {what}: your sessions draw from {left} questions.").send()
        return
    if verb:
        await cl.Message(
            content="`/notes` lists your notes; `/notes add`, `/notes remove NAME`, "
            "`/notes hide-shipped`, `/notes show-shipped`."
        ).send()
        return
    files, hidden = await asyncio.to_thread(lambda: (lib.files(user), lib.shipped_hidden(user)))
    await cl.Message(content=files_md(files, hidden)).send()


def welcome_md(coach: Coach, user: str) -> str:
    """The welcome screen: what this is, the user's knowledge base, what to do first. Blocking."""
    files = coach.library.files(user)
    cards = coach.cards(user)
    topics: dict[str, int] = {}
    for c in cards:
        topics[c.topic] = topics.get(c.topic, 0) + 1
    ranked = dict(sorted(topics.items(), key=lambda kv: (-kv[1], kv[0]))[:SHOWN_TOPICS])
    names = ", ".join(f"`{f.name}`" for f in files[:SHOWN_FILES]) + (" …" if len(files) > SHOWN_FILES else "")
    kb = (
        f"**Your knowledge base:** {len(cards)} questions from {len(files)} notes file"
        f"{'s' if len(files) != 1 else ''} ({names})."
        if cards
        else "**Your knowledge base is empty.** Add your notes to begin."
    )
    more = f" and {len(topics) - len(ranked)} more" if len(topics) > len(ranked) else ""
    parts = [
        "## Interview Coach",
        "A mock interviewer that asks you questions **from your own notes**, grades your answers "
        "against them and schedules what to review.",
        kb,
    ]
    if ranked:
        parts.append(f"Topics: {_topics_line(ranked)}{more}.")
    parts.append(
        "**Start:** pick *Quick drill* below, or *Add notes* to upload your own `.md` / `.txt` / `.pdf` notes "
        "or a zipped Obsidian vault "
        "(or attach them with the paperclip in the chat box)."
    )
    return "\n\n".join(parts)
