"""Rubrics distilled by the LLM, every point grounded in the note (the heuristic rubric is the fallback).

With a chat model configured, :class:`LLMRubricCompiler` asks it once per card version
(``prompts/rubric.system.md`` + ``prompts/rubric.user.md``) for 2–6 key points of the note's answer,
each with a weight, a label, the note lines it comes from and a short verbatim quote. The reply is
then checked in code, deterministically (:func:`ground_points`); a point the note does not support is
dropped:

1. **The quote is in the note.** The quote's words (lower-cased, ASCII-folded, punctuation dropped:
   :func:`bot.grading.keypoints.tokens`) must appear as a run of ≥ ``QUOTE_MIN_WORDS`` words in the
   answer's words, each word equal or a typo away (:func:`bot.grading.keypoints.fuzzy_equal`: the
   notes are typo-ridden and a model may fix a typo while quoting). It is looked for in the lines the
   point cites first, then anywhere in the answer; the point's lines become those the quote is in
   (plus the cited lines next to them), so a wrong line number costs nothing when the quote is right.
2. **The point says what those lines say.** At least ``GROUNDED_SHARE`` of the point's content stems
   (and at least two) are found, typo-tolerantly, in the cited lines. A model that adds a fact of its
   own writes words the note does not have there.
3. **A whole clause**: ≥ ``MIN_POINT_WORDS`` words, not ending on a function word; not a
   near-duplicate of a point kept before it.

Fewer than two surviving points (one for a note the heuristic itself gives a single point) and the
heuristic rubric is used, with a note saying why. Framework-free apart from the LangChain message
types: the chat model is any LangChain chat model (or anything with ``invoke``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from bot.grading.keypoints import clean_text, content_stems, fuzzy_equal, tokens
from bot.grading.prompts import Prompt, load_prompt, prompt_set_version
from bot.grading.rubric import (
    MAX_POINTS,
    MIN_POINT_WORDS,
    KeyPoint,
    Rubric,
    compile_rubric,
    dangling,
    label_for,
    near_duplicate,
)
from bot.knowledge.cards import Card
from bot.knowledge.text import strip_code_fence

__all__ = [
    "GROUNDED_SHARE",
    "QUOTE_MIN_WORDS",
    "LLMRubricCompiler",
    "RubricReply",
    "answer_lines",
    "ground_points",
    "parse_rubric_reply",
]

QUOTE_MIN_WORDS = 3
GROUNDED_SHARE = 0.5
MAX_NOTE_LINES = 80  # longer answers are sent (and grounded) up to this line
MAX_NOTE_CHARS = 6000


class ReplyPoint(BaseModel):
    text: str = Field(min_length=1, max_length=600)
    label: str = Field("", max_length=120)
    weight: Literal["core", "detail"] = "core"
    lines: list[int] = Field(default_factory=list, max_length=60)
    quote: str = Field("", max_length=600)


class RubricReply(BaseModel):
    """What the model must return; reasoning first."""

    reasoning: str = Field("", max_length=2000)
    gist: str = Field("", max_length=400)
    points: list[ReplyPoint] = Field(min_length=1, max_length=12)


class BadRubricReply(ValueError):
    """The model's reply was not valid JSON or did not match :class:`RubricReply`."""


def parse_rubric_reply(text: str) -> RubricReply:
    text = strip_code_fence(text).strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        start, end = text.find("{"), text.rfind("}")
        try:
            data = json.loads(text[start : end + 1]) if 0 <= start < end else None
        except json.JSONDecodeError:
            data = None
        if data is None:
            raise BadRubricReply("reply is not valid JSON") from None
    try:
        return RubricReply.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BadRubricReply(f"reply does not match the schema ({where}: {first['msg']})") from exc


def answer_lines(card: Card) -> list[tuple[int, str]]:
    """The answer's non-empty lines with their line numbers in the notes file (the line after the
    question's, as the heuristic numbers them), cleaned; at most ``MAX_NOTE_LINES`` / ``MAX_NOTE_CHARS``."""
    first = card.source.line_start + (1 if card.source.line_end > card.source.line_start else 0)
    out: list[tuple[int, str]] = []
    size = 0
    for i, raw in enumerate(card.answer.split("\n")):
        line = clean_text(raw)
        if not line:
            continue
        if len(out) >= MAX_NOTE_LINES or size + len(line) > MAX_NOTE_CHARS:
            break
        out.append((min(first + i, max(card.source.line_end, first)), line))
        size += len(line)
    return out


# --- grounding -------------------------------------------------------------------------------------


def _find_run(needle: list[str], hay: list[str]) -> int:
    """Start of ``needle`` as a run in ``hay`` (each word equal or a typo away), -1 if absent."""
    n = len(needle)
    for start in range(0, len(hay) - n + 1):
        if all(w == h or fuzzy_equal(w, h) for w, h in zip(needle, hay[start : start + n], strict=True)):
            return start
    return -1


def _quote_lines(quote: list[str], lines: list[tuple[int, list[str]]]) -> list[int] | None:
    """The line numbers the quote's words span in ``lines`` (joined across hard wraps), or None."""
    words: list[str] = []
    owner: list[int] = []
    for number, toks in lines:
        words += toks
        owner += [number] * len(toks)
    start = _find_run(quote, words)
    if start < 0:
        return None
    return sorted(set(owner[start : start + len(quote)]))


