"""The offline judge: the committed model, its card, batching, and how the offline grader uses it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from bot.grading.base import ClaimStatus, GradeRequest
from bot.grading.judge import CLASSES, JUDGE_DIR, Judge, Verdicts, encode_pairs, load_pair_tokenizer
from bot.grading.rubric import KeyPoint, Rubric

MAX_BYTES = 25 * 1024 * 1024


@pytest.fixture(scope="module")
def judge() -> Judge:
    return Judge()


def test_the_committed_model_matches_its_card() -> None:
    meta = json.loads((JUDGE_DIR / "judge.json").read_text(encoding="utf-8"))
    model = (JUDGE_DIR / "judge.onnx").read_bytes()
    assert hashlib.sha256(model).hexdigest() == meta["sha256"]
    assert len(model) <= MAX_BYTES
    card = (JUDGE_DIR / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert meta["sha256"] in card
    assert "unseen" in card and "Hyperparameters" in card
    assert meta["classes"] == list(CLASSES)


def test_pairs_are_cut_on_the_longer_side() -> None:
    tok = load_pair_tokenizer(JUDGE_DIR / "tokenizer.json")
    short, long_ = "dropout reduces overfitting", "word " * 400
    [(ids, types)] = encode_pairs(tok, [(short, long_)], max_tokens=64)
    assert len(ids) == len(types) == 64
    assert ids[0] == 101 and ids.count(102) == 2 and ids[-1] == 102
    first = ids.index(102)
    assert first == 1 + len(tok.encode(short, add_special_tokens=False).ids)  # the short side kept whole
    assert types[: first + 1] == [0] * (first + 1) and set(types[first + 1 :]) == {1}


def test_verdicts_are_probabilities_and_the_same_whatever_the_batch(judge: Judge) -> None:
    pairs = [
        ("Dropout switches off random neurons during training.", "It turns off random neurons while training."),
        ("Dropout switches off random neurons during training.", "The capital of France is Paris. " * 40),
        ("Terminal 1 and the positive terminal are separated by a gap.", "They are connected."),
    ]
    together = judge.judge(pairs)
    assert together.probs.shape == (3, len(CLASSES)) and together.score.shape == (3,)
    assert np.allclose(together.probs.sum(axis=1), 1.0, atol=1e-5)
    assert ((together.score >= 0) & (together.score <= 1)).all()
    alone = [judge.judge([p]) for p in pairs]
    for i, one in enumerate(alone):
        assert np.allclose(one.probs[0], together.probs[i], atol=1e-4)
    assert judge.judge([]).probs.shape == (0, len(CLASSES))


def test_a_paraphrase_is_judged_closer_than_an_unrelated_answer(judge: Judge) -> None:
    v = judge.judge(
        [
            ("Dropout switches off random neurons during training.", "It randomly turns off neurons in training."),
            ("Dropout switches off random neurons during training.", "Paris is the capital of France."),
        ]
    )
    assert v.of("entails")[0] > v.of("entails")[1]
    assert v.score[0] > v.score[1]


class RuleJudge:
    """A fake judge that computes its verdict from the pair it receives (FunctionModel style): an answer
    containing the point's ``contra`` word contradicts it, one containing its ``hit`` word entails it."""

    def __init__(self, rules: dict[str, tuple[str, str]]) -> None:
        self.rules = rules
        self.calls: list[list[tuple[str, str]]] = []

    def judge(self, pairs: Sequence[tuple[str, str]]) -> Verdicts:
        self.calls.append(list(pairs))
        probs = np.zeros((len(pairs), 4), dtype=np.float32)
        for i, (point, answer) in enumerate(pairs):
            hit, contra = self.rules.get(point, ("\0", "\0"))
            cls = 2 if contra in answer else 0 if hit in answer else 3
            probs[i] = 0.02
            probs[i, cls] = 0.94
        return Verdicts(probs, probs[:, 0] + 0.5 * probs[:, 1])


