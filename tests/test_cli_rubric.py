"""``interview rubric CARD [--json] [--edit [--from FILE|-]] [--reset]``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.adapters.cli import cli

QUESTION = "vanishing gradient problem?"


@pytest.fixture(autouse=True)
def notes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "knowledge"
    folder.mkdir()
    (folder / "notes.txt").write_text(
        "what is vanishing gradient problem?\n"
        "Backpropagation multiplies the derivatives of every layer\n"
        "and the sigmoid derivative is at most 0.25.\n"
        "So the gradients of the early layers become tiny and their weights hardly change.\n"
        "For example 0.25 * 0.25 * 0.25 = 0.015 after three layers.\n\n"
        "what is gan?\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("INTERVIEW_KNOWLEDGE_DIR", str(folder))
    monkeypatch.setenv("EDITOR", "true")
    return folder


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_shows_the_compiled_rubric() -> None:
    code, out, _ = run("rubric", QUESTION)
    assert code == 0
    assert "What is vanishing gradient problem?" in out and "heuristic" in out
    assert "1. [core]" in out and "[detail]" in out  # the worked arithmetic is a detail
    code, out, _ = run("rubric", QUESTION, "--json")
    data = json.loads(out)
    assert data["compiled_by"] == "heuristic" and not data["stale_edit"]
    assert 2 <= len(data["points"]) <= 6
    assert {p["weight"] for p in data["points"]} == {"core", "detail"}
    assert all(p["label"] and p["lines"] for p in data["points"])


def test_edit_from_stdin_is_kept_per_user_and_used(isolated_state: Path) -> None:
    new = "core | sigmoid derivative | The sigmoid derivative is at most 0.25.\ndetail | | Deep stacks make it worse.\n"
    code, out, err = run("rubric", QUESTION, "--edit", "--from", "-", stdin=new)
    assert code == 0, err
    assert "Stored version 2" in err
    code, out, _ = run("rubric", QUESTION, "--json")
    data = json.loads(out)
    assert data["compiled_by"] == "user" and data["version"] == 2
    assert [p["text"] for p in data["points"]] == [
        "The sigmoid derivative is at most 0.25.",
        "Deep stacks make it worse.",
    ]
    assert data["points"][1]["label"]  # a label was made for the point written without one
    # a JSON rubric works too
    code, _, _ = run("rubric", QUESTION, "--edit", "--from", "-", stdin=json.dumps({"points": data["points"][:1]}))
    assert code == 0 and len(json.loads(run("rubric", QUESTION, "--json")[1])["points"]) == 1
    code, _, err = run("rubric", QUESTION, "--reset")
    assert code == 0 and "dropped" in err
    assert json.loads(run("rubric", QUESTION, "--json")[1])["compiled_by"] == "heuristic"


def test_a_bad_edit_changes_nothing_and_keeps_the_text(isolated_state: Path) -> None:
    code, _, err = run("rubric", QUESTION, "--edit", "--from", "-", stdin="sometimes | x | A whole sentence here.\n")
    assert code == 2 and "weight must be core or detail" in err
    kept = next((isolated_state / "rubrics").glob("rejected-*.txt"))
    assert "sometimes" in kept.read_text()
    assert json.loads(run("rubric", QUESTION, "--json")[1])["compiled_by"] == "heuristic"


def test_editor_left_unchanged_changes_nothing() -> None:
    code, _, err = run("rubric", QUESTION, "--edit")  # EDITOR=true saves the file as it was
    assert code == 0 and "Nothing changed" in err


def test_the_edit_goes_stale_when_the_note_changes(notes: Path) -> None:
    run("rubric", QUESTION, "--edit", "--from", "-", stdin="core | derivative | The derivative is tiny.\n")
    path = notes / "notes.txt"
    path.write_text(path.read_text().replace("at most 0.25", "at most one quarter"), encoding="utf-8")
    _, out, _ = run("rubric", QUESTION, "--json")
    data = json.loads(out)
    assert data["stale_edit"] and data["compiled_by"] == "heuristic"


def test_unknown_or_unanswered_cards_are_clear_errors() -> None:
    code, _, err = run("rubric", "no such question")
    assert code == 2 and "no card matches" in err
    code, _, err = run("rubric", "gan")
    assert code == 2 and "no answer" in err
    code, _, err = run("rubric", QUESTION, "--from", "-")
    assert code == 2 and "--from goes with --edit" in err
