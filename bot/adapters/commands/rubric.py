"""``interview rubric CARD``: show a card's key points, and edit them for a user."""

from __future__ import annotations

import json
from typing import Any

import click

from bot.adapters.commands.common import BadInput, history_user, known_cards
from bot.settings import get_settings

__all__ = ["parse_rubric_text", "rubric", "rubric_text"]

EDIT_HELP = """\
# Key points of: {question}
# One point per line:  weight | label | text
#   weight: core (what an interviewer expects) or detail (depth, examples)
#   label:  a short noun phrase naming the point (used by hints and follow-ups; may be left empty)
#   text:   the point as a whole sentence
# Lines starting with # are ignored. 1 to {max_points} points, at least one core.
# Save and close to store your version; an empty file changes nothing.
"""


def rubric_text(r: Any, question: str) -> str:
    """The editable text form of a rubric (what ``--edit`` opens)."""
    from bot.grading.rubric import MAX_POINTS

    lines = [EDIT_HELP.format(question=" ".join(question.split()), max_points=MAX_POINTS)]
    lines += [f"{p.weight} | {p.label} | {p.text}" for p in r.points]
    return "\n".join(lines) + "\n"


def parse_rubric_text(text: str, base: Any, question: str) -> Any:
    """A rubric from JSON (a whole rubric, or ``{"points": [...]}``) or the ``weight | label | text``
    lines; raises ValueError saying what is wrong."""
    from pydantic import ValidationError

    from bot.grading.rubric import MAX_POINTS, KeyPoint, Rubric, label_for

    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc}") from exc
        raw_points = data.get("points") if isinstance(data, dict) else None
        if not isinstance(raw_points, list):
            raise ValueError('the JSON needs a "points" list')
        rows = [(str(p.get("weight", "core")), str(p.get("label", "")), str(p.get("text", ""))) for p in raw_points]
    else:
        rows = []
        for n, line in enumerate(stripped.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = [p.strip() for p in line.split("|", 2)]
            if len(parts) != 3:
                raise ValueError(f"line {n}: expected 'weight | label | text', got {line.strip()[:60]!r}")
            rows.append((parts[0], parts[1], parts[2]))
    if not rows:
        raise ValueError("no key points")
    if len(rows) > MAX_POINTS:
        raise ValueError(f"{len(rows)} key points: at most {MAX_POINTS}")
    points = []
    for n, (weight, label, body) in enumerate(rows, 1):
        weight = weight.lower()
        if weight not in ("core", "detail"):
            raise ValueError(f"point {n}: weight must be core or detail, got {weight!r}")
        if len(body.split()) < 2:
            raise ValueError(f"point {n}: the text needs a whole sentence")
        points.append(KeyPoint(text=body, label=label or label_for(body, question), weight=weight))  # type: ignore[arg-type]
    if not any(p.weight == "core" for p in points):
        raise ValueError("at least one point must be core")
    try:
        return Rubric.model_validate({**base.model_dump(), "points": [p.model_dump() for p in points]})
    except ValidationError as exc:
        raise ValueError(str(exc.errors()[0]["msg"])) from exc


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
    click.echo(f"Rubric version {r.version}, {r.compiled_by}")
    if stale:
        click.echo(
            "Note: your edit was made for an earlier version of this note, which has changed since; "
            "answers are graded against the compiled rubric below until you edit again.",
            err=True,
        )
    for i, p in enumerate(r.points, 1):
        lines = f"  (lines {p.lines[0]}–{p.lines[-1]})" if p.lines else ""
        click.echo(f"{i:>2}. [{p.weight}] {p.label} — {p.text}{lines}")


@click.command(name="rubric")
@click.argument("card_ref", metavar="CARD")
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
def rubric(card_ref: str, as_json: bool, edit: bool, source: Any, reset: bool, user: str | None) -> None:
    """Show the key points CARD is graded against (a card id, an id prefix or words of its question)."""
    from bot.grading.rubric_book import RubricBook, RubricError

    if source is not None and not edit:
        raise click.UsageError("--from goes with --edit")
    settings = get_settings()
    card = _find(known_cards(settings), card_ref)
    if not card.has_answer:
        raise BadInput("this card has no answer in your notes, so it has no rubric (the LLM grader writes its own)")
    who = history_user(settings, user)
    book = RubricBook(settings.data_dir / "rubrics")
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
