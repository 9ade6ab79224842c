"""Lexical helpers of the offline grader: typo-tolerant term lookup, weighted recall, word order, short
quotes. Pure functions over the stems of :mod:`bot.grading.keypoints`."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from bot.grading.keypoints import fuzzy_equal, stem, stopwords, tokens

__all__ = ["demoted_text", "has_term", "matcher", "order_kept", "positions", "short", "weighted_recall"]


def matcher(stems: frozenset[str]) -> dict[str, list[str]]:
    index: dict[str, list[str]] = {}
    for s in stems:
        index.setdefault(s[:1], []).append(s)
    return index


def has_term(term: str, stems: frozenset[str], index: dict[str, list[str]]) -> bool:
    if term in stems:
        return True
    return any(fuzzy_equal(term, s) for s in index.get(term[:1], ()))


def weighted_recall(terms: dict[str, float], stems: frozenset[str], index: dict[str, list[str]]) -> float:
    total = sum(terms.values())
    if total <= 0:
        return 0.0
    return sum(w for t, w in terms.items() if has_term(t, stems, index)) / total


def positions(stems: Sequence[str]) -> dict[str, list[int]]:
    pos: dict[str, list[int]] = {}
    for i, s in enumerate(stems):
        pos.setdefault(s, []).append(i)
    return pos


def order_kept(answer_stems: Sequence[str], ref_pos: dict[str, list[int]], window: int = 3) -> tuple[int, float]:
    """Consecutive answer content words both found in the reference: how many, and the share that also sit
    close together and in the same order there. Shuffled keyword lists keep almost none."""
    pairs = kept = 0
    for a, b in itertools.pairwise(answer_stems):
        pa, pb = ref_pos.get(a), ref_pos.get(b)
        if not pa or not pb or a == b:
            continue
        pairs += 1
        if any(0 < j - i <= window for i in pa for j in pb):
            kept += 1
    return pairs, (kept / pairs if pairs else 1.0)


def demoted_text(text: str, question: str) -> str:
    """The content words of ``text`` that are not in the question (for a question-demoted embedding)."""
    q = {stem(t) for t in tokens(question)}
    stop = stopwords()
    words = [t for t in tokens(text) if t not in stop and stem(t) not in q]
    return " ".join(words[:200]) or " "


def short(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"