RUBRIC = Rubric(
    card_id="c1",
    card_hash="h",
    points=[
        KeyPoint(text="A black-box model is one whose internals cannot be interpreted.", label="black-box model"),
        KeyPoint(text="Deep neural networks are typical black-box models.", label="typical examples"),
    ],
)


def _grader(local_embedder: Any, judge: RuleJudge, **params: Any) -> Any:
    import dataclasses

    from bot.grading.offline.grader import OfflineGrader
    from bot.grading.offline.params import OfflineParams

    off = dict(judge_weight=0.0, judge_contradiction=2.0, judge_answer_contradiction=2.0, judge_answer_weight=0.0)
    neutral = dataclasses.replace(OfflineParams.load(), **off, rubric_scale_lo=0.0, rubric_scale_hi=1.0)
    return OfflineGrader(local_embedder, params=dataclasses.replace(neutral, **params), judge=judge)


def _request(answer: str) -> GradeRequest:
    return GradeRequest(
        question="What is a black-box model?",
        reference=" ".join(RUBRIC.texts),
        answer=answer,
        rubric=RUBRIC,
    )


def test_the_judge_marks_a_confident_misconception_contradicted(local_embedder: Any) -> None:
    rules = {RUBRIC.points[0].text: ("cannot", "read fully"), RUBRIC.points[1].text: ("neural", "\0")}
    fake = RuleJudge(rules)
    grader = _grader(local_embedder, fake, judge_weight=0.8, judge_contradiction=0.5)
    wrong = grader.grade(
        _request("A black-box model is one you can read fully, like linear regression, and deep neural nets too.")
    )
    assert [c.status for c in wrong.claims] == [ClaimStatus.CONTRADICTED, ClaimStatus.HIT]
    assert "read fully" in wrong.claims[0].evidence
    assert wrong.misconceptions and wrong.score is not None and wrong.score < 4
    right = grader.grade(_request("Its internals cannot be interpreted by people; deep neural networks are like that."))
    assert [c.status for c in right.claims] == [ClaimStatus.HIT, ClaimStatus.HIT]
    assert right.score is not None and right.score >= 7.5
    assert all(len(call) == 2 for call in fake.calls)  # one pair per key point, one batch per grade


def test_without_judge_weight_the_verdicts_do_not_move_the_score(local_embedder: Any) -> None:
    answer = "Its internals cannot be interpreted by people; deep neural networks are like that."
    rules = {RUBRIC.points[0].text: ("\0", "cannot"), RUBRIC.points[1].text: ("\0", "neural")}  # all contradicted
    off = _grader(local_embedder, RuleJudge(rules), judge_weight=0.0, judge_contradiction=2.0).grade(_request(answer))
    on = _grader(local_embedder, RuleJudge(rules), judge_weight=0.8, judge_contradiction=0.5).grade(_request(answer))
    assert ClaimStatus.CONTRADICTED not in [c.status for c in off.claims]
    assert [c.status for c in on.claims] == [ClaimStatus.CONTRADICTED, ClaimStatus.CONTRADICTED]
    assert on.score is not None and off.score is not None and on.score < off.score


def test_the_judge_on_the_whole_answer_marks_the_nearest_point_contradicted(local_embedder: Any) -> None:
    reference = " ".join(RUBRIC.texts)
    fake = RuleJudge({reference: ("cannot", "read fully")})  # only the (whole reference, answer) pair speaks
    grader = _grader(local_embedder, fake, judge_answer_contradiction=0.5)
    wrong = grader.grade(_request("A black-box model is one whose internals you can read fully, like a linear model."))
    assert [c.status for c in wrong.claims] == [ClaimStatus.CONTRADICTED, ClaimStatus.MISSED]
    assert wrong.misconceptions and wrong.score is not None and wrong.score < 4
    right = grader.grade(_request("Its internals cannot be interpreted by people; deep neural networks are like that."))
    assert ClaimStatus.CONTRADICTED not in [c.status for c in right.claims]
    assert fake.calls[-1] == [
        (reference, "Its internals cannot be interpreted by people; deep neural networks are like that.")
    ]
    off = _grader(
        local_embedder, RuleJudge({reference: ("cannot", "read fully")}), judge_answer_contradiction=2.0
    ).grade(_request("A black-box model is one whose internals you can read fully, like a linear model."))
    assert ClaimStatus.CONTRADICTED not in [c.status for c in off.claims]  # above 1: not used


