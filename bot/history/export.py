"""Export a user's history: a Markdown report, a CSV of raw attempts, an Anki deck of weak cards.

Only the user's own rows are passed in; nothing here reads settings, so no secret can leak into
an export. Deck and model ids are derived from names, so re-exporting updates the same deck.
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bot.history.progress import Stats, stats_markdown
from bot.knowledge.cards import Card

if TYPE_CHECKING:
    from bot.history.records import SessionInfo, StoredAttempt

__all__ = ["CSV_COLUMNS", "anki_ids", "export_anki", "export_csv", "export_markdown", "weak_cards"]

CSV_COLUMNS = [
    "attempt_id",
    "user",
    "session_id",
    "card_id",
    "topic",
    "kind",
    "question",
    "answer",
    "hints_used",
    "time_taken_s",
    "started_at",
    "answered_at",
    "status",
    "score",
    "band",
    "grader",
    "prompt_version",
    "key_points",
    "hit",
    "missed",
    "contradicted",
    "misconceptions",
    "feedback",
    "reference_issue",
    "fallback_reason",
    "ungraded_reason",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "grade_json",
]


def _stable_id(*parts: str) -> int:
    """An id in genanki's recommended range [2**30, 2**31), the same for the same names."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return (1 << 30) + int.from_bytes(digest[:4], "big") % (1 << 30)


def anki_ids(user: str) -> tuple[int, int]:
    """(deck id, model id): the deck is per user, the note type is shared."""
    return _stable_id("interview-coach", "deck", user), _stable_id("interview-coach", "model", "v1")


def _row(attempt: StoredAttempt, user: str) -> dict[str, Any]:
    g = attempt.grade
    claims = g.claims if g is not None else []
    by_status: dict[str, list[str]] = defaultdict(list)
    for c in claims:
        by_status[str(c.status)].append(c.point)
    usage = g.usage if g is not None else None
    return {
        "attempt_id": attempt.id,
        "user": user,
        "session_id": attempt.session_id,
        "card_id": attempt.card_id,
        "topic": attempt.topic,
        "kind": str(attempt.kind),
        "question": attempt.prompt,
        "answer": attempt.answer,
        "hints_used": attempt.hints_used,
        "time_taken_s": round(attempt.time_taken_s, 3),
        "started_at": attempt.started_at.isoformat(),
        "answered_at": attempt.answered_at.isoformat(),
        "status": g.status if g is not None else "",
        "score": g.score if g is not None and g.score is not None else "",
        "band": str(g.band) if g is not None and g.band is not None else "",
        "grader": g.grader if g is not None else "",
        "prompt_version": g.prompt_version if g is not None else "",
        "key_points": len(claims),
        "hit": " | ".join(by_status["hit"]),
        "missed": " | ".join(by_status["missed"]),
        "contradicted": " | ".join(by_status["contradicted"]),
        "misconceptions": " | ".join(g.misconceptions) if g is not None else "",
        "feedback": g.feedback if g is not None else "",
        "reference_issue": g.reference_issue if g is not None else "",
        "fallback_reason": g.fallback_reason if g is not None else "",
        "ungraded_reason": g.ungraded_reason if g is not None else "",
        "prompt_tokens": usage.prompt_tokens if usage is not None else "",
        "completion_tokens": usage.completion_tokens if usage is not None else "",
        "cost_usd": usage.cost_usd if usage is not None and usage.cost_usd is not None else "",
        "grade_json": json.dumps(g.model_dump(mode="json"), ensure_ascii=False, sort_keys=True) if g else "",
    }


def export_csv(attempts: Sequence[StoredAttempt], out: TextIO, *, user: str) -> int:
    """One row per attempt, grade fields flattened plus the full grade as JSON. Returns the row count."""
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for attempt in attempts:
        writer.writerow(_row(attempt, user))
    return len(attempts)


def _quote(text: str) -> str:
    lines = text.strip().splitlines() or [""]
    return "\n".join(f"> {line}" if line.strip() else ">" for line in lines)


