"""The offline judge: a small cross-encoder trained by ``make train-grader``, run with onnxruntime."""

from bot.grading.judge.model import (
    CLASSES,
    JUDGE_DIR,
    Judge,
    JudgeMissing,
    PairJudge,
    Verdicts,
    encode_pairs,
    load_pair_tokenizer,
)

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
