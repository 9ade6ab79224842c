"""Notes → cards: the user's real notes and the other common formats."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from pathlib import Path

import pytest

from bot.knowledge.cards import Card
from bot.knowledge.notes import parse_file, parse_notes
from bot.knowledge.text import NotesDecodeError, decode_notes, display_question, normalize_for_search
from bot.knowledge.topics import GENERAL

DATA = Path(__file__).parent / "data" / "notes"


@pytest.fixture(scope="module")
def cards(real_notes: Path) -> list[Card]:
    return parse_file(real_notes, "ml-interview-notes.txt")


def by_line(cards: list[Card], line: int) -> Card:
    matches = [c for c in cards if c.source.line_start == line]
    assert matches, f"no card starts at line {line}"
    return matches[0]


def question_lines(path: Path) -> list[int]:
    """Independent count of explicit questions: lines ending in '?' (bar '?:' sub-headings)."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        s = line.strip()
        if re.search(r"\?\s*(\(e\.g\.[^)]*\))?$", s):
            out.append(n)
    return out


def test_every_explicit_question_becomes_a_card(cards: list[Card], real_notes: Path) -> None:
    starts = {c.source.line_start for c in cards}
    missing = [n for n in question_lines(real_notes) if n not in starts]
    assert missing == []
    assert 85 <= len([c for c in cards if "generated" not in c.flags]) <= 95


def test_inline_term_questions(cards: list[Card]) -> None:
    tok = by_line(cards, 231)
    assert tok.display_question == "What is tokkenization?"
    assert tok.answer.startswith("CONVERTING SENTENCES INTO WORDS")
    assert by_line(cards, 233).answer == "LIKE TO OF GO THE"
    rnn = by_line(cards, 358)
    assert rnn.display_question == "What are types of RNN?"
    assert "ONE TO ONE RNN" in rnn.answer


def test_answers_never_run_into_the_next_question(cards: list[Card], real_notes: Path) -> None:
    lines = real_notes.read_text(encoding="utf-8").splitlines()
    ordered = sorted(cards, key=lambda c: c.source.line_start)
    for card, nxt in itertools.pairwise(ordered):
        assert card.source.line_end < nxt.source.line_start
        assert lines[nxt.source.line_start - 1].strip() not in card.answer


def test_questions_without_answers_are_flagged_not_filled(cards: list[Card]) -> None:
    genai = [c for c in cards if 705 <= c.source.line_start <= 730]
    assert len(genai) == 16
    assert all("no_answer" in c.flags and c.answer == "" for c in genai)
    assert sum("no_answer" in c.flags for c in cards) == 16
    # A neighbour's text is never borrowed: the first GenAI question has its own answer.
    first = by_line(cards, 639)
    assert "no_answer" not in first.flags
    assert "Generative models aim to simulate" in first.answer
    assert "Discriminative models focus" in first.answer


def test_importance_markers(cards: list[Card]) -> None:
    important = {c.source.line_start for c in cards if c.important}
    assert {68, 101, 181, 207, 338} <= important
    assert 71 not in important  # the marker applies to the next question only


def test_section_headers_end_answers(cards: list[Card]) -> None:
    serverless = by_line(cards, 625)
    assert "DATABASES" not in serverless.answer  # "IMPORTANT DIFFERENT DATABASES" is a new section
    better = by_line(cards, 584)
    assert "LEARN ABOUT TRANSFORMERS" not in better.answer
    cos = by_line(cards, 309)
    assert "CBOW" not in cos.answer


def test_unrelated_trailing_paragraph_moves_to_extra(cards: list[Card]) -> None:
    forest = by_line(cards, 351)
    assert forest.answer.startswith("cuz desicion tree")
    assert "Data mining" not in forest.answer and "Data mining" in forest.extra


def test_multi_paragraph_answers_are_kept_whole(cards: list[Card]) -> None:
    reg = by_line(cards, 181)
    assert "Types of Regularization" in reg.answer and "In summary" in reg.answer
    vg = by_line(cards, 101)
    assert "CHATGPT ANSWER" not in vg.answer and "In summary, the vanishing gradient" in vg.answer


def test_display_questions_are_clean(cards: list[Card]) -> None:
    for c in cards:
        d = c.display_question
        assert not d.startswith(("-", "#", "Q:", "*")), d
        assert "  " not in d and " ?" not in d, d
        shouted = [w for w in re.findall(r"[A-Za-z]{5,}", d) if w.isupper() and w not in {"LLMOPS"}]
        assert shouted == [], f"still shouting: {d}"
    assert by_line(cards, 101).display_question == "What is vanishing gradient problem?"
    assert by_line(cards, 1).display_question == "What is RAG?"
    assert by_line(cards, 238).display_question == "Why we use NER?"
    assert by_line(cards, 584).display_question.startswith("Why transformers is better than LSTM? Why")
    assert by_line(cards, 705).display_question == "How do you evaluate the performance of a generative AI model?"
    assert "important" in by_line(cards, 725).display_question  # a real word, not a marker


def test_unicode_math_letters_normalised_for_search_kept_for_display(cards: list[Card]) -> None:
    ve = by_line(cards, 754)
    assert "𝙑𝙚𝙘𝙩𝙤𝙧" in ve.answer  # original kept
    assert "Exploring Vector Embeddings in Machine Learning" in ve.search_text()
    assert normalize_for_search("𝗩𝗲𝗰𝘁𝗼𝗿  𝗘𝗺𝗯𝗲𝗱𝗱𝗶𝗻𝗴𝘀") == "Vector Embeddings"


