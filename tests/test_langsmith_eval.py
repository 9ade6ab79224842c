"""LangSmith experiments (``bot.evaluation.langsmith``) against a stateful fake API on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from bot.evaluation.datasets import Example
from bot.evaluation.langsmith import LangSmithUnavailable, example_id, run_langsmith_experiment
from bot.grading.base import Grade, GradeRequest, OneShotGrader, ungraded
from tests.langsmith_recorder import LangSmithRecorder

SECRET = "lsv2_pt_SECRET_langsmith_eval_789"
ROOT = Path(__file__).resolve().parents[1]

EXAMPLES = [
    Example("What is dropout?", "Randomly drops units during training.", "Drops random units in training.", 5, 5, "q1"),
    Example("What is dropout?", "Randomly drops units during training.", "A learning rate schedule.", 0, 5, "q1"),
    Example("What is L2 regularisation?", "Penalises large weights.", "It penalises large weights.", 4, 5, "q2"),
    Example("What is L2 regularisation?", "Penalises large weights.", "Makes weights bigger?", 1, 5, "q2"),
    Example("What is a ROC curve?", "TPR against FPR over thresholds.", "TPR vs FPR as threshold varies.", 5, 5, "q3"),
    Example("What is a ROC curve?", "TPR against FPR over thresholds.", "", 0, 5, "q3"),
]


class FakeGrader(OneShotGrader):
    """Scores by word overlap with the reference; an empty answer is ungraded."""

    name = "fake:overlap"
    prompt_version = "fake-v1"

    def __init__(self) -> None:
        self.calls: list[GradeRequest] = []

    async def agrade(self, request: GradeRequest) -> Grade:
        self.calls.append(request)
        if not request.answer.strip():
            return ungraded("empty answer", grader=self.name, prompt_version=self.prompt_version)
        ref = set(request.reference.lower().split())
        ans = set(request.answer.lower().rstrip("?.").split())
        score = round(10 * len(ref & ans) / max(1, len(ref)), 1)
        return Grade(score=score, grader=self.name, prompt_version=self.prompt_version)


def _client(url: str) -> Any:
    import langsmith

    return langsmith.Client(api_url=url, api_key=SECRET)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_experiment_records_dataset_runs_feedback_and_summary(langsmith_recorder: LangSmithRecorder) -> None:
    rec = langsmith_recorder
    client = _client(rec.url)
    grader = FakeGrader()
    first = run_langsmith_experiment(
        EXAMPLES, grader, dataset_name="interview-gold", experiment_prefix="fake-grader", client=client
    )
    assert len(grader.calls) == len(EXAMPLES)
    # dataset + examples, with deterministic ids and 0–1 reference scores
    assert len(rec.datasets) == 1
    (dataset,) = rec.datasets.values()
    assert dataset["name"] == "interview-gold" and first.dataset_id == dataset["id"]
    stored = rec.examples_of(dataset["id"])
    assert {e["id"] for e in stored} == {str(example_id(ex)) for ex in EXAMPLES}
    by_id = {e["id"]: e for e in stored}
    for ex in EXAMPLES:
        row = by_id[str(example_id(ex))]
        assert row["inputs"]["question"] == ex.question and row["inputs"]["student_answer"] == ex.student_answer
        assert row["inputs"]["question_id"] == ex.question_id
        assert row["outputs"]["score"] == pytest.approx(ex.human) and row["outputs"]["score_max"] == 5
    assert first.examples_created == len(EXAMPLES) and first.n == len(EXAMPLES) and first.graded == 5
    # the experiment: a session tied to the dataset, with our metadata
    session = rec.sessions[str(first.experiment_id)]
    assert session["reference_dataset_id"] == dataset["id"]
    assert session["name"] == first.experiment_name and first.experiment_name.startswith("fake-grader")
    meta = session["extra"]["metadata"]
    assert meta["grader"] == "fake:overlap" and meta["prompt_version"] == "fake-v1"
    # one target run per example, linked to its example, with the grade as outputs
    target_runs = [r for r in rec.runs_in(session["id"]) if r.get("reference_example_id")]
    assert {r["reference_example_id"] for r in target_runs} == set(by_id)
    outs = {r["reference_example_id"]: r.get("outputs") or {} for r in target_runs}
    assert outs[str(example_id(EXAMPLES[5]))]["status"] == "ungraded"
    assert outs[str(example_id(EXAMPLES[5]))]["score"] is None
    assert outs[str(example_id(EXAMPLES[0]))]["grader"] == "fake:overlap"
    # per-example feedback for every example; the ungraded one has no score
    run_to_example = {r["id"]: r["reference_example_id"] for r in target_runs}
    for key in ("absolute_error", "within_one_band"):
        got = {run_to_example[str(f["run_id"])]: f.get("score") for f in rec.feedback_for(key)}
        assert set(got) == set(by_id), key
        assert got[str(example_id(EXAMPLES[5]))] is None
    errors = {run_to_example[str(f["run_id"])]: f["score"] for f in rec.feedback_for("absolute_error")}
    assert errors[str(example_id(EXAMPLES[0]))] == pytest.approx(abs(outs[str(example_id(EXAMPLES[0]))]["score"] - 1))
    # summary metrics: returned and sent as experiment-level feedback
    assert first.metrics["pearson"] is not None and first.metrics["pearson"] > 0.5
    assert first.metrics["qwk"] is not None
    assert 0 <= (first.metrics["mae"] or 0) <= 1 and first.metrics["within_one_band"] is not None
    for key in ("pearson", "qwk"):
        (sent,) = rec.feedback_for(key)
        assert sent.get("run_id") is None and str(sent["session_id"]) == session["id"]
        assert sent["score"] == pytest.approx(first.metrics[key], abs=1e-3)
    assert not [u for u in rec.unknown if u[0] != "GET"], rec.unknown

    # a second run reuses the dataset: no duplicate examples, a new experiment
    second = run_langsmith_experiment(
        EXAMPLES, FakeGrader(), dataset_name="interview-gold", experiment_prefix="fake-grader", client=client
    )
    assert second.dataset_id == first.dataset_id and second.examples_created == 0
    assert len(rec.datasets) == 1 and len(rec.examples) == len(EXAMPLES)
    assert second.experiment_id != first.experiment_id and len(rec.sessions) == 2
    assert second.metrics["pearson"] == pytest.approx(first.metrics["pearson"])
    # no secret in anything sent, nor in the session metadata
    assert SECRET.encode() not in rec.everything()


def test_offline_grader_runs_as_experiment(langsmith_recorder: LangSmithRecorder, local_embedder: Any) -> None:
    from bot.grading.offline.grader import OfflineGrader

    summary = run_langsmith_experiment(
        EXAMPLES[:4],
        OfflineGrader(local_embedder),
        dataset_name="offline-gold",
        experiment_prefix="offline",
        client=_client(langsmith_recorder.url),
        max_concurrency=2,
    )
    assert summary.n == 4 and summary.graded == 4
    assert len(langsmith_recorder.feedback_for("absolute_error")) == 4
    meta = langsmith_recorder.sessions[str(summary.experiment_id)]["extra"]["metadata"]
    assert meta["grader"] == "offline"


def test_endpoint_down_raises_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("LANGSMITH_ENDPOINT", url)
    monkeypatch.setenv("LANGSMITH_API_KEY", SECRET)
    with pytest.raises(LangSmithUnavailable) as info:  # from the /info probe: nothing else is tried
        run_langsmith_experiment(EXAMPLES, FakeGrader(), dataset_name="d", experiment_prefix="p")
    message = str(info.value)
    assert url in message and "LANGSMITH_ENDPOINT" in message and "LANGSMITH_API_KEY" in message
    assert SECRET not in message
    with pytest.raises(LangSmithUnavailable):  # also when a client is passed in
        run_langsmith_experiment(EXAMPLES, FakeGrader(), dataset_name="d", experiment_prefix="p", client=_client(url))


@pytest.mark.slow  # a few seconds: runs in `make test` / CI, not in test-fast
def test_endpoint_failing_after_probe_raises_unavailable(langsmith_recorder: LangSmithRecorder) -> None:
    langsmith_recorder.fail["datasets"] = 503
    with pytest.raises(LangSmithUnavailable, match="LANGSMITH_API_KEY"):
        run_langsmith_experiment(
            EXAMPLES, FakeGrader(), dataset_name="d", experiment_prefix="p", client=_client(langsmith_recorder.url)
        )
    assert not langsmith_recorder.sessions and not langsmith_recorder.examples


SCRIPT = textwrap.dedent(
    """
    import sys
    from bot.evaluation.datasets import Example
    from bot.grading.base import Grade
    from bot.evaluation.langsmith import LangSmithUnavailable, run_langsmith_experiment

    class G:
        name = "fake"
        async def agrade(self, request):
            return Grade(score=5.0, grader="fake")

    try:
        run_langsmith_experiment(
            [Example("q?", "ref", "ans", 1, 2, "q1")], G(), dataset_name="d", experiment_prefix="p"
        )
    except LangSmithUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(3)
    """
)


def test_endpoint_down_subprocess_exits_with_a_clear_error(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "LANGSMITH_ENDPOINT": f"http://127.0.0.1:{_closed_port()}",
        "LANGSMITH_API_KEY": SECRET,
        "LANGSMITH_TRACING": "true",
        "LANGCHAIN_TRACING_V2": "true",
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.run(  # the timeout only catches a hang (a background upload thread kept alive)
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=60, check=False, cwd=tmp_path
    )
    assert proc.returncode == 3, proc.stderr
    assert "LangSmith is unreachable" in proc.stderr and "LANGSMITH_ENDPOINT" in proc.stderr
    assert SECRET not in proc.stderr