def export_markdown(stats: Stats, sessions: Sequence[SessionInfo], attempts: Sequence[StoredAttempt]) -> str:
    """A readable history report: progress summary, then every session's answers and grades."""
    out = [
        f"# Interview practice: {stats.user}",
        "",
        f"Generated {stats.generated_at:%Y-%m-%d %H:%M} UTC.",
        "",
        "## Progress",
        "",
        stats_markdown(stats),
    ]
    by_session: dict[str, list[StoredAttempt]] = defaultdict(list)
    for a in attempts:
        by_session[a.session_id].append(a)
    if sessions:
        out += ["## Sessions", ""]
    for number, session in enumerate(sessions, 1):
        tries = by_session.get(session.id, [])
        status = "finished" if session.finished_at else "unfinished"
        out += [
            f"### {number}. {session.started_at:%Y-%m-%d %H:%M} · {session.mode} · "
            f"{len(session.finished_card_ids)}/{len(session.card_ids)} questions ({status})",
            "",
        ]
        for a in tries:
            g = a.grade
            if g is None:
                verdict = "skipped" if str(a.kind) == "skip" else "not graded"
            elif g.graded:
                verdict = f"{g.score:.1f}/10 ({g.band})"
            else:
                verdict = f"ungraded: {g.ungraded_reason}"
            label = "" if str(a.kind) == "answer" else f" ({a.kind})"
            hints = f" · {a.hints_used} hint(s)" if a.hints_used else ""
            out += [f"**{' '.join(a.prompt.split())}**{label} · {verdict}{hints}", ""]
            if a.answer.strip():
                out += [_quote(a.answer), ""]
            if g is not None:
                missed = [c.point for c in g.claims if str(c.status) != "hit"]
                if missed:
                    out += ["Missed or wrong: " + "; ".join(missed), ""]
                if g.feedback:
                    out += [g.feedback.strip(), ""]
    return "\n".join(out).rstrip() + "\n"


def weak_cards(stats: Stats, cards: Sequence[Card]) -> list[Card]:
    """The weak practised cards (weakest first) that still exist in the notes."""
    by_id = {c.id: c for c in cards}
    return [by_id[w.card_id] for w in stats.cards if w.weak and w.card_id in by_id]


def _html(text: str) -> str:
    return html.escape(text.strip()).replace("\n", "<br>")


def _tag(text: str) -> str:
    return re.sub(r"[^\w-]+", "_", text.strip()).strip("_") or "untagged"


def export_anki(
    cards: Sequence[Card], path: str | Path, *, user: str, now: datetime, leeches: frozenset[str] = frozenset()
) -> int:
    """Write an Anki deck (.apkg) of ``cards``: the question in front, your notes on the back."""
    import genanki

    deck_id, model_id = anki_ids(user)
    model = genanki.Model(
        model_id,
        "Interview coach card",
        fields=[{"name": "Question"}, {"name": "Answer"}, {"name": "Topic"}, {"name": "Source"}],
        templates=[
            {
                "name": "Card 1",
                "qfmt": "<div class=topic>{{Topic}}</div>{{Question}}",
                "afmt": "{{FrontSide}}<hr id=answer>{{Answer}}<div class=source>{{Source}}</div>",
            }
        ],
        css=".card{font-family:sans-serif;font-size:20px;text-align:left}.topic,.source{color:#888;font-size:14px}",
    )
    deck = genanki.Deck(deck_id, f"Interview coach::{user}::weak cards")
    for card in cards:
        back = card.answer if card.answer.strip() else card.question
        tags = [_tag(card.topic)] + (["leech"] if card.id in leeches else [])
        deck.add_note(
            genanki.Note(
                model=model,
                fields=[
                    _html(card.display_question),
                    _html(back),
                    _html(card.topic),
                    _html(card.source.describe()),
                ],
                guid=genanki.guid_for("interview-coach", card.id),
                tags=tags,
            )
        )
    genanki.Package(deck).write_to_file(str(path), timestamp=now.timestamp())
    return len(cards)
