"""``interview rubric CARD``: show a card's key points, and edit them for a user; ``--compile-all``
compiles every card's rubric ahead of use (the LLM's, when one is configured)."""

from __future__ import annotations

import json
from typing import Any

import click

from bot.adapters.commands.common import BadInput, history_user, known_cards, progress_bar
from bot.settings import get_settings

__all__ = ["rubric"]


def _find(cards: list[Any], ref: str) -> Any:
    exact = [c for c in cards if c.id == ref]
    if exact:
        return exact[0]
    found = [c for c in cards if c.id.startswith(ref)] or [
        c for c in cards if ref.lower() in c.display_question.lower()
    ]
    if not found:
        raise BadInput(f"no card matches {ref!r}: give a card id (see `interview cards`) or words of its question")
    if len(found) > 1:
        listed = "; ".join(f"{c.id} {c.display_question}" for c in found[:5])
        raise BadInput(f"{len(found)} cards match {ref!r}: {listed}")
    return found[0]


def _show(r: Any, card: Any, edit: Any, as_json: bool) -> None:
    stale = edit is not None and edit.stale
    if as_json:
        out = {**r.model_dump(mode="json"), "question": card.display_question, "stale_edit": stale}
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    click.echo(f"{card.display_question}  (card {card.id}, {card.source.path}:{card.source.line_start})")
    click.echo(f"Gist: {r.gist}")
    who = {"llm": "distilled by the LLM", "heuristic": "compiled by the heuristic", "user": "edited by the user"}
    click.echo(f"Rubric version {r.version}, {r.compiled_by} ({who[r.compiled_by]})")
    if r.compile_note:
        click.echo(f"Note: {r.compile_note}")
    if stale:
        click.echo(
            "Note: your edit was made for an earlier version of this note, which has changed since; "
            "answers are graded against the compiled rubric below until you edit again.",
            err=True,
        )
    for i, p in enumerate(r.points, 1):
        lines = f"  (lines {p.lines[0]}–{p.lines[-1]})" if p.lines else ""
        click.echo(f"{i:>2}. [{p.weight}] {p.label} — {p.text}{lines}")


COMPILE_THREADS = 4  # model calls at once for --compile-all


def _compile_all(settings: Any, book: Any) -> None:
    """Compile every answered card's rubric (one model call per card version not compiled yet)."""
    from collections import Counter
    from concurrent.futures import ThreadPoolExecutor

    from bot.grading.rubric_book import NOT_COMPILED

    cards = [c for c in known_cards(settings) if c.has_answer]
    counts: Counter[str] = Counter()
    with progress_bar("compiling rubrics", "cards") as progress, ThreadPoolExecutor(COMPILE_THREADS) as pool:
        progress(0, len(cards))
        for done, r in enumerate(pool.map(book.compiled, cards), 1):
            counts["failed" if r.compile_note == NOT_COMPILED else r.compiled_by] += 1
            progress(done, len(cards))
    by = "the LLM" if book.compiler is not None else "the heuristic (no model configured)"
    parts = [f"{counts['llm']} by the LLM"] if book.compiler is not None else []
    parts.append(f"{counts['heuristic']} heuristic")
    if counts["failed"]:
        parts.append(f"{counts['failed']} heuristic because the model failed (tried again on first use)")
    click.echo(f"{len(cards)} rubrics compiled by {by}: {', '.join(parts)}.")


@click.command(name="rubric")
@click.argument("card_ref", metavar="CARD", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the rubric as JSON.")
@click.option("--edit", is_flag=True, help="Change the key points for this user (opens $EDITOR).")
@click.option(
    "--from",
    "source",
    type=click.File("r", encoding="utf-8"),
    help="With --edit: read the new rubric (JSON or 'weight | label | text' lines) from this file, '-' for stdin.",
)
@click.option("--reset", is_flag=True, help="Drop this user's edit: back to the compiled rubric.")
@click.option("--user", default=None, help="Whose rubric (default: the only configured user).")
@click.option(
    "--compile-all",
    is_flag=True,
    help="Compile every card's rubric now, with progress (by the LLM when one is configured), instead of on first use.",
)
def rubric(
    card_ref: str | None, as_json: bool, edit: bool, source: Any, reset: bool, user: str | None, compile_all: bool
) -> None:
    """Show the key points CARD is graded against (a card id, an id prefix or words of its question)."""
    from bot.grading.pipeline import make_rubric_book
    from bot.grading.rubric import parse_rubric_text, rubric_text
    from bot.grading.rubric_book import RubricError

    if source is not None and not edit:
        raise click.UsageError("--from goes with --edit")
    settings = get_settings()
    book = make_rubric_book(settings)
    if compile_all:
        if card_ref or edit or reset or as_json:
            raise click.UsageError("--compile-all takes no CARD, --edit, --reset or --json")
        _compile_all(settings, book)
        return
    if not card_ref:
        raise click.UsageError("give a CARD (or --compile-all)")
    card = _find(known_cards(settings), card_ref)
    if not card.has_answer:
        raise BadInput("this card has no answer in your notes, so it has no rubric (the LLM grader writes its own)")
    who = history_user(settings, user)
    if reset:
        click.echo("Your edit was dropped." if book.reset(card, who) else "You had no edit for this card.", err=True)
    elif edit:
        current = book.for_user(card, who)
        text = source.read() if source is not None else click.edit(rubric_text(current, card.display_question))
        if text is None or not text.strip() or text.strip() == rubric_text(current, card.display_question).strip():
            click.echo("Nothing changed.", err=True)
            return
        try:
            stored = book.edit(card, who, parse_rubric_text(text, current, card.display_question))
        except (ValueError, RubricError) as exc:
            kept = settings.data_dir / "rubrics" / f"rejected-{card.id}.txt"
            kept.parent.mkdir(parents=True, exist_ok=True)
            kept.write_text(text, encoding="utf-8")
            raise BadInput(f"rubric not changed: {exc} (your text is kept in {kept})") from exc
        click.echo(f"Stored version {stored.version} of the key points for {who}.", err=True)
    current = book.for_user(card, who)
    _show(current, card, book.user_edit(card, who), as_json)
