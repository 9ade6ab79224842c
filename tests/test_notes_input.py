"""Issue 14, defects 8 and 9 (data side): odd notes files are reported, never silently altered or dropped."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.adapters.cli import cli
from bot.knowledge.ingest import IngestError, collect
from bot.knowledge.text import decode_notes_checked


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("command", ["cards", "ingest"])
def test_a_path_over_4096_characters_is_a_clear_error_not_a_traceback(command: str) -> None:
    code, _, err = run(command, "x" * 5000)
    assert code == 2
    assert "File name too long" in err and "5,000 characters" in err and "Traceback" not in err
    assert len(err) < 600  # the path is shortened, not echoed whole


def test_a_100_kb_question_line_is_reported(tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    long_line = "why " * 24_999 + "why?"
    notes.write_text(f"What is dropout?\nIt drops units.\n{long_line}\nWhat is bias?\nAn offset.\n", encoding="utf-8")
    parsed, warnings = collect([notes], tmp_path)
    assert [c.display_question for c in parsed[0].cards] == ["What is dropout?", "What is bias?"]
    assert len(warnings) == 1 and "line 3:" in warnings[0] and "100,000 characters" in warnings[0]
    assert str(notes) in warnings[0]
    code, _, err = run("cards", str(notes))
    assert code == 0 and "warning:" in err and "line 3:" in err


def test_nul_bytes_after_the_first_8_kb_are_removed_with_a_warning(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    filler = "".join(f"What is term {i}?\nTerm {i} is a term.\n" for i in range(400))
    notes.write_bytes(filler.encode() + b"What is a \x00null embedding?\nA vector.\n")
    assert len(filler) > 8192
    parsed, warnings = collect([notes], tmp_path)
    assert not any("\x00" in c.question for c in parsed[0].cards)
    assert warnings == [f"{notes}: line 801: NUL bytes removed (1 line)"]


def test_invalid_utf8_is_replaced_and_reported_with_its_line(tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_bytes("What is a café?\nA place.\n".encode() + b"What is a \xff\xfe\xc3( embedding?\nA vector.\n")
    parsed, warnings = collect([notes], tmp_path)
    questions = [c.display_question for c in parsed[0].cards]
    assert questions[0] == "What is a café?" and "\ufffd" in questions[1]  # not "ÿþÃ("
    assert warnings == [f"{notes}: line 3: invalid UTF-8 replaced with \ufffd (1 line); the file is not quite UTF-8"]


def test_a_legacy_single_byte_file_is_read_as_windows_1252_and_said_so() -> None:
    text, warnings = decode_notes_checked("What is a café?\nA place.\n".encode("cp1252"))
    assert text.startswith("What is a café?")
    assert len(warnings) == 1 and warnings[0].startswith("line 1: not UTF-8; read as Windows-1252")


def test_clean_utf8_gives_no_warning() -> None:
    assert decode_notes_checked("What is a café?\nA place.\n".encode()) == ("What is a café?\nA place.\n", [])


def test_a_file_over_the_cards_per_file_cap_is_refused_or_skipped_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "big.md").write_text("".join(f"What is term {i}?\nA term.\n\n" for i in range(30)), encoding="utf-8")
    (folder / "small.md").write_text("What is bias?\nAn offset.\n", encoding="utf-8")
    with pytest.raises(IngestError, match=r"big.md: 30 questions, over the limit of 10 per file"):
        collect([folder / "big.md"], tmp_path, max_cards=10)
    parsed, warnings = collect([folder], tmp_path, max_cards=10)
    assert [p.path.name for p in parsed] == ["small.md"]
    assert any("skipped" in w and "INTERVIEW_MAX_CARDS_PER_FILE" in w for w in warnings)
    monkeypatch.setenv("INTERVIEW_MAX_CARDS_PER_FILE", "10")
    code, _, err = run("cards", str(folder / "big.md"))
    assert code == 2 and "over the limit of 10" in err


def test_ingest_prints_progress_lines_with_a_rate_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("".join(f"What is term {i}?\nTerm {i} is a term.\n\n" for i in range(600)), encoding="utf-8")
    code, _, err = run("ingest", str(notes))
    assert code == 0
    lines = [ln for ln in err.splitlines() if ln.startswith("embedding cards:")]
    assert [ln.split(" (")[0] for ln in lines] == [
        "embedding cards: 256/600",
        "embedding cards: 512/600",
        "embedding cards: 600/600",
    ]
    assert all(ln.endswith("cards/s)") for ln in lines)


def test_progress_lines_every_five_percent_with_the_rate(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.adapters.commands.common import ProgressLines

    ticks = iter([0.0, 2.0, 4.0, 6.0, 8.0])
    show = ProgressLines("grading", "answers", clock=lambda: next(ticks))
    for done in (10, 11, 30, 100):
        show(done, 100)
    assert capsys.readouterr().err.splitlines() == [
        "grading: 10/100 (10%, 5.0 answers/s)",
        "grading: 30/100 (30%, 7.5 answers/s)",
        "grading: 100/100 (100%, 16.7 answers/s)",
    ]
