"""Exports (bot/history/export.py, ``interview export``) and the no-secrets guarantee."""

from __future__ import annotations

import csv
import io
import json
import logging
import sqlite3
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from fsrs import Rating

from bot.adapters.cli import cli
from bot.grading.base import Grade
from bot.history.export import CSV_COLUMNS, anki_ids, export_anki, export_csv, export_markdown, weak_cards
from bot.history.progress import stats_for
from bot.history.recorder import HistoryRecorder
from bot.history.repository import History
from bot.practice.schedule import CardScheduler, RatingThresholds
from tests.db_fixtures import make_attempt, make_grade, make_outcome
from tests.test_progress import CARDS, NOW, SCHED, seed


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:  # SQLite only: exports do not depend on the backend
    h = History(f"sqlite:///{tmp_path / 'h.sqlite3'}")
    seed(h, "alice")
    yield h
    h.close()


def test_csv_one_row_per_attempt_with_flattened_grade_and_full_json(history: History) -> None:
    uid = history.ensure_user("alice")
    sid = history.start_session(uid, mode="drill", config={}, card_ids=["a1"], now=NOW)
    tricky = 'Line one, with a comma\nline two "quoted" · ünïcode'
    history.record_attempt(uid, make_attempt(sid, "a1", answer=tricky, at=NOW, hints=2))
    history.record_attempt(uid, make_attempt(sid, "a1", kind="skip", answer="", grade=None, at=NOW))
    attempts = history.attempts(uid)
    out = io.StringIO()
    assert export_csv(attempts, out, user="alice") == 7
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(rows) == 7 and list(rows[0]) == CSV_COLUMNS
    row = next(r for r in rows if r["answer"] == tricky)
    assert row["hints_used"] == "2" and row["kind"] == "answer" and row["user"] == "alice"
    assert row["score"] == "7.0" and row["band"] == "good" and row["status"] == "graded"
    assert row["hit"] == "point 0 | point 1" and row["missed"] == "missed 0" and row["key_points"] == "3"
    assert row["prompt_tokens"] == "900" and row["cost_usd"] == "0.0002" and row["time_taken_s"] == "42.0"
    stored = next(a for a in attempts if a.answer == tricky)
    assert Grade.model_validate(json.loads(row["grade_json"])) == stored.grade
    skip = rows[-1]
    assert skip["kind"] == "skip" and skip["grade_json"] == "" and skip["score"] == ""


def test_markdown_report(history: History) -> None:
    uid = history.ensure_user("alice")
    stats = stats_for(history, "alice", CARDS, SCHED, NOW, leech_threshold=3)
    md = export_markdown(stats, history.sessions(uid), history.attempts(uid))
    assert md.startswith("# Interview practice: alice\n")
    assert "## Progress" in md and "| NLP | 2 | 2 |" in md
    assert md.count("\n### ") == 3 and "· drill · 2/2 questions (finished)" in md
    assert "**Question for b1?** · 1.0/10 (wrong)" in md
    assert "> Dropout switches random neurons off during training." in md
    assert "Missed or wrong: missed 0" in md and "Good start; name the trade-off." in md


