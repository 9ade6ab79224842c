"""Run a grader as a LangSmith experiment over a human-graded dataset (``interview eval --langsmith``).

:func:`run_langsmith_experiment`

1. checks the endpoint answers (``GET {endpoint}/info``, ~2 s) and raises
   :class:`LangSmithUnavailable` otherwise — nothing is created, no background thread is started;
2. creates the dataset by name or reuses it. Example ids are derived from a hash of
   question + reference + student answer + human score, so re-running adds only missing rows
   and never duplicates one;
3. runs ``langsmith.aevaluate`` with our grader as the target (one event loop, bounded
   concurrency), per-example evaluators ``absolute_error`` and ``within_one_band`` and summary
   evaluators ``pearson`` and ``qwk`` (the same functions ``interview eval`` uses);
4. flushes pending uploads with a timeout, so the process exits promptly even if the
   endpoint goes away mid-run.

Metadata is built from non-secret fields only (grader name, prompt version).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, cast

from bot.evaluation.datasets import Example
from bot.evaluation.metrics import pearson, quadratic_weighted_kappa
from bot.grading.base import BAND_FLOORS, Band, Grade, Grader, GradeRequest, band_for
from bot.grading.pipeline import tracing

if TYPE_CHECKING:
    import langsmith

__all__ = [
    "ExperimentSummary",
    "LangSmithUnavailable",
    "example_id",
    "probe_endpoint",
    "run_langsmith_experiment",
]

PROBE_TIMEOUT = 2.0
FLUSH_TIMEOUT = 10.0
_ID_NAMESPACE = uuid.UUID("6f1c3a52-2d0e-4f5e-9a57-0c1f6b9e8a11")
# Bands in order from worst to best, for the within-one-band check.
_BAND_ORDER: tuple[Band, ...] = tuple(band for _, band in reversed(BAND_FLOORS))


class LangSmithUnavailable(RuntimeError):
    """The LangSmith endpoint could not be reached or refused the request."""


@dataclass(frozen=True)
class ExperimentSummary:
    experiment_name: str
    experiment_id: str | None
    dataset_name: str
    dataset_id: str
    n: int
    graded: int
    examples_created: int
    metrics: dict[str, float | None] = field(default_factory=dict)
    url: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- helpers


def _endpoint(client: langsmith.Client | None) -> str:
    return str(client.api_url) if client is not None else tracing.endpoint()


def _hint() -> str:
    return "check LANGSMITH_ENDPOINT (the API URL) and LANGSMITH_API_KEY, or run `interview eval` without LangSmith"


def probe_endpoint(endpoint: str, *, timeout: float = PROBE_TIMEOUT) -> None:
    """``GET {endpoint}/info`` within ``timeout`` seconds; raises :class:`LangSmithUnavailable`."""
    problem = tracing.probe_endpoint(endpoint, timeout=timeout)
    if problem.startswith("HTTP "):
        raise LangSmithUnavailable(f"LangSmith at {endpoint} answered {problem}; {_hint()}")
    if problem:
        raise LangSmithUnavailable(f"LangSmith is unreachable at {endpoint} ({problem}); {_hint()}")


def example_id(example: Example) -> uuid.UUID:
    """Stable id of one example: the same row always maps to the same LangSmith example."""
    key = json.dumps(
        [example.question, example.reference_answer, example.student_answer, example.score, example.score_max],
        ensure_ascii=False,
    )
    return uuid.uuid5(_ID_NAMESPACE, hashlib.sha256(key.encode("utf-8")).hexdigest())


def _inputs(example: Example) -> dict[str, Any]:
    return {
        "question": example.question,
        "reference_answer": example.reference_answer,
        "student_answer": example.student_answer,
        "question_id": example.question_id,
    }


def _outputs(example: Example) -> dict[str, Any]:
    return {"score": example.human, "score_max": example.score_max, "raw_score": example.score}


def _ensure_dataset(
    client: langsmith.Client, examples: Sequence[Example], dataset_name: str
) -> tuple[str, int, list[uuid.UUID]]:
    """(dataset id, examples created now, ids of this run's examples in order)."""
    from langsmith.utils import LangSmithNotFoundError

    try:
        dataset = client.read_dataset(dataset_name=dataset_name)
    except LangSmithNotFoundError:
        dataset = client.create_dataset(
            dataset_name,
            description="Human-graded short answers for the mock-interview grader.",
            metadata={"source": "interview-coach"},
        )
    ids: list[uuid.UUID] = []
    unique: dict[uuid.UUID, Example] = {}
    for ex in examples:
        eid = example_id(ex)
        ids.append(eid)
        unique.setdefault(eid, ex)
    existing = {e.id for e in client.list_examples(dataset_id=dataset.id)}
    missing = [(eid, ex) for eid, ex in unique.items() if eid not in existing]
    if missing:
        client.create_examples(
            dataset_id=dataset.id,
            examples=[
                {
                    "id": eid,
                    "inputs": _inputs(ex),
                    "reference_outputs": _outputs(ex),
                    "metadata": {"question_id": ex.question_id, **({"split": ex.split} if ex.split else {})},
                }
                for eid, ex in missing
            ],
        )
    return str(dataset.id), len(missing), ids


def _prediction(outputs: Mapping[str, Any] | None) -> float | None:
    value = (outputs or {}).get("score")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _reference(reference_outputs: Mapping[str, Any] | None) -> float | None:
    value = (reference_outputs or {}).get("score")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# --------------------------------------------------------------------------- evaluators


def absolute_error(outputs: dict[str, Any], reference_outputs: dict[str, Any]) -> dict[str, Any]:
    """|predicted − human| on the 0–1 scale; no score for an ungraded answer."""
    pred, human = _prediction(outputs), _reference(reference_outputs)
    if pred is None or human is None:
        return {"key": "absolute_error", "score": None, "comment": "ungraded"}
    return {"key": "absolute_error", "score": round(abs(pred - human), 6)}


def within_one_band(outputs: dict[str, Any], reference_outputs: dict[str, Any]) -> dict[str, Any]:
    """1 when the predicted band is at most one band away from the human score's band."""
    pred, human = _prediction(outputs), _reference(reference_outputs)
    if pred is None or human is None:
        return {"key": "within_one_band", "score": None, "comment": "ungraded"}
    p, h = _BAND_ORDER.index(band_for(10 * pred)), _BAND_ORDER.index(band_for(10 * human))
    return {"key": "within_one_band", "score": int(abs(p - h) <= 1), "comment": f"{_BAND_ORDER[h]} → {_BAND_ORDER[p]}"}


def _pairs(
    outputs: Sequence[Mapping[str, Any]], reference_outputs: Sequence[Mapping[str, Any]]
) -> tuple[list[float], list[float]]:
    human: list[float] = []
    pred: list[float] = []
    for out, ref in zip(outputs, reference_outputs, strict=False):
        p, h = _prediction(out), _reference(ref)
        if p is not None and h is not None:
            human.append(h)
            pred.append(p)
    return human, pred


def pearson_summary(outputs: list[dict[str, Any]], reference_outputs: list[dict[str, Any]]) -> dict[str, Any]:
    human, pred = _pairs(outputs, reference_outputs)
    return {"key": "pearson", "score": pearson(human, pred)}


def qwk_summary(outputs: list[dict[str, Any]], reference_outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """QWK with predictions snapped to the human score levels present (as ``interview eval`` does)."""
    human, pred = _pairs(outputs, reference_outputs)
    return {"key": "qwk", "score": quadratic_weighted_kappa(human, pred, sorted(set(human))) if human else None}


pearson_summary.__name__ = "pearson"
qwk_summary.__name__ = "qwk"


# --------------------------------------------------------------------------- the experiment


def _grade_outputs(grade: Grade) -> dict[str, Any]:
    return {
        "score": None if grade.score is None else grade.score / 10,
        "band": None if grade.band is None else str(grade.band),
        "grader": grade.grader,
        "status": grade.status,
        "ungraded_reason": grade.ungraded_reason,
    }


def _make_client() -> langsmith.Client:
    import langsmith

    return langsmith.Client(timeout_ms=(int(PROBE_TIMEOUT * 1000), 30_000))


def run_langsmith_experiment(
    examples: Sequence[Example],
    grader: Grader,
    *,
    dataset_name: str,
    experiment_prefix: str,
    client: langsmith.Client | None = None,
    max_concurrency: int = 4,
    probe_timeout: float = PROBE_TIMEOUT,
    flush_timeout: float = FLUSH_TIMEOUT,
) -> ExperimentSummary:
    """Grade ``examples`` as a LangSmith experiment; see the module docstring.

    Raises :class:`LangSmithUnavailable` (within about ``probe_timeout`` seconds when the endpoint
    is down) and ``ValueError`` for an empty example list. Must not be called from a running loop.
    """
    if not examples:
        raise ValueError("no examples to evaluate")
    endpoint = _endpoint(client)
    probe_endpoint(endpoint, timeout=probe_timeout)

    from langsmith import aevaluate
    from langsmith.utils import LangSmithError

    own_client = client is None
    ls_client = client if client is not None else _make_client()
    grader_name, prompt_version = grader.name, grader.prompt_version

    async def target(inputs: dict[str, Any]) -> dict[str, Any]:
        request = GradeRequest(
            question=str(inputs.get("question", "")),
            reference=str(inputs.get("reference_answer", "")),
            answer=str(inputs.get("student_answer", "")),
            card_id=str(inputs.get("question_id") or "") or None,
        )
        grade: Grade = await grader.agrade(request)
        return _grade_outputs(grade)

    try:
        dataset_id, created, ids = _ensure_dataset(ls_client, examples, dataset_name)
        wanted = set(ids)
        data = [e for e in ls_client.list_examples(dataset_id=dataset_id) if e.id in wanted]

        async def _run() -> Any:
            results = await aevaluate(
                target,
                data=data,
                evaluators=[absolute_error, within_one_band],
                summary_evaluators=cast(Any, [pearson_summary, qwk_summary]),
                experiment_prefix=experiment_prefix,
                metadata={"grader": grader_name, "prompt_version": prompt_version, "n_examples": len(data)},
                max_concurrency=max_concurrency,
                client=ls_client,
            )
            rows = [row async for row in results]
            return results, rows

        results, rows = asyncio.run(_run())
    except LangSmithError as exc:
        raise LangSmithUnavailable(f"LangSmith at {endpoint} failed: {exc}; {_hint()}") from exc
    except OSError as exc:
        raise LangSmithUnavailable(f"LangSmith at {endpoint} failed: {exc!r}; {_hint()}") from exc
    finally:
        with contextlib.suppress(Exception):  # bounded: queued uploads must not hold the process at exit
            ls_client.flush(timeout=flush_timeout)
        if own_client:
            ls_client.close(timeout=0)

    return _summary(results, rows, dataset_name=dataset_name, dataset_id=dataset_id, created=created)


def _summary(results: Any, rows: list[Any], *, dataset_name: str, dataset_id: str, created: int) -> ExperimentSummary:
    """The experiment's figures, from the rows ``aevaluate`` returned."""
    outputs = [dict(getattr(r["run"], "outputs", None) or {}) for r in rows]
    references = [dict(r["example"].outputs or {}) for r in rows]
    metrics: dict[str, float | None] = {
        "pearson": pearson_summary(outputs, references)["score"],
        "qwk": qwk_summary(outputs, references)["score"],
    }
    errors = [r["evaluation_results"]["results"] for r in rows]
    abs_errors = [e.score for batch in errors for e in batch if e.key == "absolute_error" and e.score is not None]
    within = [e.score for batch in errors for e in batch if e.key == "within_one_band" and e.score is not None]
    metrics["mae"] = sum(float(v) for v in abs_errors) / len(abs_errors) if abs_errors else None
    metrics["within_one_band"] = sum(float(v) for v in within) / len(within) if within else None
    graded = sum(1 for out in outputs if _prediction(out) is not None)
    return ExperimentSummary(
        experiment_name=str(results.experiment_name),
        experiment_id=str(results.experiment_id) if getattr(results, "experiment_id", None) else None,
        dataset_name=dataset_name,
        dataset_id=dataset_id,
        n=len(rows),
        graded=graded,
        examples_created=created,
        metrics=metrics,
        url=getattr(results, "url", None),
    )
