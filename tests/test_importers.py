"""Importers: PDF (pages in sources), Obsidian vaults, Anki plain-text exports; bad files rejected whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.knowledge.cards import FLAG_GENERATED
from bot.knowledge.importers import SUFFIXES, ImportFailed, load, note_files
from bot.knowledge.ingest import IngestError, collect, ingest
from bot.retrieval.store import CardStore, open_store
from bot.settings import Settings
from tests.pdfgen import write_pdf


@pytest.fixture
def store(settings: Settings, local_embedder: Any) -> CardStore:
    return open_store(settings, local_embedder)


def test_registry_by_suffix() -> None:
    assert {".txt", ".md", ".pdf"} <= set(SUFFIXES)
    with pytest.raises(ImportFailed, match=r"not a notes file \(supported: .txt"):
        load(Path("slides.pptx"), "slides.pptx")


def test_pdf_cards_carry_their_pages(tmp_path: Path) -> None:
    pdf = tmp_path / "notes.pdf"
    write_pdf(
        pdf,
        [
            ["What is dropout?", "Randomly zeroing activations during training."],
            ["## Attention", "A weighted average of the values,", "weighted by query-key match."],
        ],
    )
    cards = load(pdf, "notes.pdf").cards
    assert [c.display_question for c in cards] == ["What is dropout?", "What is attention?"]
    assert cards[1].answer == "A weighted average of the values,\nweighted by query-key match."
    assert [(c.source.page_start, c.source.page_end) for c in cards] == [(1, 1), (2, 2)]
    assert cards[1].source.describe() == "notes.pdf p. 2"
    assert FLAG_GENERATED in cards[1].flags


def test_pdf_leftovers_are_named_by_page(tmp_path: Path) -> None:
    pdf = tmp_path / "notes.pdf"
    prose = "This course covers a lot of material that I have not organised into questions or terms yet."
    write_pdf(pdf, [["What is dropout?", "Randomly zeroing activations."], ["#misc", prose]])
    parsed, _ = collect([pdf], tmp_path)
    assert parsed[0].unquestioned == ("p. 2 (misc)",)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"%PDF-1.4 this is not really a pdf", "not a readable PDF"), (None, "has no text layer")],
)
def test_bad_pdfs_are_rejected_before_writing(
    store: CardStore, tmp_path: Path, content: bytes | None, message: str
) -> None:
    pdf = tmp_path / "bad.pdf"
    if content is None:
        write_pdf(pdf, [[], []])
    else:
        pdf.write_bytes(content)
    good = tmp_path / "good.md"
    good.write_text("## What is X?\nX is a thing.\n", encoding="utf-8")
    with pytest.raises(IngestError, match=message):
        ingest([good, pdf], store, tmp_path)
    assert store.count() == 0  # nothing half-written: the good file was not stored either


def _vault(root: Path) -> Path:
    (root / ".obsidian").mkdir(parents=True)
    (root / ".obsidian" / "workspace.md").write_text("## What is hidden?\nNever a card.\n", encoding="utf-8")
    (root / "attachments").mkdir()
    (root / "attachments" / "diagram.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (root / "attachments" / "paper.pdf").write_bytes(b"%PDF-1.4 not read")
    (root / "ML").mkdir()
    (root / "ML" / "Transformers.md").write_text(
        "---\ntags: [ml, nlp]\naliases: [attention notes]\n---\n"
        "## Self-attention\nEvery token attends to every other, see [[Attention]] and [[Softmax|the softmax]].\n"
        "![[diagram.png]]\n\n"
        "## What is a KV cache?\nStored keys and values of earlier tokens ([[Inference#Caching]]).\n",
        encoding="utf-8",
    )
    return root


def test_obsidian_vault(tmp_path: Path) -> None:
    vault = _vault(tmp_path / "vault")
    assert [p.name for p in note_files(vault)] == ["Transformers.md"]
    parsed, warnings = collect([vault], tmp_path)
    assert warnings == []
    cards = parsed[0].cards
    assert [c.display_question for c in cards] == ["What is self-attention?", "What is a KV cache?"]
    assert cards[0].answer == "Every token attends to every other, see Attention and the softmax."
    assert cards[1].answer == "Stored keys and values of earlier tokens (Inference)."
    assert cards[0].source.line_start == 5  # front matter kept its lines
    assert cards[0].source.describe() == "vault/ML/Transformers.md:5–6"


def test_anki_export_with_headers(tmp_path: Path) -> None:
    export = tmp_path / "deck.txt"
    export.write_text(
        "#separator:tab\n#html:true\n#tags column:3\n"
        "What is dropout?\tRandomly <b>zeroing</b> activations.<br>Not at inference.\tml\n"
        'Teacher forcing\t"Feed the ground truth;\nnot the prediction."\tnlp\n'
        "What is &quot;BPE&quot;?\tByte-pair encoding.\tnlp\n",
        encoding="utf-8",
    )
    cards = load(export, "deck.txt").cards
    assert [c.display_question for c in cards] == ["What is dropout?", "What is teacher forcing?", 'What is "BPE"?']
    assert cards[0].answer == "Randomly zeroing activations.\nNot at inference."
    assert cards[1].answer == "Feed the ground truth;\nnot the prediction."
    assert FLAG_GENERATED in cards[1].flags and FLAG_GENERATED not in cards[0].flags
    assert [(c.source.line_start, c.source.line_end) for c in cards] == [(4, 4), (5, 6), (7, 7)]


def test_anki_export_without_headers(tmp_path: Path) -> None:
    export = tmp_path / "old.txt"
    export.write_text("What is recall?\tTP / (TP + FN)\nWhat is precision?\tTP / (TP + FP)\n", encoding="utf-8")
    cards = load(export, "old.txt").cards
    assert [(c.question, c.answer) for c in cards] == [
        ("What is recall?", "TP / (TP + FN)"),
        ("What is precision?", "TP / (TP + FP)"),
    ]


def test_ingest_summary_counts_and_unquestioned(store: CardStore, tmp_path: Path) -> None:
    notes = tmp_path / "lecture.md"
    notes.write_text(
        "# Lecture 1\n\nWelcome to the course, these notes collect everything from the first week of lectures.\n\n"
        "## Dropout\nZeroing activations at random.\n\nQ: What is BPE?\nA: Byte-pair encoding.\n",
        encoding="utf-8",
    )
    summary = ingest([notes], store, tmp_path)
    assert (summary.cards, summary.generated, summary.per_file) == (2, 1, {"lecture.md": 2})
    assert summary.unquestioned == ["lecture.md: line 3"]
    assert summary.as_dict()["unquestioned"] == ["lecture.md: line 3"]


def test_cli_cards_on_lecture_notes_and_a_pdf(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from bot.adapters.cli import cli

    lecture = Path(__file__).parent / "data" / "dev_notes" / "lecture.md"
    result = CliRunner().invoke(cli, ["cards", str(lecture)], catch_exceptions=False)
    assert result.exit_code == 0 and "What is teacher forcing? [generated]" in result.stdout
    pdf = tmp_path / "notes.pdf"
    write_pdf(pdf, [["Intro"], ["What is dropout?", "Randomly zeroing activations."]])
    result = CliRunner().invoke(cli, ["cards", str(pdf)], catch_exceptions=False)
    assert result.exit_code == 0 and "What is dropout?" in result.stdout and "notes.pdf p. 2)" in result.stdout


def test_pages_are_shown_where_a_source_is_shown(tmp_path: Path) -> None:
    from bot.adapters.views import source_line

    pdf = tmp_path / "notes.pdf"
    write_pdf(pdf, [["Intro"], ["What is dropout?", "Randomly zeroing activations."]])
    card = load(pdf, "notes.pdf").cards[0]
    assert source_line(card) == "notes.pdf, page 2"
