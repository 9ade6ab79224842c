"""The ``interview`` CLI, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bot.adapters.cli import cli

NOTES = Path(__file__).parent / "data" / "notes"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_cards_json_shape(real_notes: Path) -> None:
    code, out, _ = run("cards", str(real_notes), "--json")
    assert code == 0
    cards = json.loads(out)
    assert len(cards) >= 85
    for c in cards:
        assert {"id", "question", "display_question", "answer", "topic", "flags", "source"} <= c.keys()
        assert isinstance(c["answer"], str) and isinstance(c["flags"], list)
        assert set(c["source"]) >= {"path", "line_start", "line_end"}
        assert 1 <= c["source"]["line_start"] <= c["source"]["line_end"]
    no_answer = [c for c in cards if "no_answer" in c["flags"]]
    assert no_answer and all(c["answer"] == "" for c in no_answer)


def test_cards_table_on_a_folder() -> None:
    code, out, err = run("cards", str(NOTES))
    assert code == 0
    assert "What is the F1 score?" in out and "What is batch normalization?" in out
    assert "15 cards" in err


@pytest.mark.slow  # a few seconds: runs in `make test` / CI, not in test-fast
def test_ingest_summary_then_search(real_notes: Path) -> None:
    code, out, _ = run("ingest", str(real_notes))
    assert code == 0
    assert "Ingested 1 file(s): 95 cards, 7 topics, 16 without an answer" in out
    code, out, _ = run("ingest", str(real_notes), "--json")
    summary = json.loads(out)
    assert summary["unchanged"] == 95 and summary["added"] == 0 and summary["no_answer"] == 16
    assert summary["files"] == 1 and len(summary["topics"]) == 7 and summary["seconds"] >= 0
    code, out, _ = run("search", "what does dropout do", "-k", "2", "--json")
    hits = json.loads(out)
    assert code == 0 and len(hits) == 2
    assert hits[0]["question"] == "Why we use drop out?"
    assert hits[0]["score"] >= hits[1]["score"]


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"\x00\x01\x02\x03binary\x00", "not a text notes file"), (b"no questions.\n", "no questions")],
)
def test_bad_input_exits_2_and_writes_nothing(
    tmp_path: Path, isolated_state: Path, content: bytes, message: str
) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    code, out, err = run("ingest", str(bad))
    assert code == 2 and message in err and out == ""
    assert not (isolated_state / "chroma").exists()  # the store was never even created


def test_empty_directory_and_missing_path_exit_2(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert run("ingest", str(tmp_path / "empty"))[0] == 2
    assert run("cards", str(tmp_path / "nope"))[0] == 2


def test_search_on_empty_store_says_what_to_do() -> None:
    code, _, err = run("search", "anything")
    assert code == 2 and "interview ingest" in err


def test_python_dash_m_bot_runs_the_same_cli(tmp_path: Path) -> None:
    env = {**os.environ, "INTERVIEW_DATA_DIR": str(tmp_path / "d")}
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "cards", str(NOTES / "qa.txt"), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert next(c["display_question"] for c in json.loads(proc.stdout)) == "What is precision?"


def test_grade_json_offline() -> None:
    code, out, _ = run(
        "grade",
        "--question",
        "What is dropout?",
        "--reference",
        "Dropout randomly deactivates neurons during training to reduce overfitting.",
        "--answer",
        "During training dropout turns off random neurons so the network overfits less.",
        "--grader",
        "offline",
        "--json",
    )
    assert code == 0
    grade = json.loads(out)
    assert grade["status"] == "graded" and 0 <= grade["score"] <= 10 and grade["grader"] == "offline"
    assert grade["band"] in {"wrong", "weak", "partial", "good", "excellent"}


def test_grade_card_from_the_store_readable(seeded: Path) -> None:
    from bot.retrieval.store import open_store
    from bot.settings import Settings

    card = next(c for c in open_store(Settings()).all_cards() if c.display_question == "Why we use drop out?")
    code, out, _ = run("grade", "--card", card.id, "--answer", "It stops overfitting by dropping neurons.")
    assert code == 0 and "Score:" in out and "graded by offline" in out
    # graded against the card's rubric: the same checklist `interview rubric` shows
    code, out, _ = run("grade", "--card", card.id, "--answer", "It stops overfitting by dropping neurons.", "--json")
    shown = json.loads(run("rubric", card.id, "--json")[1])
    assert [c["point"] for c in json.loads(out)["claims"]] == [p["text"] for p in shown["points"]]


def test_grade_ungraded_still_exits_0() -> None:
    code, out, _ = run("grade", "--question", "What is a GAN?", "--answer", "Two networks compete.", "--json")
    assert code == 0 and json.loads(out)["status"] == "ungraded"


def test_grade_bad_usage_exits_2() -> None:
    assert run("grade", "--answer", "x")[0] == 2  # neither --question nor --card
    assert run("grade", "--question", "q", "--card", "c", "--answer", "x")[0] == 2
    assert run("grade", "--card", "nope", "--answer", "x")[0] == 2
    assert run("grade", "--question", "q")[0] == 2  # --answer missing (click usage error)


def test_eval_json_report_and_bad_lines(tmp_path: Path) -> None:
    rows = [
        {
            "question": "What is dropout?",
            "reference_answer": "Dropout deactivates random neurons in training.",
            "student_answer": a,
            "score": s,
            "score_max": 5,
            "question_id": "q1",
        }
        for a, s in [
            ("It deactivates random neurons during training.", 5),
            ("It is a learning rate schedule.", 0),
            ("Random neurons are switched off.", 4),
            ("No idea.", 0),
        ]
    ]
    lines = [json.dumps(r) for r in rows]
    lines.insert(2, "{not json")
    lines.append(
        json.dumps({"question": "q", "reference_answer": "r", "student_answer": "a", "score": 9, "score_max": 5})
    )
    data = tmp_path / "set.jsonl"
    data.write_text("\n".join(lines) + "\n")
    report = tmp_path / "report.md"
    code, out, err = run("eval", str(data), "--grader", "offline", "--json", "--report", str(report))
    assert code == 0
    metrics = json.loads(out.strip().splitlines()[-1])
    assert {"n", "ungraded", "pearson", "spearman", "qwk", "rmse", "mae"} <= metrics.keys()
    assert metrics["n"] == 4 and metrics["bad_lines"] == 2
    assert "line 3" in err and "line 6" in err
    assert report.exists() and (tmp_path / "report.scatter.html").exists()


def test_eval_simulate_and_usage_errors(monkeypatch: pytest.MonkeyPatch, real_notes: Path) -> None:
    monkeypatch.setenv("INTERVIEW_KNOWLEDGE_DIR", str(real_notes.parent))
    code, out, _ = run("eval", "--simulate", "--cards", "3", "--json")
    assert code == 0 and json.loads(out)["overall_accuracy"] >= 0.8
    assert run("eval")[0] == 2
    assert run("eval", "missing.jsonl")[0] == 2


def test_eval_langsmith_experiment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, langsmith_recorder: Any) -> None:
    rows = [
        {
            "question": "What is dropout?",
            "reference_answer": "Dropout deactivates random neurons in training.",
            "student_answer": a,
            "score": s,
            "score_max": 1,
        }
        for a, s in [("It deactivates random neurons during training.", 1), ("A learning rate schedule.", 0)]
    ]
    data = tmp_path / "mini.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    monkeypatch.setenv("LANGSMITH_ENDPOINT", langsmith_recorder.url)
    monkeypatch.setenv("LANGSMITH_API_KEY", "lsv2_test_key")
    code, out, _ = run("eval", str(data), "--grader", "offline", "--langsmith", "--experiment-prefix", "offline-test")
    assert code == 0, out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["dataset_name"] == "mini" and summary["n"] == 2
    assert summary["experiment_name"].startswith("offline-test")
    assert len(langsmith_recorder.examples) == 2 and langsmith_recorder.feedback


def test_eval_langsmith_unavailable_exits_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.evaluation.langsmith as langsmith

    def down(*args: Any, **kwargs: Any) -> Any:
        raise langsmith.LangSmithUnavailable("LangSmith at http://127.0.0.1:9 does not answer")

    monkeypatch.setattr(langsmith, "run_langsmith_experiment", down)
    data = tmp_path / "one.jsonl"
    row = {"question": "q", "reference_answer": "r", "student_answer": "a", "score": 1, "score_max": 1}
    data.write_text(json.dumps(row) + "\n")
    code, out, err = run("eval", str(data), "--grader", "offline", "--langsmith")
    assert (code, out) == (3, "")
    assert err.strip() == "Error: LangSmith at http://127.0.0.1:9 does not answer"


def test_usage_errors_name_the_option() -> None:
    code, _, err = run("grade", "--card", "nope", "--answer", "x")
    assert code == 2 and "--card" in err and "no card with id 'nope'" in err
    code, _, err = run("grade", "--answer", "x")
    assert code == 2 and "Usage: cli grade" in err and "exactly one of --question or --card" in err