def test_the_judge_score_of_the_whole_answer_moves_the_grade_by_its_weight(local_embedder: Any) -> None:
    reference = " ".join(RUBRIC.texts)
    answer = "Nobody can follow what happens inside it; large neural networks are the usual case."
    fake = RuleJudge({reference: ("Nobody", "\0")})  # the whole answer entails the reference: score 0.95
    without = _grader(local_embedder, fake, judge_answer_weight=0.0).grade(_request(answer))
    half = _grader(local_embedder, fake, judge_answer_weight=0.5).grade(_request(answer))
    assert without.score is not None and half.score is not None
    assert half.score == pytest.approx(0.5 * without.score + 0.5 * 10 * 0.95, abs=0.06)
    wrong = "Nobody needs to interpret it: you can read its internals fully, like a linear model."
    contra = RuleJudge({reference: ("Nobody", "read its internals fully")})
    capped = _grader(local_embedder, contra, judge_answer_weight=0.9, judge_answer_contradiction=0.5).grade(
        _request(wrong)
    )
    assert capped.score is not None and capped.score < 4  # a contradiction still caps the blend


def _write_interview(path: Any) -> None:
    rows = [
        {"question": f"What is {t}?", "reference": f"{t} is a thing.", "kind": kind, "answer": f"{t} {kind} answer"}
        for t in ("dropout", "attention", "bagging")
        for kind in ("correct", "thin", "misconception")
    ]
    path.write_text("".join(json.dumps({**r, "source": "team-written"}) + "\n" for r in rows))


def test_the_interview_answers_train_by_their_kind_with_other_questions_answers_as_missing(tmp_path: Any) -> None:
    from bot.install import judge_train

    path = tmp_path / "interview.jsonl"
    _write_interview(path)
    examples = judge_train.load_interview(path, seed=13)
    kinds = {(e.question_id, e.answer): (e.label, e.score) for e in examples}
    assert kinds[("What is dropout?", "dropout correct answer")] == (judge_train.ENTAILS, 1.0)
    assert kinds[("What is dropout?", "dropout thin answer")] == (judge_train.PARTIAL, 0.5)
    assert kinds[("What is dropout?", "dropout misconception answer")] == (judge_train.CONTRADICTS, 0.0)
    missing = [e for e in examples if e.label == judge_train.MISSING]
    assert len(missing) == 3 * judge_train.INTERVIEW_MISSING
    for e in missing:  # another question's correct answer, against this question's reference
        assert e.answer.endswith("correct answer") and e.answer.split()[0] not in e.question_id
        assert e.reference == e.question_id.removeprefix("What is ").rstrip("?") + " is a thing."
    assert examples == judge_train.load_interview(path, seed=13)  # seeded


