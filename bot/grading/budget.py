"""Token budget for grader prompts (tiktoken, offline BPE files)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bot.grading.tokens import get_encoding

__all__ = ["Budgeted", "TokenCounter", "fit_prompt"]

PASSAGE_TOKENS = 150  # each related passage is cut to this before anything else


class TokenCounter:
    """Counts and truncates with one tiktoken encoding (o200k_base: close enough for any model)."""

    def __init__(self, cache_dir: Path, encoding: str = "o200k_base") -> None:
        self._enc = get_encoding(cache_dir, encoding)

    def count(self, text: str) -> int:
        return len(self._enc.encode(text, disallowed_special=()))

    def truncate(self, text: str, tokens: int) -> str:
        ids = self._enc.encode(text, disallowed_special=())
        if len(ids) <= tokens:
            return text
        return self._enc.decode(ids[: max(0, tokens)]).rstrip() + " …"


@dataclass
class Budgeted:
    """The parts that go into the prompt after fitting, and what had to be cut."""

    reference: str
    passages: list[str]
    answer: str
    prompt_tokens: int
    notes: list[str] = field(default_factory=list)
    answer_trimmed: bool = False


def fit_prompt(
    *,
    reference: str,
    passages: list[str],
    answer: str,
    render: Callable[[str, list[str], str], str],
    counter: TokenCounter,
    budget: int,
) -> Budgeted:
    """Shrink the prompt to ``budget`` tokens: passages first, then the answer, then the reference.

    ``render(reference, passages, answer)`` returns the full prompt text (system + user). The
    question is never cut.
    """
    passages = [counter.truncate(p, PASSAGE_TOKENS) for p in passages]
    notes: list[str] = []
    total = counter.count(render(reference, passages, answer))
    dropped = 0
    while passages and total > budget:
        passages = passages[:-1]
        dropped += 1
        total = counter.count(render(reference, passages, answer))
    if dropped:
        notes.append(f"{dropped} related passage(s) left out to fit the prompt budget")
    trimmed = False
    original_answer, original_reference = answer, reference
    answer_tokens = counter.count(original_answer)
    keep = answer_tokens
    for _ in range(6):  # re-tokenising a cut text can shift the count by a few tokens: iterate
        if total <= budget or keep <= 50:
            break
        keep = max(50, min(keep, counter.count(answer)) - (total - budget) - 8)
        answer = counter.truncate(original_answer, keep)
        trimmed = True
        total = counter.count(render(reference, passages, answer))
    if trimmed:
        notes.append(f"your answer was cut to its first {keep} of {answer_tokens} tokens to fit the grader")
    ref_tokens = counter.count(original_reference) if original_reference else 0
    ref_keep = ref_tokens
    for _ in range(6):
        if total <= budget or not original_reference or ref_keep <= 80:
            break
        ref_keep = max(80, min(ref_keep, counter.count(reference)) - (total - budget) - 8)
        reference = counter.truncate(original_reference, ref_keep)
        total = counter.count(render(reference, passages, answer))
    if reference != original_reference:
        notes.append(f"the reference answer was cut to {ref_keep} of {ref_tokens} tokens to fit the grader")
    return Budgeted(reference, passages, answer, total, notes, trimmed)
