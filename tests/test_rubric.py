"""The compiled rubric (bot/grading/rubric.py), where it is stored (rubric_book.py) and both graders
grading against it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bot.grading.base import SCORE_WEIGHTS, Claim, ClaimStatus, Criteria, GradeRequest, compute_score
from bot.grading.keypoints import content_stems, tokens
from bot.grading.llm import LLMGrader
from bot.grading.rubric import (
    MAX_POINTS,
    MIN_POINT_WORDS,
    KeyPoint,
    Rubric,
    compile_rubric,
    dangling,
    near_duplicate,
)
from bot.grading.rubric_book import RubricBook, RubricError
from bot.knowledge.cards import Card
from bot.knowledge.notes import parse_file, parse_notes


@pytest.fixture(scope="module")
def shipped(real_notes: Path) -> list[Card]:
    return [c for c in parse_file(real_notes, "notes") if c.has_answer]


def test_every_answered_card_gets_two_to_six_points(shipped: list[Card]) -> None:
    """2–6 points, except a note whose whole answer is one short clause ("I use Box-Cox transformation."):
    it cannot be cut into two whole clauses of four words, so it is one point."""
    single = []
    for card in shipped:
        rubric = compile_rubric(card)
        assert 1 <= len(rubric.points) <= MAX_POINTS, card.display_question
        if len(rubric.points) == 1:
            single.append(card)
            assert len(card.answer.split()) <= 35, card.display_question
    assert len(single) <= len(shipped) // 5, [c.display_question for c in single]


def test_every_point_is_a_whole_clause_of_four_words_or_more(shipped: list[Card]) -> None:
    for card in shipped:
        for point in compile_rubric(card).points:
            if len(card.answer.split()) >= MIN_POINT_WORDS:
                assert len(point.text.split()) >= MIN_POINT_WORDS, (card.display_question, point.text)
            assert point.text[0].isupper() or point.text[0].isdigit(), point.text
            assert point.text.endswith((".", "!")), point.text
            verbatim = tokens(point.text) == tokens(card.answer)  # a one-clause note kept as written
            assert verbatim or not dangling(point.text), point.text
            assert point.lines and all(card.source.line_start <= n <= card.source.line_end for n in point.lines), point


def test_no_two_points_are_near_duplicates(shipped: list[Card]) -> None:
    for card in shipped:
        points = compile_rubric(card).points
        for i, a in enumerate(points):
            for b in points[i + 1 :]:
                assert not near_duplicate(a.text, b.text), (a.text, b.text)


def test_labels_are_short_noun_phrases(shipped: list[Card]) -> None:
    from bot.grading.rubric import _words

    bad_ends = _words()["dangling"] | _words()["pronouns"] | _words()["verbs"]
    for card in shipped:
        labels = [p.label for p in compile_rubric(card).points]
        assert len({lab.lower() for lab in labels}) == len(labels), labels
        for label in labels:
            words = label.lower().split()
            assert 1 <= len(words) <= 5, label
            assert words[0] not in bad_ends and words[-1] not in bad_ends, label


def test_shouting_is_normalised_and_acronyms_kept(shipped: list[Card]) -> None:
    for card in shipped:
        for point in compile_rubric(card).points:
            upper = [w for w in point.text.split() if w.isalpha() and w.isupper() and len(w) > 4]
            assert len(upper) <= 2, point.text
    card = next(c for c in shipped if c.display_question == "What is the forward propogation?")
    text = compile_rubric(card).points[0].text
    assert "multiply" in text.lower() and "ACTIVATION" not in text


def test_worked_examples_and_notes_to_self_are_details() -> None:
    notes = (
        "what is dropout?\n"
        "Dropout switches off a random fraction of the neurons during training.\n"
        "It keeps the network from relying on any single neuron, which reduces overfitting.\n"
        "for example if i use dropout(0.3) then 30 percent of 100 neurons = 30 are off.\n"
        "REMEMBER DONT CONFUSE DROPOUT WITH EARLY STOPPING IN THE INTERVIEW.\n"
    )
    card = parse_notes(notes, "t")[0]
    rubric = compile_rubric(card)
    weights = {p.text.split()[0].lower(): p.weight for p in rubric.points}
    assert weights["dropout"] == "core" and weights["it"] == "core"
    assert all(p.weight == "detail" for p in rubric.points if "30" in p.text or "confuse" in p.text.lower())
    assert rubric.gist.startswith("Dropout switches off")


def test_hard_wrapped_lines_are_rebuilt_into_sentences() -> None:
    notes = (
        "what is regularization?\n"
        "Regularization adds a penalty term to the loss function so the model\n"
        "does not overweight any single feature.\n"
        "It trades a little bias for a large reduction in variance.\n"
    )
    card = parse_notes(notes, "t")[0]
    texts = [p.text for p in compile_rubric(card).points]
    assert texts[0] == (
        "Regularization adds a penalty term to the loss function so the model does not overweight any single feature."
    )
    assert compile_rubric(card).points[0].lines == [card.source.line_start + 1, card.source.line_start + 2]


def test_near_duplicate_definition() -> None:
    assert near_duplicate("Dropout switches off random neurons.", "Dropout switches off the random neurons!")
    assert not near_duplicate("Dropout switches off random neurons.", "Early stopping halts training early.")
    assert set(content_stems("Weights scale inputs")) <= set(content_stems("Weights scale the inputs of a layer"))
    assert near_duplicate("Weights scale inputs strongly.", "Weights scale the inputs of a layer strongly.")


# --- storage -------------------------------------------------------------------------------------------


def _card(answer: str) -> Card:
    return parse_notes(f"what is dropout?\n{answer}\n", "t")[0]


ANSWER = "Dropout switches off random neurons during training. It reduces overfitting of the network."


def test_compiled_once_per_card_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.grading.rubric_book as rb

    calls = []
    real = rb.compile_rubric
    monkeypatch.setattr(rb, "compile_rubric", lambda c: calls.append(c.id) or real(c))
    card = _card(ANSWER)
    assert RubricBook(tmp_path).compiled(card) == RubricBook(tmp_path).compiled(card)  # second book: from file
    assert len(calls) == 1
    changed = _card(ANSWER + " Use a rate of 0.2 to 0.5 as a rule of thumb.")
    assert changed.id == card.id and RubricBook(tmp_path).compiled(changed).card_hash == changed.content_hash()
    assert len(calls) == 2


def test_user_edits_survive_reingest_and_go_stale_when_the_note_changes(tmp_path: Path) -> None:
    book = RubricBook(tmp_path)
    card = _card(ANSWER)
    edited = book.compiled(card).model_copy(
        update={"points": [KeyPoint(text="Dropout zeroes random activations while training.", label="dropout")]}
    )
    stored = book.edit(card, "ann", edited)
    assert stored.compiled_by == "user" and stored.version == 2 and not stored.stale
    assert RubricBook(tmp_path).for_user(card, "ann").texts == ["Dropout zeroes random activations while training."]
    assert RubricBook(tmp_path).for_user(card, "bob").compiled_by == "heuristic"  # per user
    reingested = _card(ANSWER)  # same note parsed again: same hash
    assert RubricBook(tmp_path).for_user(reingested, "ann").compiled_by == "user"
    changed = _card(ANSWER + " It is switched off at inference time.")
    edit = RubricBook(tmp_path).user_edit(changed, "ann")
    assert edit is not None and edit.stale
    assert RubricBook(tmp_path).for_user(changed, "ann").compiled_by == "heuristic"


def test_an_edit_for_another_card_is_refused(tmp_path: Path) -> None:
    book = RubricBook(tmp_path)
    card = _card(ANSWER)
    other = book.compiled(card).model_copy(update={"card_id": "nope"})
    with pytest.raises(RubricError, match="not"):
        book.edit(card, "ann", other)
    with pytest.raises(ValueError):
        Rubric(card_id="x", card_hash="h", points=[])


def test_files_are_written_whole(tmp_path: Path) -> None:
    book = RubricBook(tmp_path)
    card = _card(ANSWER)
    book.edit(card, "a/b", book.compiled(card))
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == [f"compiled/{card.id}.json", f"users/a_b/{card.id}.json"]
    assert json.loads((tmp_path / files[1]).read_text())["compiled_by"] == "user"


# --- scoring -----------------------------------------------------------------------------------------------


def _claims(core: list[str], detail: list[str]) -> list[Claim]:
    return [Claim(point=f"c{i}", status=ClaimStatus(s), weight="core") for i, s in enumerate(core)] + [
        Claim(point=f"d{i}", status=ClaimStatus(s), weight="detail") for i, s in enumerate(detail)
    ]


def test_core_points_dominate_and_details_add_depth() -> None:
    good = Criteria(correctness=3, depth=1)
    all_core = compute_score(_claims(["hit", "hit"], ["missed", "missed"]), good)
    all_detail = compute_score(_claims(["missed", "missed"], ["hit", "hit"]), good)
    everything = compute_score(_claims(["hit", "hit"], ["hit", "hit"]), good)
    assert all_core >= 7.5 > all_detail
    assert everything > all_core
    assert all_core == round(10 * (0.6 * SCORE_WEIGHTS.core_share + 0.3 + 0.05), 1)
    # no details in the rubric: the core carries all of the coverage
    assert compute_score(_claims(["hit", "missed"], []), good) == compute_score(
        [Claim(point="a", status=ClaimStatus.HIT), Claim(point="b", status=ClaimStatus.MISSED)], good
    )


def test_credit_counts_partially() -> None:
    good = Criteria(correctness=3, depth=1)
    half = [Claim(point="a", status=ClaimStatus.MISSED, credit=0.5, weight="core")]
    assert compute_score(half, good) == round(10 * (0.6 * 0.5 + 0.3 + 0.05), 1)


# --- both graders, one rubric --------------------------------------------------------------------------------


def _rubric(card_id: str = "c1") -> Rubric:
    return Rubric(
        card_id=card_id,
        card_hash="h",
        gist="Dropout switches off random neurons during training.",
        points=[
            KeyPoint(text="Dropout switches off random neurons during training.", label="random neurons"),
            KeyPoint(text="It reduces overfitting of the network.", label="overfitting"),
            KeyPoint(text="A rate of 0.5 is a common default value.", label="dropout rate", weight="detail"),
        ],
    )


REQ = GradeRequest(
    question="What is dropout?",
    reference=ANSWER + " A rate of 0.5 is a common default value.",
    answer="During training it randomly turns off some neurons, so the network can't overfit by leaning on any one.",
    rubric=_rubric(),
)


def test_offline_grader_marks_the_rubric_points(local_embedder: Any) -> None:
    from bot.grading.offline.grader import OfflineGrader

    grader = OfflineGrader(local_embedder)
    grade = grader.grade(REQ)
    assert [c.point for c in grade.claims] == REQ.rubric.texts if REQ.rubric else False
    assert [c.label for c in grade.claims] == ["random neurons", "overfitting", "dropout rate"]
    assert [c.weight for c in grade.claims] == ["core", "core", "detail"]
    assert all(c.credit is not None for c in grade.claims)
    assert grade.score is not None and grade.score >= 7.5  # own words, both core points, no example
    again = grader.grade(REQ)
    assert again.claims == grade.claims and again.score == grade.score  # same answer + rubric → same checklist
    wrong = grader.grade(REQ.model_copy(update={"answer": "Dropout is a learning rate schedule for Adam."}))
    assert wrong.score is not None and wrong.score < 4
    keywords = grader.grade(REQ.model_copy(update={"answer": "dropout neurons training overfitting network rate"}))
    assert keywords.score is not None and keywords.score < 2


def _llm_reply(statuses: list[str]) -> str:
    return json.dumps(
        {
            "reasoning": "r",
            "key_points": [
                {"point": f"my own wording {i}", "status": s, "evidence": "e"} for i, s in enumerate(statuses)
            ],
            "correctness": 3,
            "depth": 1,
            "misconceptions": [],
            "feedback": "f",
            "model_answer": "m",
            "reference_issue": "",
        }
    )


async def test_llm_grader_gets_the_points_and_marks_them_by_index(fake_chat: Any, token_counter: Any) -> None:
    chat = fake_chat([_llm_reply(["hit", "missed"]), _llm_reply(["hit", "hit", "missed"])])
    grader = LLMGrader(chat, model_name="gpt-4o-mini", counter=token_counter)
    grade = await grader.agrade(REQ)
    prompt = str(chat.calls[0]["messages"][-1].content)
    assert '<key_points source="the card\'s rubric" count="3">' in prompt
    assert "1. [core] Dropout switches off random neurons during training." in prompt
    assert "3. [detail] A rate of 0.5" in prompt
    assert len(chat.calls) == 2  # two points for a rubric of three: rejected, asked again
    assert [c.point for c in grade.claims] == REQ.rubric.texts if REQ.rubric else False
    assert [c.status.value for c in grade.claims] == ["hit", "hit", "missed"]
    assert [c.weight for c in grade.claims] == ["core", "core", "detail"]
    assert grade.score == compute_score(grade.claims, Criteria(correctness=3, depth=1))


async def test_llm_grader_without_a_rubric_lists_its_own_points(fake_chat: Any, token_counter: Any) -> None:
    chat = fake_chat([_llm_reply(["hit", "missed"])])
    grader = LLMGrader(chat, model_name="gpt-4o-mini", counter=token_counter)
    grade = await grader.agrade(REQ.model_copy(update={"rubric": None}))
    assert "<key_points" not in str(chat.calls[0]["messages"][-1].content)
    assert [c.point for c in grade.claims] == ["my own wording 0", "my own wording 1"]


# --- offline follow-ups and hints from labels ------------------------------------------------------------


def _well_formed_question(text: str) -> None:
    from bot.grading.rubric import _words

    assert text.endswith("?"), text
    for sentence in re.split(r"(?<=[.?!])\s+", text):
        words = tokens(sentence)
        assert len(words) >= 3, (sentence, text)
        assert words[-1] not in _words()["dangling"], (sentence, text)  # nothing cut mid-way
    assert "  " not in text and ",," not in text and " ," not in text, text


async def test_offline_follow_up_and_hint_are_well_formed_for_every_shipped_card(shipped: list[Card]) -> None:
    from bot.grading.followups import OfflineFollowUps, hint_text

    writer = OfflineFollowUps()
    for card in shipped:
        rubric = compile_rubric(card)
        for point in rubric.points:
            follow_up = await writer.write(card, "I am not sure.", [point.text])
            _well_formed_question(follow_up)
            assert point.label in follow_up and point.text not in follow_up  # names the point, doesn't give it away
            hint = hint_text(point.label)
            _well_formed_question(hint)
            assert point.label in hint


async def test_follow_up_for_a_point_without_a_label_gets_one(shipped: list[Card]) -> None:
    from bot.grading.followups import OfflineFollowUps

    card = shipped[0]
    text = await OfflineFollowUps().write(card, "", ["Backpropagation multiplies the derivatives of every layer."])
    _well_formed_question(text)
    assert "derivatives" in text or "backpropagation" in text.lower()