def test_weak_cards_and_anki_deck(history: History, tmp_path: Path) -> None:
    stats = stats_for(history, "alice", CARDS, SCHED, NOW)
    chosen = weak_cards(stats, CARDS)
    assert [c.id for c in chosen] == ["b1", "a2"]
    leech_free = weak_cards(stats, [c for c in CARDS if c.id != "b1"])  # b1 deleted from the notes
    assert [c.id for c in leech_free] == ["a2"]
    notes = [*chosen, CARDS[3]]  # b2 has no answer in the notes: its question goes on the back
    path = tmp_path / "weak.apkg"
    assert export_anki(notes, path, user="alice", now=NOW, leeches=frozenset({"b1"})) == 3
    with zipfile.ZipFile(path) as z:
        z.extract("collection.anki2", tmp_path)
    db = sqlite3.connect(tmp_path / "collection.anki2")
    try:
        rows = db.execute("SELECT flds, tags, guid FROM notes ORDER BY id").fetchall()
        decks = json.loads(db.execute("SELECT decks FROM col").fetchone()[0])
        models = json.loads(db.execute("SELECT models FROM col").fetchone()[0])
    finally:
        db.close()
    fields = [r[0].split("\x1f") for r in rows]
    assert [f[0] for f in fields] == ["What is b1?", "What is a2?", "What is b2?"]
    assert [f[1] for f in fields] == ["An answer.", "An answer.", "b2?"]
    assert "leech" in rows[0][1] and "RNN" in rows[0][1] and "leech" not in rows[1][1]
    deck_id, model_id = anki_ids("alice")
    assert str(deck_id) in decks and decks[str(deck_id)]["name"] == "Interview coach::alice::weak cards"
    assert list(models) == [str(model_id)]
    assert anki_ids("alice") == (deck_id, model_id) and anki_ids("bob")[0] != deck_id
    assert anki_ids("bob")[1] == model_id and 1 << 30 <= deck_id < 1 << 31
    again = tmp_path / "again.apkg"
    export_anki(notes, again, user="alice", now=NOW)
    with zipfile.ZipFile(again) as z:
        z.extract("collection.anki2", tmp_path / "b")
    db = sqlite3.connect(tmp_path / "b" / "collection.anki2")
    try:
        assert [r[0] for r in db.execute("SELECT guid FROM notes ORDER BY id")] == [r[2] for r in rows]
    finally:
        db.close()


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def notes_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "ml.txt").write_text(
        "NLP:\nWhat is a token?\nA piece of text the model reads.\n\nWhat is BPE?\nByte-pair encoding.\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("INTERVIEW_KNOWLEDGE_DIR", str(notes))
    return notes


def test_interview_export_cli(isolated_state: Path, notes_dir: Path, tmp_path: Path) -> None:
    from bot.knowledge.ingest import collect
    from bot.settings import Settings

    parsed, _ = collect([notes_dir], notes_dir)
    token, bpe = parsed[0].cards
    with History.from_settings(Settings()) as h:
        uid = h.ensure_user("local")
        sid = h.start_session(uid, mode="drill", config={}, card_ids=[token.id, bpe.id], now=NOW)
        for c, score in ((token, 2.0), (bpe, 9.0)):
            h.record_attempt(uid, make_attempt(sid, c.id, score=score, at=NOW, topic=c.topic))
            outcome = make_outcome(sid, c.id, score=score, at=NOW)
            h.finish_question(uid, outcome, Rating.Again if score < 4 else Rating.Easy, SCHED)

    code, out, _ = run("export", "--format", "csv", "--now", NOW.isoformat())
    assert code == 0 and len(list(csv.DictReader(io.StringIO(out)))) == 2
    code, out, _ = run("export", "--format", "md", "--now", NOW.isoformat())
    assert code == 0 and "# Interview practice: local" in out and "2.0/10 (weak)" in out
    report = tmp_path / "r.md"
    code, _, err = run("export", "--format", "md", "-o", str(report))
    assert code == 0 and report.read_text(encoding="utf-8").startswith("# Interview") and "2 attempts" in err
    deck = tmp_path / "weak.apkg"
    code, _, err = run("export", "--format", "anki", "-o", str(deck), "--now", NOW.isoformat())
    assert code == 0 and "wrote 1 weak card(s)" in err and zipfile.is_zipfile(deck)
    assert run("export", "--format", "pdf")[0] == 2
    assert run("export", "--format", "csv", "--user", "mallory")[0] == 2


def test_anki_export_with_nothing_weak(isolated_state: Path, notes_dir: Path, tmp_path: Path) -> None:
    code, _, err = run("export", "--format", "anki", "-o", str(tmp_path / "x.apkg"))
    assert code == 0 and "no weak cards yet" in err and not (tmp_path / "x.apkg").exists()


async def test_secrets_never_reach_the_database_logs_or_exports(
    isolated_state: Path,
    notes_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from bot.history.users import authenticate, hash_password
    from bot.knowledge.ingest import collect
    from bot.settings import Settings

    marker = "sk-MARKER-4f1c9e7a"
    password_hash = hash_password("correct horse battery staple")
    monkeypatch.setenv("OPENAI_API_KEY", marker)
    monkeypatch.setenv("INTERVIEW_USERS", f"alice:{password_hash}")
    caplog.set_level(logging.DEBUG)
    settings = Settings()
    assert authenticate(settings, "alice", "correct horse battery staple") == "alice"

    card = collect([notes_dir], notes_dir)[0][0].cards[0]
    history = History.from_settings(settings)
    uid = history.ensure_user("alice")
    # A careless caller passes the whole settings object as the session config.
    sid = history.start_session(uid, mode="drill", config=settings.model_dump(), card_ids=[card.id], now=NOW)
    recorder = HistoryRecorder(history, uid, CardScheduler.from_settings(settings), RatingThresholds())
    await recorder.record_attempt(make_attempt(sid, card.id, score=2.0, at=NOW, grade=make_grade(2.0)))
    await recorder.question_finished(make_outcome(sid, card.id, score=2.0, at=NOW + timedelta(seconds=1)))
    history.close()

    outputs = []
    for fmt in ("md", "csv", "anki"):
        target = tmp_path / f"export.{fmt}"
        code, out, err = run("export", "--format", fmt, "-o", str(target), "--now", NOW.isoformat())
        assert code == 0, err
        outputs += [out, err]
    outputs.append(run("stats", "--json")[1])
    outputs.append(run("stats")[1])
    with zipfile.ZipFile(tmp_path / "export.anki") as z:
        outputs.append(z.read("collection.anki2").decode("latin-1"))
    files = [tmp_path / "export.md", tmp_path / "export.csv", *isolated_state.glob("history.sqlite3*")]
    assert any(p.name == "history.sqlite3" for p in files)
    blobs = [p.read_bytes().decode("latin-1") for p in files] + outputs + [caplog.text]
    salt_and_key = password_hash.split("$", 4)[-1]
    for blob in blobs:
        assert marker not in blob
        assert password_hash not in blob and salt_and_key not in blob
    assert "drill" in (tmp_path / "export.md").read_text(encoding="utf-8")  # the exports did have content
