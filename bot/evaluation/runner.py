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
from bot.grading.base import DEFAULT_CONCURRENCY, Grade, Grader, GradeRequest, ungraded

__all__ = ["EvalRun", "agrade_requests", "evaluate", "grade_examples"]

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
) -> list[Grade]:
    """Synchronous :func:`agrade_requests` over the examples' requests."""

    def run() -> list[Grade]:
        return asyncio.run(
            agrade_requests(
                [ex.request() for ex in examples],
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
) -> EvalRun:
    """Load, grade and score. For a binary dataset with a training split in the file (``"auto"``:
    a split whose name contains "train", same ``dataset``), a seeded sample of ``train_limit`` of its
    rows is graded too and chooses the threshold; ``train_split=None`` or ``train_limit=0`` → grouped CV.
    ``progress`` sees the evaluated rows, then the training rows."""
    path = Path(path)
    start = time.perf_counter()
    examples, bad = load_dataset(path, split=split, limit=limit, seed=seed)
    grades = grade_examples(examples, grader, progress=progress, batch_size=batch_size)
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
        grader=str(getattr(grader, "name", "")),
        dataset=dataset,
        split=split,
        bad_lines=len(bad),
    )
    metrics.seconds = round(time.perf_counter() - start, 2)
    return EvalRun(examples, grades, metrics, bad, train_ex, train_gr)