def test_topics_are_meaningful(cards: list[Card]) -> None:
    counts = Counter(c.topic for c in cards)
    assert len([t for t in counts if t != GENERAL]) >= 5
    assert max(counts.values()) < len(cards) / 3, counts
    expect = {
        101: "Training & optimisation",
        25: "Neural network basics",
        231: "NLP & embeddings",
        448: "RNN & LSTM",
        542: "Transformers & attention",
        639: "GenAI & LLMs",
        382: "Classical ML & data",
        730: "GenAI & LLMs",
    }
    for line, topic in expect.items():
        assert by_line(cards, line).topic == topic, (line, by_line(cards, line).display_question)


def test_ids_are_stable_and_unique(cards: list[Card], real_notes: Path) -> None:
    again = parse_file(real_notes, "ml-interview-notes.txt")
    assert [c.id for c in cards] == [c.id for c in again]
    assert len({c.id for c in cards}) == len(cards)  # duplicate questions ("WHAT IS LOSS FUNCTION?") differ


def test_id_survives_answer_edit_and_changes_with_question() -> None:
    a = parse_notes("what is x?\nx is one.\n", "f.txt")[0]
    b = parse_notes("\n\nwhat is x?\nx is two, edited.\n", "f.txt")[0]
    c = parse_notes("what is y?\nx is one.\n", "f.txt")[0]
    assert a.id == b.id and a.content_hash() != b.content_hash()
    assert a.id != c.id


def test_markdown_formats() -> None:
    got = parse_file(DATA / "markdown.md", "markdown.md")
    qs = [c.display_question for c in got]
    assert qs == [
        "What is batch normalization?",
        "Why does dropout reduce overfitting?",
        "What is a learning rate schedule?",
        "What is weight decay?",
        "What is Adam?",
        "What is gradient clipping?",
    ]
    assert "It stabilises and speeds up training." in got[0].answer
    assert got[3].answer.startswith("An L2 penalty")
    assert got[4].important
    assert not got[5].has_answer
    assert got[0].source.line_start == 3 and got[0].source.line_end == 7


def test_qa_pairs() -> None:
    got = parse_file(DATA / "qa.txt", "qa.txt")
    assert [c.display_question for c in got] == [
        "What is precision?",
        "What is recall?",
        "What is the F1 score?",
        "What is a confusion matrix?",
        "Define ROC AUC",
    ]
    assert got[0].answer.startswith("Of the items predicted positive")
    assert got[2].answer == "The harmonic mean of precision and recall."
    assert not got[3].has_answer and got[3].answer == ""
    assert got[4].has_answer


def test_numbered_with_indented_answers() -> None:
    got = parse_file(DATA / "numbered.md", "numbered.md")
    assert [c.display_question for c in got] == [
        "What is bias-variance tradeoff?",
        "What is k-fold cross validation?",
        "What is a random forest?",
        "Why do we scale features for k-NN?",
    ]
    assert got[0].answer.startswith("Bias is error") and "\n" in got[0].answer
    assert not got[0].answer.startswith(" ")
    assert not got[2].has_answer
    assert got[3].answer == "Distances are dominated by features with large ranges."


def test_inline_qa_on_one_line_and_bullets() -> None:
    got = parse_notes(
        "Q: What is a GPU? A: A parallel processor.\n- what is a TPU?\n- why batch?\n  amortises cost\n", "x"
    )
    assert [(c.display_question, c.answer) for c in got] == [
        ("What is a GPU?", "A parallel processor."),
        ("What is a TPU?", ""),
        ("Why batch?", "amortises cost"),
    ]


@pytest.mark.parametrize(
    "raw",
    [
        b"what is x?\r\nx is a letter.\r\n",
        "\ufeffwhat is x?\nx is a letter.\n".encode(),
        b"what is x?\rx is a letter.\r",
    ],
)
def test_encodings_and_line_endings(raw: bytes) -> None:
    got = parse_notes(decode_notes(raw), "x")
    assert [(c.display_question, c.answer) for c in got] == [("What is x?", "x is a letter.")]


def test_latin1_fallback() -> None:
    text = decode_notes("what is a café?\nun café noir.\n".encode("latin-1"))
    assert "café" in text


def test_binary_is_rejected() -> None:
    with pytest.raises(NotesDecodeError):
        decode_notes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(NotesDecodeError):
        decode_notes(bytes(range(1, 32)) * 50)


def test_display_question_rules() -> None:
    assert display_question("WHAT IS LSTM AND RNN?") == "What is LSTM and RNN?"
    assert display_question("TFIDF?", term_only=True) == "What is TF-IDF?"
    assert display_question("  - **what is ml?**") == "What is ML?"
    assert display_question("## Q: how does adam work ?") == "How does Adam work?"
    assert display_question("#IMPORTANT what is dropout?") == "What is dropout?"
    assert display_question("cross validation?") == "What is cross validation?"


def test_strip_code_fence() -> None:
    from bot.knowledge.text import strip_code_fence

    assert strip_code_fence('```json\n{"a": 1}\n```\n') == '{"a": 1}'
    assert strip_code_fence('```\n{"a": 1}```') == '{"a": 1}'
    assert strip_code_fence(' {"a": "```"} ') == '{"a": "```"}'