def _supported_share(point: str, note_stems: set[str]) -> tuple[int, int]:
    """(content stems of ``point`` found in ``note_stems``, typo-tolerantly; all of its content stems)."""
    stems = set(content_stems(point))
    found = sum(1 for s in stems if s in note_stems or any(fuzzy_equal(s, n) for n in note_stems))
    return found, len(stems)


def _grounded_lines(point: ReplyPoint, note: list[tuple[int, list[str]]]) -> tuple[list[int], str]:
    """The note lines supporting ``point`` and "" — or [] and why it is not grounded."""
    quote = tokens(point.quote)
    if len(quote) < QUOTE_MIN_WORDS:
        return [], f"its quote has fewer than {QUOTE_MIN_WORDS} words"
    numbers = [n for n, _ in note]
    cited = sorted({n for n in point.lines if n in numbers})
    found = _quote_lines(quote, [(n, t) for n, t in note if n in cited]) if cited else None
    if found is None:
        found = _quote_lines(quote, note)
        if found is None:
            return [], "its quote is not in the note"
        # the quote is elsewhere: its lines, plus cited lines right next to them
        near = {n for n in cited if any(abs(numbers.index(n) - numbers.index(f)) <= 1 for f in found)}
        cited = sorted({*found, *near})
    region = {s for n, toks in note if n in cited for s in content_stems(toks)}
    hit, total = _supported_share(point.text, region)
    if total == 0 or hit < min(2, total) or hit < GROUNDED_SHARE * total:
        return [], f"only {hit} of its {total} content words are in the lines it cites"
    return cited, ""


def ground_points(card: Card, reply: RubricReply) -> tuple[list[KeyPoint], list[str]]:
    """The reply's points the note supports, as key points (see the module docstring), and a reason
    for each point dropped."""
    note = [(n, tokens(line)) for n, line in answer_lines(card)]
    kept: list[KeyPoint] = []
    dropped: list[str] = []
    taken: set[str] = set()
    for i, point in enumerate(reply.points, 1):
        text = " ".join(point.text.split())
        if len(text.split()) < MIN_POINT_WORDS or dangling(text):
            dropped.append(f"point {i}: not a whole clause of {MIN_POINT_WORDS} words or more")
            continue
        lines, why = _grounded_lines(point, note)
        if why:
            dropped.append(f"point {i}: {why}")
            continue
        if any(near_duplicate(text, k.text) for k in kept):
            dropped.append(f"point {i}: repeats an earlier point")
            continue
        if len(kept) >= MAX_POINTS:
            dropped.append(f"point {i}: more than {MAX_POINTS} points")
            continue
        label = " ".join(point.label.split())
        if not label or len(label) > 80 or len(label.split()) > 6 or label.lower() in taken:
            label = label_for(text, card.display_question)
        taken.add(label.lower())
        kept.append(KeyPoint(text=text, label=label[:80], weight=point.weight, lines=lines))
    if kept and not any(p.weight == "core" for p in kept):
        kept[0] = kept[0].model_copy(update={"weight": "core"})
    return kept, dropped


# --- the compiler ----------------------------------------------------------------------------------


class LLMRubricCompiler:
    """Distils a card's rubric with a chat model; :meth:`compile` raises on a failed call or a bad
    reply (the :class:`~bot.grading.rubric_book.RubricBook` then uses the heuristic rubric)."""

    def __init__(self, chat_model: Any, *, model_name: str, prompts_dir: Path | None = None) -> None:
        self._chat = chat_model
        self._system: Prompt = load_prompt("rubric.system", prompts_dir)
        self._user: Prompt = load_prompt("rubric.user", prompts_dir)
        self.model_name = model_name
        # What a stored LLM rubric is keyed by (with the card's hash): a new model or an edited prompt rebuilds.
        self.version = f"llm:{model_name}:{prompt_set_version('rubric', [self._system, self._user])}"

    def messages(self, card: Card) -> list[Any]:
        from langchain_core.messages import HumanMessage, SystemMessage

        note = "\n".join(f"{n}: {line}" for n, line in answer_lines(card))
        return [
            SystemMessage(self._system.format()),
            HumanMessage(self._user.format(question=" ".join(card.display_question.split()), note=note)),
        ]

    def compile(self, card: Card, heuristic: Rubric | None = None) -> Rubric:
        """The card's LLM rubric, grounded; the heuristic rubric (with ``compile_note`` saying why) when
        too few points survive. Raises when the model cannot be reached or its reply is unusable."""
        reply = self._chat.invoke(self.messages(card))
        content = reply.content
        if isinstance(content, list):
            content = "".join(p if isinstance(p, str) else str(p.get("text", "")) for p in content)
        parsed = parse_rubric_reply(str(content))
        points, dropped = ground_points(card, parsed)
        base = heuristic or compile_rubric(card)
        needed = 1 if len(base.points) == 1 else 2
        if len(points) < needed:
            why = f"the LLM rubric had {len(points)} point(s) grounded in the note ({'; '.join(dropped)})"
            return base.model_copy(update={"compile_note": why[:500]})
        gist = " ".join(parsed.gist.split())[:300] or next(p.text for p in points if p.weight == "core")
        note = f"{len(dropped)} ungrounded point(s) dropped: {'; '.join(dropped)}" if dropped else ""
        return Rubric(
            card_id=card.id,
            card_hash=card.content_hash(),
            gist=gist,
            points=points,
            compiled_by="llm",
            compile_note=note[:500],
        )
