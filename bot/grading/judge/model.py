"""The offline judge at run time: a small trained cross-encoder, onnxruntime only.

It reads *(key point, answer)* pairs and returns, per pair, the probabilities of four relations —
the answer ``entails`` the point, states it ``partial``-ly, ``contradicts`` it, or leaves it
``missing`` — and a 0–1 score. The model, its tokenizer and its card live beside this file
(``judge.onnx``, ``tokenizer.json``, ``judge.json``, ``MODEL_CARD.md``); they are produced by
``make train-grader`` (:mod:`bot.install.judge_train`). Loading is lazy: nothing happens at import.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    import onnxruntime
    from tokenizers import Tokenizer

__all__ = [
    "CLASSES",
    "JUDGE_DIR",
    "Judge",
    "JudgeMissing",
    "PairJudge",
    "Verdicts",
    "encode_pairs",
    "load_pair_tokenizer",
]

CLASSES = ("entails", "partial", "contradicts", "missing")
MAX_PAIR_TOKENS = 192
JUDGE_DIR = Path(__file__).resolve().parent
JUDGE_FILE = "judge.onnx"
META_FILE = "judge.json"
TOKENIZER_FILE = "tokenizer.json"
CLS_ID, SEP_ID = 101, 102


class JudgeMissing(RuntimeError):
    """The judge's files are not there (a source checkout without the committed model)."""


def load_pair_tokenizer(path: Path) -> Tokenizer:
    """The WordPiece tokenizer without the padding and truncation a sentence-transformers file carries
    (:func:`encode_pairs` cuts pairs itself)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def encode_pairs(
    tokenizer: Tokenizer, pairs: Sequence[tuple[str, str]], max_tokens: int = MAX_PAIR_TOKENS
) -> list[tuple[list[int], list[int]]]:
    """``[CLS] a [SEP] b [SEP]`` token ids and segment ids, the longer side cut first to ``max_tokens``."""
    if not pairs:
        return []
    firsts = tokenizer.encode_batch([a for a, _ in pairs], add_special_tokens=False)
    seconds = tokenizer.encode_batch([b for _, b in pairs], add_special_tokens=False)
    out: list[tuple[list[int], list[int]]] = []
    room = max_tokens - 3
    for fa, fb in zip(firsts, seconds, strict=True):
        a, b = list(fa.ids), list(fb.ids)
        while len(a) + len(b) > room:
            if len(a) >= len(b):
                a.pop()
            else:
                b.pop()
        ids = [CLS_ID, *a, SEP_ID, *b, SEP_ID]
        out.append((ids, [0] * (len(a) + 2) + [1] * (len(b) + 1)))
    return out


@dataclass(frozen=True)
class Verdicts:
    """Per pair: ``probs`` [n, 4] in :data:`CLASSES` order and ``score`` [n] in 0–1. ``points``: how many
    of the first rows are key points (the grader's bookkeeping; 0 for a plain batch)."""

    probs: np.ndarray
    score: np.ndarray
    points: int = 0

    def of(self, name: str) -> np.ndarray:
        return self.probs[:, CLASSES.index(name)]


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


class PairJudge(Protocol):
    """What the offline grader needs of a judge (the trained one, or a test's fake)."""

    def judge(self, pairs: Sequence[tuple[str, str]]) -> Verdicts: ...


class Judge:
    """Lazy onnxruntime session over the committed model; thread-safe; each pair judged on its own."""

    def __init__(self, model_dir: Path | None = None, *, threads: int = 0) -> None:
        self.model_dir = model_dir or JUDGE_DIR
        self._threads = threads or max(1, min(2, os.cpu_count() or 1))
        self._session: onnxruntime.InferenceSession | None = None
        self._tokenizer: Tokenizer | None = None
        self._meta: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return all((self.model_dir / f).is_file() for f in (JUDGE_FILE, META_FILE, TOKENIZER_FILE))

    @property
    def version(self) -> str:
        """The model's sha256 prefix (part of the offline grader's prompt version)."""
        self._load()
        return str(self._meta.get("sha256", ""))[:12]

    def _load(self) -> tuple[onnxruntime.InferenceSession, Tokenizer]:
        with self._lock:
            if self._session is None or self._tokenizer is None:
                if not self.available:
                    raise JudgeMissing(f"the offline judge model is missing from {self.model_dir} (make train-grader)")
                import onnxruntime

                self._meta = json.loads((self.model_dir / META_FILE).read_text(encoding="utf-8"))
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = self._threads
                options.inter_op_num_threads = 1
                options.enable_cpu_mem_arena = False  # varying shapes: an arena only grows
                self._session = onnxruntime.InferenceSession(
                    str(self.model_dir / JUDGE_FILE), options, providers=["CPUExecutionProvider"]
                )
                self._tokenizer = load_pair_tokenizer(self.model_dir / TOKENIZER_FILE)
            return self._session, self._tokenizer

    def judge(self, pairs: Sequence[tuple[str, str]]) -> Verdicts:
        """Verdicts for each (point or reference, answer) pair, in order."""
        session, tokenizer = self._load()
        n = len(pairs)
        probs = np.zeros((n, len(CLASSES)), dtype=np.float32)
        score = np.zeros(n, dtype=np.float32)
        if not n:
            return Verdicts(probs, score)
        encoded = encode_pairs(tokenizer, pairs, int(self._meta.get("max_pair_tokens", MAX_PAIR_TOKENS)))
        # One pair per run: dynamic int8 quantisation scales each run's activations by that run's range, so
        # a batch (or its padding) would change a pair's verdict. Alone, the same pair always reads the same.
        for i, (tok, typ) in enumerate(encoded):
            ids = np.asarray([tok], dtype=np.int64)
            logits, score_logit = session.run(
                None,
                {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.asarray([typ], np.int64)},
            )
            probs[i] = _softmax(np.asarray(logits, dtype=np.float32))[0]
            score[i] = 1.0 / (1.0 + np.exp(-float(np.asarray(score_logit).reshape(-1)[0])))
        return Verdicts(probs, score)
