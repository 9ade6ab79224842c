"""Corrections teach the grader: graded examples the LLM grader sees for similar answers.

An upheld appeal (its re-grade scored higher than the grade appealed) or a re-grade after the user
edited the card's key points is kept as a :class:`CalibrationExample` — the card, its topic and
question, the answer, the corrected score and band, and why (the appeal's argument, or "rubric
edited"). The history keeps them (``calibration_examples``, per user); ``interview eval --few-shot``
builds them from a data set's training split.

Before a grade, :func:`select_examples` picks the few most similar ones — retrieved few-shot — for
the LLM grader's prompt (``prompts/grader.examples.md``), in delimited untrusted blocks and cleaned
like the answer. Similarity is lexical and cheap (no embedding call, microseconds per candidate):
the Jaccard overlap of content stems (:func:`bot.grading.keypoints.content_stems`) between the two
answers, plus half that of the two questions, and an example of the same card always ranks before
one that only shares the topic. Framework-free.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, Field

from bot.grading.keypoints import content_stems

__all__ = ["DEFAULT_EXAMPLES", "RUBRIC_EDITED", "CalibrationExample", "select_examples"]

DEFAULT_EXAMPLES = 3
RUBRIC_EDITED = "rubric edited"
MAX_EXAMPLE_CHARS = 4000  # an example's answer in the prompt is cut to this (the budget may drop it whole)

ExampleKind = Literal["appeal", "rubric_edit", "dataset"]


class CalibrationExample(BaseModel):
    """One answer with the grade it was given after a correction, and why. Candidate-written text."""

    card_id: str = ""
    topic: str = ""
    question: str
    answer: str
    score: float = Field(ge=0, le=10, description="The corrected grade.")
    band: str = Field(description="The corrected grade's band.")
    why: str = Field("", description="The appeal's argument, 'rubric edited', or a data set's reason.")
    kind: ExampleKind = "appeal"


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def select_examples(
    candidates: Iterable[CalibrationExample], *, card_id: str | None, question: str, answer: str, k: int
) -> list[CalibrationExample]:
    """The ``k`` candidates most similar to this answer (same card first, then by lexical overlap of the
    answers and the questions; ties keep the candidates' order, newest first from the history).
    Examples with the same answer text are kept once."""
    if k <= 0:
        return []
    mine, my_question = set(content_stems(answer)), set(content_stems(question))
    seen: set[str] = set()
    scored: list[tuple[float, int, CalibrationExample]] = []
    for i, ex in enumerate(candidates):
        key = " ".join(ex.answer.split()).casefold()
        if not key or key in seen:
            continue
        seen.add(key)
        same_card = 1.0 if card_id and ex.card_id == card_id else 0.0
        sim = _jaccard(mine, set(content_stems(ex.answer))) + 0.5 * _jaccard(
            my_question, set(content_stems(ex.question))
        )
        scored.append((same_card + sim / 2, -i, ex))
    scored.sort(key=lambda t: (t[0], t[1]), reverse=True)
    return [ex for _, _, ex in scored[:k]]