def test_the_key_point_sentences_train_against_their_point_with_other_points_as_missing(tmp_path: Any) -> None:
    from bot.install import judge_train

    rows = [
        {"question": "What is dropout?", "k": k, "point": point, "kind": kind, "text": f"{k}-{kind}-{i}"}
        for k, point in enumerate(("It drops units at random.", "It is off at inference."))
        for kind in ("paraphrase", "contradiction")
        for i in range(2)
    ]
    path = tmp_path / "points.jsonl"
    path.write_text("".join(json.dumps({**r, "source": "team-written"}) + "\n" for r in rows))
    examples = judge_train.load_points(path, seed=13)
    assert len(examples) == 2 * 5 and {e.dataset for e in examples} == {"interview"}
    assert {e.question_id for e in examples} == {"What is dropout?"}  # held out with its question's answers
    by_point = {
        k: [e for e in examples if e.reference == point]
        for k, point in enumerate(("It drops units at random.", "It is off at inference."))
    }
    for k, own in by_point.items():
        other = 1 - k
        labelled = {(e.label, e.answer) for e in own}
        assert (judge_train.ENTAILS, f"{k}-paraphrase-0") in labelled  # the first alone
        assert (judge_train.CONTRADICTS, f"{k}-contradiction-0") in labelled
        second = [e for e in own if f"{k}-paraphrase-1" in e.answer or f"{k}-contradiction-1" in e.answer]
        assert all(f"{other}-paraphrase-" in e.answer for e in second)  # beside another point's paraphrase
        (missing,) = [e for e in own if e.label == judge_train.MISSING]
        assert f"{other}-paraphrase-" in missing.answer and f"{other}-contradiction-" in missing.answer
        assert f"{k}-" not in missing.answer and missing.score == 0.0
    assert examples == judge_train.load_points(path, seed=13)  # seeded


def test_the_minimal_edits_train_the_note_s_own_words_as_entails_and_the_edit_as_contradicts(tmp_path: Any) -> None:
    from bot.install import judge_train

    points = ("It drops units at random.", "It is off at inference.", "It fights overfitting.")
    edits = ("It drops layers at random.", "It is on at inference.", "It causes overfitting.")
    path = tmp_path / "edits.jsonl"
    path.write_text(
        "".join(
            json.dumps({"question": "What is dropout?", "k": k, "point": p, "kind": "edit", "text": e}) + "\n"
            for k, (p, e) in enumerate(zip(points, edits, strict=True))
        )
    )
    examples = judge_train.load_edits(path, seed=13)
    assert len(examples) == 3 * 3 and {e.dataset for e in examples} == {"interview"}
    assert {e.question_id for e in examples} == {"What is dropout?"}
    for k, point in enumerate(points):
        own = {e.label: e for e in examples if e.reference == point}
        assert set(own) == {judge_train.ENTAILS, judge_train.CONTRADICTS, judge_train.MISSING}
        assert point in own[judge_train.ENTAILS].answer and edits[k] not in own[judge_train.ENTAILS].answer
        assert edits[k] in own[judge_train.CONTRADICTS].answer and own[judge_train.CONTRADICTS].score == 0.0
        missing = own[judge_train.MISSING].answer
        assert point not in missing and edits[k] not in missing  # other points' words and edits only
        assert any(p in missing for p in points) and any(e in missing for e in edits)
    assert examples == judge_train.load_edits(path, seed=13)  # seeded


def test_a_recorded_config_without_key_points_does_not_read_them() -> None:
    from bot.install import judge_train

    assert judge_train.recorded_config({"interview": "x.jsonl"}).points == ""
    assert judge_train.recorded_config({"interview": "x.jsonl", "points": "p.jsonl"}).points == "p.jsonl"
    assert judge_train.recorded_config({"interview": "x.jsonl", "points": "p.jsonl"}).edits == ""


