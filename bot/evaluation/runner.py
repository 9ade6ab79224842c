"""Evaluate a grader against human-graded short answers (the core of ``interview eval``).

Framework-free: the CLI calls :func:`evaluate` and prints :meth:`~bot.evaluation.metrics.Metrics.as_dict`
/ :func:`~bot.evaluation.metrics.format_summary`, optionally writing
:func:`~bot.evaluation.report.write_report`.

* :func:`grade_examples` grades in batches with the grader's ``agrade_many`` (one embedding pass
  per batch for the offline grader, bounded concurrency for a model).
* :func:`evaluate` loads (:mod:`bot.evaluation.datasets`), grades and scores
  (:mod:`bot.evaluation.metrics`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.evaluation.datasets import BadLine, Example, is_binary, load_dataset, train_split_for
from bot.evaluation.metrics import Metrics, compute_metrics
from bot.grading.base import DEFAULT_CONCURRENCY, Grade, Grader, GradeRequest, band_for, ungraded
from bot.grading.calibration import CalibrationExample, select_examples

__all__ = ["EvalRun", "agrade_requests", "evaluate", "few_shot_requests", "grade_examples"]

Progress = Callable[[int, int], None]


async def agrade_requests(
    requests: Sequence[GradeRequest],
    grader: Grader,
    *,
    progress: Progress | None = None,
    batch_size: int = 64,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> list[Grade]:
    """One grade per request, in order, through ``grader.agrade_many`` in batches of ``batch_size``
    (at most ``concurrency`` model calls at once). Never raises for a failing batch: its answers
    become ``ungraded``. ``progress(done, total)`` after each batch."""
    total = len(requests)
    out: list[Grade] = []
    step = max(1, batch_size)
    for start in range(0, total, step):
        chunk = list(requests[start : start + step])
        try:
            got = await grader.agrade_many(chunk, concurrency=concurrency)
            if len(got) != len(chunk):
                raise RuntimeError(f"agrade_many returned {len(got)} grades for {len(chunk)} answers")
        except Exception as exc:
            reason = f"grader failed: {type(exc).__name__}: {exc}"
            got = [ungraded(reason, grader=grader.name, prompt_version=grader.prompt_version) for _ in chunk]
        out.extend(got)
        if progress is not None:
            progress(len(out), total)
    return out


def grade_examples(
    examples: Sequence[Example],
    grader: Grader,
    *,
    progress: Progress | None = None,
    batch_size: int = 64,
    concurrency: int = DEFAULT_CONCURRENCY,
    requests: Sequence[GradeRequest] | None = None,
) -> list[Grade]:
    """Synchronous :func:`agrade_requests` over the examples' requests (or ``requests``, one per example)."""

    def run() -> list[Grade]:
        return asyncio.run(
            agrade_requests(
                list(requests) if requests is not None else [ex.request() for ex in examples],
                grader,
                progress=progress,
                batch_size=batch_size,
                concurrency=concurrency,
            )
        )

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run()
    # Called from inside an event loop (e.g. a notebook): run the batch on a worker thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


# --------------------------------------------------------------------------- few-shot


def few_shot_requests(examples: Sequence[Example], train: Sequence[Example], k: int) -> list[GradeRequest]:
    """Each example's request with up to ``k`` graded examples: training rows of the same question
    (``question_id``), the most similar answers first (:func:`bot.grading.calibration.select_examples`),
    scored on the 0–10 scale from the human grade. The measured rows are never among them."""
    by_question: dict[str, list[CalibrationExample]] = {}
    for t in train:
        score = round(10 * t.human, 1)
        by_question.setdefault(t.question_id, []).append(
            CalibrationExample(
                card_id=t.question_id,
                question=t.question,
                answer=t.student_answer,
                score=score,
                band=band_for(score).value,
                why=f"human grade {t.score:g} of {t.score_max:g}",
                kind="dataset",
            )
        )
    out = []
    for ex in examples:
        shots = select_examples(
            by_question.get(ex.question_id, []),
            card_id=ex.question_id,
            question=ex.question,
            answer=ex.student_answer,
            k=k,
        )
        out.append(ex.request().model_copy(update={"examples": shots}))
    return out


# --------------------------------------------------------------------------- end to end


@dataclass
class EvalRun:
    examples: list[Example]
    grades: list[Grade]
    metrics: Metrics
    bad_lines: list[BadLine]
    train_examples: list[Example] = field(default_factory=list)
    train_grades: list[Grade] = field(default_factory=list)


def evaluate(
    path: str | Path,
    grader: Grader,
    *,
    split: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    train_split: str | None = "auto",
    train_limit: int = 400,
    progress: Progress | None = None,
    batch_size: int = 256,
    few_shot: int = 0,
) -> EvalRun:
    """Load, grade and score. For a binary dataset with a training split in the file (``"auto"``:
    a split whose name contains "train", same ``dataset``), a seeded sample of ``train_limit`` of its
    rows is graded too and chooses the threshold; ``train_split=None`` or ``train_limit=0`` → grouped CV.
    ``progress`` sees the evaluated rows, then the training rows.

    ``few_shot`` N > 0: each measured answer is graded with up to N graded examples drawn from the
    file's training split by question (:func:`few_shot_requests`), never from the measured split; it
    needs ``split`` naming a split other than the training one (ValueError otherwise). The rows graded
    to choose a threshold are graded without examples."""
    path = Path(path)
    start = time.perf_counter()
    examples, bad = load_dataset(path, split=split, limit=limit, seed=seed)
    requests = None
    if few_shot > 0:
        train_name = train_split_for(path, examples, split) if split else None
        if not split or not train_name:  # (train_split_for never names the measured split)
            raise ValueError(
                "--few-shot draws graded examples from the file's training split: give --split naming "
                "another split of a file that has one (a split whose name contains 'train')"
            )
        train_rows, _ = load_dataset(path, split=train_name)
        requests = few_shot_requests(examples, train_rows, few_shot)
    grades = grade_examples(examples, grader, progress=progress, batch_size=batch_size, requests=requests)
    train_ex: list[Example] = []
    train_gr: list[Grade] = []
    if is_binary(examples) and train_split and train_limit > 0:
        name = train_split_for(path, examples, split) if train_split == "auto" else train_split
        if name and name != split:
            train_ex, _ = load_dataset(path, split=name, limit=train_limit, seed=seed)
            train_ex = [ex for ex in train_ex if is_binary([ex])]
            train_gr = grade_examples(train_ex, grader, progress=progress, batch_size=batch_size)
    subsets = {ex.subset for ex in examples} - {None}
    dataset = path.stem + (f" ({next(iter(subsets))})" if len(subsets) == 1 else "")
    metrics = compute_metrics(
        examples,
        grades,
        train_examples=train_ex or None,
        train_grades=train_gr or None,
        grader=str(getattr(grader, "name", "")) + (f" (few-shot {few_shot})" if few_shot > 0 else ""),
        dataset=dataset,
        split=split,
        bad_lines=len(bad),
    )
    metrics.seconds = round(time.perf_counter() - start, 2)
    return EvalRun(examples, grades, metrics, bad, train_ex, train_gr)
