"""Concept cards: notes without question marks become generated questions."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from bot.knowledge.cards import FLAG_GENERATED
from bot.knowledge.concepts import concept_question, match_definition
from bot.knowledge.notes import Leftover, parse_notes

ROOT = Path(__file__).resolve().parent.parent


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("notes_recall", ROOT / "bench" / "notes_recall.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("term", "question"),
    [
        ("Teacher forcing", "What is teacher forcing?"),
        ("Explain precision and recall", "Explain precision and recall."),
        ("Perplexity vs cross-entropy", "Compare perplexity and cross-entropy."),
        ("Compare perplexity and cross-entropy", "Compare perplexity and cross-entropy."),
        ("Word embeddings", "What are word embeddings?"),
        ("Exposure bias", "What is exposure bias?"),
        ("How the KV cache works", "Explain how the KV cache works."),
        ("Difference between bagging and boosting", "What is the difference between bagging and boosting?"),
        ("3.2 Beam search", "What is beam search?"),
        ("ReLU", "What is ReLU?"),
        ("Logistic Regression:", "What is logistic regression?"),
        ("Long Short-Term Memory (LSTM)", "What is long short-term memory (LSTM)?"),
    ],
)
def test_generated_questions(term: str, question: str) -> None:
    assert concept_question(term) == question


@pytest.mark.parametrize(
    ("line", "term", "definition"),
    [
        (
            "Dropout: randomly zeroing activations during training",
            "Dropout",
            "randomly zeroing activations during training",
        ),
        ("Perplexity – the exponential of the cross-entropy", "Perplexity", "the exponential of the cross-entropy"),
        ("* Bagging - trains models on bootstrap samples", "Bagging", "trains models on bootstrap samples"),
        (
            "- **Dropout.** Randomly zeroes activations in training",
            "Dropout",
            "Randomly zeroes activations in training",
        ),
        ("**Softmax**: turns logits into probabilities", "Softmax", "turns logits into probabilities"),
        ("**Tokenization**", "Tokenization", ""),
        ("*Perplexity*: exp(cross-entropy)", "Perplexity", "exp(cross-entropy)"),
        ("Bagging -- bootstrap samples, one model each", "Bagging", "bootstrap samples, one model each"),
    ],
)
def test_definition_lines(line: str, term: str, definition: str) -> None:
    found = match_definition(line)
    assert found is not None and (found.term, found.definition) == (term, definition)


@pytest.mark.parametrize(
    "line",
    [
        "Note: this is important stuff",
        "The model is slow - use a GPU",
        "Interview prep: classical ML",
        "see: https://x.y",
    ],
)
def test_not_definitions(line: str) -> None:
    assert match_definition(line) is None


def test_concept_answer_runs_to_the_next_concept() -> None:
    notes = (
        "## Attention\nA weighted average of values.\n\nIt is differentiable.\n"
        "Self-attention: attention within one sequence.\n"
    )
    cards = parse_notes(notes, "n.md")
    assert [c.display_question for c in cards] == ["What is attention?", "What is self-attention?"]
    assert cards[0].answer == "A weighted average of values.\n\nIt is differentiable."
    assert all(FLAG_GENERATED in c.flags for c in cards)
    assert cards[1].answer == "attention within one sequence."


def test_explicit_questions_keep_priority() -> None:
    notes = (
        "## What is regularization?\nConstraints that reduce overfitting.\n"
        "Overfitting: when a model memorises the training set.\n### L2\nPenalises large weights.\n"
        "## Dropout\nZeroing activations at random.\n"
    )
    cards = parse_notes(notes, "n.md")
    assert [c.display_question for c in cards] == ["What is regularization?", "What is dropout?"]
    assert "Overfitting: when a model" in cards[0].answer and "Penalises large weights." in cards[0].answer
    assert FLAG_GENERATED not in cards[0].flags


def test_a_heading_with_nothing_under_it_is_only_a_section() -> None:
    cards = parse_notes("## Optimisers\n\n### What is Adam?\nMomentum plus RMSProp.\n", "n.md")
    assert [c.display_question for c in cards] == ["What is Adam?"]
    assert cards[0].section == "Optimisers"


def test_text_under_no_question_is_reported() -> None:
    leftovers: list[Leftover] = []
    prose = "Some long prose about the course that has no question and no concept in it at all here.\n"
    cards = parse_notes("WHAT IS X?\nX is a thing.\n\n#misc\n" + prose, "n.txt", leftovers=leftovers)
    assert len(cards) == 1
    assert leftovers == [Leftover(line_start=5, line_end=5, section="misc", words=18)]


@pytest.mark.parametrize(("name", "key"), [("mixed.md", "questions"), ("lecture.md", "concepts")])
def test_development_notes_recall(name: str, key: str) -> None:
    bench = _bench()
    found, total, missing = bench.recall(bench.DEV_NOTES / name, key)
    assert missing == [] and found == total and total >= 18


def test_a_term_line_with_the_definition_below() -> None:
    cards = parse_notes("Overfitting:\nWhen a model memorises the training set.\n", "n.md")
    assert [(c.display_question, c.answer) for c in cards] == [
        ("What is overfitting?", "When a model memorises the training set.")
    ]


def test_an_imperative_sub_heading_is_a_question_of_its_own() -> None:
    notes = "## What is a metric?\nA number that scores predictions.\n### Explain precision and recall\nTwo rates.\n"
    cards = parse_notes(notes, "n.md")
    assert [(c.display_question, c.answer) for c in cards] == [
        ("What is a metric?", "A number that scores predictions."),
        ("Explain precision and recall.", "Two rates."),
    ]