@pytest.mark.slow
def test_training_is_seeded_and_exports_a_model_the_run_time_reads(tmp_path: Any) -> None:
    """A tiny run of the real training code: same seed → same weights; the export loads in onnxruntime."""
    from bot.install import judge_train

    data = tmp_path / "data"
    data.mkdir()
    rows = []
    for i in range(12):
        label = ["correct", "contradictory", "partially_correct_incomplete", "irrelevant"][i % 4]
        for ds in ("beetle", "sciEntsBank"):
            rows.append(
                {
                    "dataset": ds,
                    "split": "train",
                    "question_id": f"q{i % 3}",
                    "reference_answer": "The bulb is in a closed path with the battery.",
                    "student_answer": f"answer {i} the bulb is {'not ' if i % 4 == 1 else ''}in a closed path",
                    "score": 1.0 if label == "correct" else 0.0,
                    "label_5way": label if ds == "beetle" else None,
                }
            )
        rows.append({**rows[-1], "split": "test-unseen-domains", "reference_answer": "never read"})
    (data / "semeval2013-2way.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    saf = [
        {
            "split": "training",
            "question_id": f"s{i % 2}",
            "reference_answer": "TCP is reliable.",
            "student_answer": f"TCP {i}",
            "score": i / 6,
            "score_max": 1.0,
        }
        for i in range(6)
    ]
    (data / "saf-english.jsonl").write_text("\n".join(json.dumps(r) for r in saf) + "\n")
    examples = judge_train.load_examples(data)
    assert all(e.reference != "never read" for e in examples)  # the test split is not read
    assert len(examples) == 30
    interview = tmp_path / "interview.jsonl"
    _write_interview(interview)
    points = tmp_path / "points.jsonl"
    points.write_text(
        "".join(
            json.dumps(
                {"question": "What is dropout?", "k": k, "point": f"point {k}", "kind": kind, "text": f"{kind} {k}"}
            )
            + "\n"
            for k in range(2)
            for kind in ("paraphrase", "contradiction")
        )
    )

    edits = tmp_path / "edits.jsonl"
    edits.write_text(
        "".join(
            json.dumps({"question": "What is dropout?", "k": k, "point": f"point {k}", "kind": "edit", "text": f"{k}"})
            + "\n"
            for k in range(2)
        )
    )

    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        argv = [
            "--data",
            str(data),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--interview",
            str(interview),
            "--points",
            str(points),
            "--edits",
            str(edits),
        ]
        assert judge_train.main(argv) == 0
        outs.append(json.loads((out / "judge.json").read_text()))
    assert outs[0]["sha256"] == outs[1]["sha256"]  # seeded, one thread: the same model twice
    read = {"interview_sha256", "points_sha256", "edits_sha256"}
    assert read <= set(outs[0]["training"])  # the team-written files it read
    judge = Judge(tmp_path / "a")
    v = judge.judge([("The bulb is in a closed path.", "It is in a closed path."), ("a", "b")])
    assert v.probs.shape == (2, 4) and np.allclose(v.probs.sum(axis=1), 1.0, atol=1e-5)
    assert judge.version == outs[0]["sha256"][:12]


def test_the_rubric_score_is_read_on_the_chosen_scale(local_embedder: Any) -> None:
    answer = "Its internals cannot be interpreted by people; deep neural networks are like that."
    rules = {RUBRIC.points[0].text: ("cannot", "\0"), RUBRIC.points[1].text: ("\0", "\0")}  # one point of two
    plain = dict(judge_weight=1.0, judge_contradiction=2.0, judge_answer_contradiction=2.0, judge_answer_weight=0.0)
    same = _grader(local_embedder, RuleJudge(rules), **plain, rubric_scale_lo=0.0, rubric_scale_hi=1.0)
    wider = _grader(local_embedder, RuleJudge(rules), **plain, rubric_scale_lo=0.1, rubric_scale_hi=0.6)
    before, after = same.grade(_request(answer)), wider.grade(_request(answer))
    assert before.score is not None and after.score is not None
    assert after.score == pytest.approx(round(10 * min(1.0, max(0.0, (before.score / 10 - 0.1) / 0.5)), 1))
    assert wider.rescale(3.5, contradicted=False) == 5.0 and wider.rescale(0.5, contradicted=False) == 0.0
    assert wider.rescale(5.0, contradicted=True) <= 6.4  # a contradiction still caps the stretched score
    assert same.rescale(4.2, contradicted=True) == 4.2  # 0 and 1: as is
