"""The framework-free session core: order, commands, follow-ups, appeals, recording, the report."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.grading.base import Claim, ClaimStatus, Criteria, Grade, GradeRequest, OneShotGrader, compute_score
from bot.grading.followups import LLMFollowUps, OfflineFollowUps
from bot.knowledge.cards import FLAG_NO_ANSWER, Card, Source
from bot.practice.attempts import Attempt, AttemptKind, QuestionOutcome
from bot.practice.commands import Command, parse_command
from bot.practice.events import (
    AppealRequested,
    Asked,
    Closed,
    Feedback,
    Finished,
    FollowUpAsked,
    Graded,
    Hint,
    Notice,
    Reference,
    Skipped,
)
from bot.practice.report import build_report, report_figure, report_md
from bot.practice.session import InterviewSession, Mode, SessionConfig, SessionDeps, choose_cards
from bot.practice.state import Phase
from bot.retrieval.store import Retrieval

POINTS = {
    "dropout": [
        "randomly deactivates a fraction of neurons during training",
        "prevents overfitting of large neural networks",
    ],
    "adam": ["adaptive learning rates for every single parameter", "momentum from a running average of gradients"],
    "bleu": ["n-gram overlap"],
}


def card(key: str, topic: str = "Training", important: bool = False, answer: str | None = None) -> Card:
    return Card(
        id=f"id-{key}",
        question=f"What is {key}?",
        display_question=f"What is {key}?",
        answer=answer if answer is not None else ". ".join(p.capitalize() for p in POINTS.get(key, [key])) + ".",
        topic=topic,
        flags=(["important"] if important else []) + ([FLAG_NO_ANSWER] if answer == "" else []),
        source=Source(path="notes.txt", line_start=1, line_end=2),
    )


class KeywordGrader(OneShotGrader):
    """Hits a point when its first word is in the answer (+ appeal). Records every request."""

    name = "fake"

    def __init__(self, fail_on: str = "") -> None:
        self.requests: list[GradeRequest] = []
        self.fail_on = fail_on

    async def agrade(self, request: GradeRequest) -> Grade:
        self.requests.append(request)
        if self.fail_on and self.fail_on in request.answer:
            return Grade(status="ungraded", ungraded_reason="model down", grader=self.name)
        key = request.question.removeprefix("What is ").rstrip("?")
        text = request.answer_with_appeal.lower()
        claims = [
            Claim(point=p, status=ClaimStatus.HIT if p.split()[0] in text else ClaimStatus.MISSED)
            for p in POINTS.get(key, ["something"])
        ]
        criteria = Criteria(correctness=3, depth=1)
        return Grade(score=compute_score(claims, criteria), claims=claims, criteria=criteria, grader=self.name)


class StreamingGrader(KeywordGrader):
    async def astream(self, request: GradeRequest) -> AsyncIterator[Any]:
        from bot.grading.base import FeedbackDelta

        yield FeedbackDelta("Good ")
        yield FeedbackDelta("start.")
        yield await self.agrade(request)


class ListRecorder:
    def __init__(self) -> None:
        self.attempts: list[Attempt] = []
        self.outcomes: list[QuestionOutcome] = []
        self.finished: list[tuple[str, datetime]] = []

    async def record_attempt(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)

    async def question_finished(self, outcome: QuestionOutcome) -> str:
        self.outcomes.append(outcome)
        return f"receipt {len(self.outcomes)}"

    async def session_finished(self, session_id: str, finished_at: datetime) -> None:
        self.finished.append((session_id, finished_at))


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=30)
        return self.now


async def retrieve(c: Card) -> Retrieval:
    return Retrieval(card=c, reference=c.answer, passages=[])


def make(
    cards: Sequence[Card],
    mode: Mode = Mode.STUDY,
    grader: Any = None,
    follow_ups: bool = True,
) -> tuple[InterviewSession, ListRecorder, Any]:
    grader = grader or KeywordGrader()
    rec = ListRecorder()
    deps = SessionDeps(grader=grader, retrieve=retrieve, follow_ups=OfflineFollowUps(), recorder=rec)
    config = SessionConfig(mode=mode, n_questions=len(cards), follow_ups=follow_ups)
    return InterviewSession(cards, config, deps, session_id="s1", clock=Clock()), rec, grader


async def run(gen: AsyncIterator[Any]) -> list[Any]:
    return [e async for e in gen]


def kinds(events: list[Any]) -> list[str]:
    return [type(e).__name__ for e in events if not isinstance(e, Closed)]


# --- choosing and commands ----------------------------------------------------------------------


def test_choose_cards_filters_orders_and_caps_reproducibly() -> None:
    cards = [card(f"c{i}", topic="A" if i % 2 else "B", important=i in (3, 7)) for i in range(10)]
    cfg = SessionConfig(n_questions=4, topics=("A",))
    picked = choose_cards(cards, cfg, random.Random(1))
    assert [c.id for c in picked] == [c.id for c in choose_cards(list(reversed(cards)), cfg, random.Random(1))]
    assert len(picked) == 4 and {c.topic for c in picked} == {"A"}
    assert {picked[0].id, picked[1].id} == {"id-c3", "id-c7"}  # important first
    assert choose_cards(cards, SessionConfig(n_questions=0), random.Random(1)) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/hint", (Command.HINT, "")),
        ("  HINT ", (Command.HINT, "")),
        ("next.", (Command.NEXT, "")),
        ("/appeal I did say momentum", (Command.APPEAL, "I did say momentum")),
        ("I think I was right: I mentioned momentum", (Command.APPEAL, "I mentioned momentum")),
        ("/end", (Command.END, "")),
        ("/reveal", (Command.REVEAL, "")),
        ("next token prediction trains the model", None),  # an answer that starts with a command word
        ("/frobnicate", None),
        ("", None),
    ],
)
def test_parse_command(text: str, expected: Any) -> None:
    assert parse_command(text) == expected


# --- a study session ----------------------------------------------------------------------------


async def test_study_session_grades_shows_reference_and_records() -> None:
    session, rec, grader = make([card("dropout"), card("adam")])
    first = await run(session.begin())
    assert kinds(first) == ["Asked"] and first[0].number == 1 and first[0].total == 2
    events = await run(session.handle("It randomly drops units so it prevents overfitting"))
    assert kinds(events) == ["Grading", "Retrieved", "Graded", "Asked"]
    graded = events[2]
    assert graded.show_reference and graded.grade.score == 9.5
    assert rec.attempts[0] is graded.attempt and rec.attempts[0].kind is AttemptKind.ANSWER
    assert rec.attempts[0].time_taken_s == 30.0
    assert rec.outcomes[0].final == graded.grade
    closed = events[3]
    assert isinstance(closed, Closed) and closed.receipt == "receipt 1"  # the recorder's answer is passed on
    assert events[4].number == 2
    events = await run(session.handle("adaptive"))
    assert isinstance(events[-1], Finished) and session.finished
    assert rec.finished == [("s1", session.finished_at)]
    assert [r.answer for r in grader.requests] == ["It randomly drops units so it prevents overfitting", "adaptive"]


async def test_the_grade_is_shown_while_its_attempt_is_written_and_nothing_moves_on_before() -> None:
    session, rec, _ = make([card("dropout"), card("adam")])
    release = asyncio.Event()
    store = rec.record_attempt

    async def slow_write(attempt: Attempt) -> None:
        await release.wait()
        await store(attempt)

    rec.record_attempt = slow_write  # type: ignore[method-assign]
    await run(session.begin())
    events = session.handle("It randomly drops units so it prevents overfitting")
    seen = [await anext(events) for _ in range(3)]
    assert kinds(seen) == ["Grading", "Retrieved", "Graded"] and rec.attempts == []  # shown first
    after = asyncio.ensure_future(anext(events))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not after.done() and rec.outcomes == []  # not rated, no next question before it is stored
    release.set()
    assert isinstance(await after, Closed) and len(rec.attempts) == 1 and len(rec.outcomes) == 1
    assert kinds(await run(events)) == ["Asked"]


async def test_an_attempt_that_cannot_be_written_stops_the_question_from_moving_on() -> None:
    session, rec, _ = make([card("dropout"), card("adam")])

    async def broken(attempt: Attempt) -> None:
        raise OSError("disk full")

    rec.record_attempt = broken  # type: ignore[method-assign]
    await run(session.begin())
    with pytest.raises(OSError, match="disk full"):
        await run(session.handle("randomly"))
    assert rec.outcomes == [] and session.index == 0


async def test_empty_and_huge_answers_get_a_clear_reply_and_lose_nothing() -> None:
    session, _rec, grader = make([card("dropout")])
    await run(session.begin())
    events = await run(session.handle("   "))
    assert kinds(events) == ["Notice"] and "empty" in events[0].text and not grader.requests
    huge = "randomly " + "x" * 300_000
    events = await run(session.handle(huge))
    assert isinstance(events[0], Notice) and "300,009" in events[0].text
    assert len(grader.requests[0].answer) <= 200_000 and grader.requests[0].answer.startswith("randomly")
    assert isinstance(events[-1], Finished)
    events = await run(session.handle("more"))
    assert kinds(events) == ["Notice"] and "over" in events[0].text


async def test_a_zero_width_only_answer_is_empty_not_graded() -> None:
    session, rec, grader = make([card("dropout")])
    await run(session.begin())
    events = await run(session.handle("\u200b\u200c\u200d\u2060\ufeff \u200b"))
    assert kinds(events) == ["Notice"] and "empty" in events[0].text
    assert not grader.requests and not rec.attempts


async def test_a_crafted_reveal_for_a_later_question_shows_nothing() -> None:
    session, _, _ = make([card("dropout"), card("adam")], mode=Mode.INTERVIEW, follow_ups=False)
    await run(session.begin())
    later = session.questions[1].card.id
    events = await run(session.command(Command.REVEAL, card_id=later))
    assert kinds(events) == ["Notice"] and "not been asked" in events[0].text
    assert not session.questions[1].revealed
    await run(session.handle("skip"))
    (ref,) = await run(session.command(Command.REVEAL, card_id=later))
    assert isinstance(ref, Reference) and ref.card.id == later  # asked now: it may be revealed


async def test_unknown_slash_command_is_not_graded() -> None:
    session, _, grader = make([card("dropout")])
    await run(session.begin())
    events = await run(session.handle("/frobnicate"))
    assert kinds(events) == ["Notice"] and "Unknown command" in events[0].text and not grader.requests


async def test_streaming_grader_feedback_is_passed_through() -> None:
    session, _, _ = make([card("dropout")], grader=StreamingGrader())
    await run(session.begin())
    events = await run(session.handle("randomly"))
    assert kinds(events)[:4] == ["Grading", "Retrieved", "Feedback", "Feedback"]
    assert "".join(e.text for e in events if isinstance(e, Feedback)) == "Good start."


async def test_hint_reveals_one_unseen_key_point_and_the_grade_records_it() -> None:
    session, rec, _ = make([card("dropout")])
    await run(session.begin())
    (h1,) = await run(session.command(Command.HINT))
    (h2,) = await run(session.handle("/hint"))
    assert isinstance(h1, Hint) and isinstance(h2, Hint)
    assert h1.point != h2.point and h2.used == 2
    (n,) = await run(session.command(Command.HINT))
    assert isinstance(n, Notice) and "No hints left" in n.text
    events = await run(session.handle("randomly, prevents"))
    graded = next(e for e in events if isinstance(e, Graded))
    assert "2 hints used" in graded.grade.notes and rec.attempts[0].hints_used == 2
    assert rec.outcomes[0].hints_used == 2


async def test_hint_on_a_card_without_an_answer_says_so() -> None:
    session, _, _ = make([card("gan", answer="")])
    await run(session.begin())
    (n,) = await run(session.command(Command.HINT))
    assert isinstance(n, Notice) and "no answer" in n.text


async def test_skip_records_a_skip_and_moves_on() -> None:
    session, rec, grader = make([card("dropout"), card("adam")])
    await run(session.begin())
    events = await run(session.handle("skip"))
    assert kinds(events) == ["Skipped", "Asked"]
    assert rec.attempts[0].kind is AttemptKind.SKIP and rec.attempts[0].grade is None
    assert rec.outcomes[0].skipped and rec.outcomes[0].final is None and not grader.requests


async def test_reveal_before_answering_is_flagged() -> None:
    session, rec, _ = make([card("dropout")], mode=Mode.INTERVIEW, follow_ups=False)
    await run(session.begin())
    (ref,) = await run(session.command(Command.REVEAL))
    assert isinstance(ref, Reference)
    events = await run(session.handle("randomly prevents"))
    graded = next(e for e in events if isinstance(e, Graded))
    assert not graded.show_reference  # interview mode keeps references for the report
    assert "reference seen before answering" in graded.grade.notes
    assert rec.outcomes[0].revealed_before_answer


async def test_retry_regrades_the_last_question_keeps_both_and_returns() -> None:
    session, rec, _ = make([card("dropout"), card("adam")])
    await run(session.begin())
    await run(session.handle("randomly"))  # 1st question: one of two points
    events = await run(session.command(Command.RETRY))
    assert kinds(events) == ["Asked"] and events[0].retry and events[0].card.id == "id-dropout"
    assert session.phase is Phase.RETRY
    events = await run(session.handle("randomly; prevents overfitting"))
    graded = next(e for e in events if isinstance(e, Graded))
    assert graded.previous is not None and graded.previous.score < graded.grade.score
    assert isinstance(events[-1], Asked) and events[-1].card.id == "id-adam" and events[-1].resumed
    q = session.questions[0]
    assert [a.kind for a in q.attempts] == [AttemptKind.ANSWER, AttemptKind.RETRY]
    assert q.final == graded.grade
    # a retry is practice: the schedule keeps the first attempt's outcome
    assert [o.final.score for o in rec.outcomes if o.final] == [graded.previous.score]


async def test_retry_with_nothing_answered_is_refused() -> None:
    session, _, _ = make([card("dropout")])
    await run(session.begin())
    (n,) = await run(session.command(Command.RETRY))
    assert isinstance(n, Notice) and "Nothing to retry" in n.text


async def test_appeal_asks_for_an_argument_then_regrades_with_it_keeping_both() -> None:
    session, rec, grader = make([card("dropout"), card("adam")])
    await run(session.begin())
    await run(session.handle("randomly"))
    events = await run(session.command(Command.APPEAL, card_id="id-dropout"))
    assert kinds(events) == ["AppealRequested"] and session.phase is Phase.APPEAL
    events = await run(session.handle("I also said it prevents overfitting, implicitly"))
    graded = next(e for e in events if isinstance(e, Graded))
    assert grader.requests[-1].answer == "randomly"
    assert grader.requests[-1].appeal == "I also said it prevents overfitting, implicitly"
    assert graded.previous is not None and graded.previous.score == 6.5 and graded.grade.score == 9.5
    assert rec.attempts[-1].kind is AttemptKind.APPEAL
    assert [o.regrade for o in rec.outcomes] == [False, True]  # the corrected grade re-rates the card
    assert rec.outcomes[-1].final == graded.grade
    assert isinstance(events[-1], Asked) and events[-1].card.id == "id-adam"  # back to where we were
    assert session.questions[0].final == graded.grade


async def test_typed_appeal_with_argument_goes_straight_to_regrade() -> None:
    session, _, grader = make([card("dropout"), card("adam")])
    await run(session.begin())
    await run(session.handle("randomly"))
    events = await run(session.handle("I think I was right: prevents overfitting was implied"))
    assert any(isinstance(e, Graded) for e in events)
    assert grader.requests[-1].appeal == "prevents overfitting was implied"


async def test_another_command_cancels_a_pending_appeal() -> None:
    session, _, _ = make([card("dropout"), card("adam")])
    await run(session.begin())
    await run(session.handle("randomly"))
    assert kinds(await run(session.command(Command.APPEAL))) == ["AppealRequested"]
    events = await run(session.handle("/skip"))
    assert kinds(events) == ["Skipped", "Finished"]


# --- interview mode: follow-ups -----------------------------------------------------------------


async def test_interview_follow_ups_probe_missed_points_and_count_toward_the_grade() -> None:
    cards = [card("adam"), card("dropout")]
    session, rec, grader = make(cards, mode=Mode.INTERVIEW)
    await run(session.begin())
    events = await run(session.handle("it uses adaptive per-parameter steps"))
    assert kinds(events) == ["Grading", "Retrieved", "Graded", "FollowUpAsked"]
    assert events[2].follow_up_next and not events[2].show_reference
    fu = events[3]
    assert fu.number == 1 and fu.of == 2 and "momentum" in fu.text.lower()
    events = await run(session.handle("momentum smooths the gradient"))
    graded = next(e for e in events if isinstance(e, Graded))
    # the follow-up answer is graded together with the first answer
    assert grader.requests[-1].answer == "it uses adaptive per-parameter steps\n\nmomentum smooths the gradient"
    assert graded.grade.score == 9.5 and graded.attempt.kind is AttemptKind.FOLLOW_UP
    assert isinstance(events[-1], Asked) and events[-1].card.id == "id-dropout"  # nothing left to probe
    assert [a.kind for a in rec.attempts] == [AttemptKind.ANSWER, AttemptKind.FOLLOW_UP]
    assert rec.outcomes[0].final == graded.grade


async def test_at_most_two_follow_ups_then_next_question() -> None:
    session, _, _ = make([card("dropout"), card("adam")], mode=Mode.INTERVIEW)
    await run(session.begin())
    assert isinstance((await run(session.handle("no idea")))[-1], FollowUpAsked)
    assert isinstance((await run(session.handle("still no idea")))[-1], FollowUpAsked)
    events = await run(session.handle("really no idea"))
    assert isinstance(events[-1], Asked) and events[-1].number == 2
    assert len(session.questions[0].follow_ups) == 2


async def test_follow_ups_off_and_study_mode_ask_none() -> None:
    for mode, on in ((Mode.INTERVIEW, False), (Mode.STUDY, True)):
        session, _, _ = make([card("adam"), card("dropout")], mode=mode, follow_ups=on)
        await run(session.begin())
        events = await run(session.handle("adaptive"))
        assert not any(isinstance(e, FollowUpAsked) for e in events)


async def test_next_during_a_follow_up_keeps_the_grade_so_far() -> None:
    session, rec, _ = make([card("adam"), card("dropout")], mode=Mode.INTERVIEW)
    await run(session.begin())
    await run(session.handle("adaptive"))
    events = await run(session.command(Command.NEXT))
    assert kinds(events) == ["Graded", "Asked"] and events[-1].number == 2
    shown = events[0]
    assert shown.grade.score == 6.5 and not shown.follow_up_next  # the held-back grade is shown now
    assert rec.outcomes[0].final is not None and rec.outcomes[0].final.score == 6.5
    assert not rec.outcomes[0].skipped


async def test_next_before_answering_is_a_skip() -> None:
    session, rec, _ = make([card("adam"), card("dropout")])
    await run(session.begin())
    events = await run(session.command(Command.NEXT))
    assert kinds(events) == ["Skipped", "Asked"] and rec.outcomes[0].skipped


async def test_failed_grade_is_ungraded_never_zero_and_no_follow_up() -> None:
    session, _rec, _ = make([card("adam"), card("dropout")], mode=Mode.INTERVIEW, grader=KeywordGrader("boom"))
    await run(session.begin())
    events = await run(session.handle("boom"))
    graded = next(e for e in events if isinstance(e, Graded))
    assert not graded.grade.graded and graded.grade.score is None
    assert isinstance(events[-1], Asked)
    report = build_report(session)
    assert report.items[0].score is None


# --- end and report -----------------------------------------------------------------------------


async def test_end_early_and_the_report() -> None:
    cards = [card("dropout", topic="Training"), card("adam", topic="Training"), card("bleu", topic="NLP")]
    cards.append(card("gan", topic="GenAI", answer=""))
    session, _, _ = make(cards)
    await run(session.begin())
    await run(session.handle("randomly, prevents"))  # 9.5
    await run(session.handle("/skip"))  # adam: 0
    await run(session.handle("n-gram"))  # bleu 9.5
    events = await run(session.handle("/end"))
    assert kinds(events) == ["Finished"] and session.finished
    report = build_report(session)
    assert [i.card.id for i in report.items] == ["id-dropout", "id-adam", "id-bleu"]  # gan never answered
    assert report.overall == round((9.5 + 0 + 9.5) / 3, 1)
    topics = {t.topic: t.average for t in report.per_topic}
    assert topics == {"Training": 4.8, "NLP": 9.5}
    assert [i.card.id for i in report.weakest] == ["id-adam"]
    md = report_md(report)
    assert "**Overall: 6.3/10** · 3 of 4 questions" in md
    assert "1 skipped (counted as 0)" in md
    assert "| Training | 4.8 | 2 |" in md
    assert "## Weakest questions" in md and "adaptive learning rates" in md.lower()  # reference shown
    fig = report_figure(report)
    assert list(fig.data[0].y) == ["Training", "NLP"] and list(fig.data[0].x) == [4.8, 9.5]


async def test_interview_report_lists_every_reference() -> None:
    session, _, _ = make([card("dropout"), card("bleu")], mode=Mode.INTERVIEW, follow_ups=False)
    await run(session.begin())
    await run(session.handle("randomly prevents"))
    await run(session.handle("n-gram"))
    md = report_md(build_report(session))
    assert "## Reference answers" in md and "n-gram overlap" in md.lower()


async def test_resume_starts_at_the_given_question() -> None:
    session, _, _ = make([card("dropout"), card("adam"), card("bleu")])
    events = await run(session.begin(resume_at=2))
    assert events[0].number == 3 and session.questions[0].done


# --- follow-up writers --------------------------------------------------------------------------


async def test_offline_follow_up_never_quotes_the_whole_missed_point() -> None:
    point = "adaptive learning rates per parameter from running averages of squared gradients"
    text = await OfflineFollowUps().write(card("adam"), "it is an optimiser", [point])
    assert point not in text and text.endswith("?")


async def test_llm_follow_up_gets_the_missed_point_and_falls_back_when_unusable(fake_chat: Any) -> None:
    chat = fake_chat(["How does Adam keep a running average of past gradients?", "momentum"])
    writer = LLMFollowUps(chat)
    text = await writer.write(card("adam"), "adaptive steps", ["momentum"])
    assert text == "How does Adam keep a running average of past gradients?"
    prompt = str(chat.calls[0]["messages"][-1].content)
    assert "<missed_key_point" in prompt and "momentum" in prompt and "adaptive steps" in prompt
    fallback = await writer.write(card("adam"), "adaptive steps", ["momentum"])  # reply leaks the point
    assert fallback.startswith("Let's go one level deeper")


# --- with the real offline grader ---------------------------------------------------------------


async def test_whole_session_with_the_real_offline_grader(local_embedder: Any) -> None:
    from bot.grading.offline.grader import OfflineGrader

    grader = OfflineGrader(local_embedder)
    c = card(
        "dropout",
        answer=(
            "Dropout randomly deactivates a fraction of the neurons in each training step. "
            "This prevents the network from overfitting the training data."
        ),
    )
    session, rec, _ = make([c, card("bleu")], mode=Mode.INTERVIEW, grader=grader)
    await run(session.begin())
    events = await run(session.handle("It switches off random neurons while training."))
    first = next(e for e in events if isinstance(e, Graded)).grade
    assert first.graded and any(cl.status is not ClaimStatus.HIT for cl in first.claims)
    assert isinstance(events[-1], FollowUpAsked)
    events = await run(session.handle("That stops the network from overfitting the training data."))
    combined = next(e for e in events if isinstance(e, Graded)).grade
    assert combined.score is not None and first.score is not None and combined.score > first.score
    # appeal on the offline grader: the argument's content is graded with the answer
    events = await run(session.handle("/retry"))
    assert isinstance(events[0], Asked) and events[0].retry
    events = await run(session.handle("no idea"))
    low = next(e for e in events if isinstance(e, Graded)).grade
    events = await run(session.command(Command.APPEAL, "I meant it deactivates neurons randomly to stop overfitting"))
    appealed = next(e for e in events if isinstance(e, Graded)).grade
    assert appealed.score is not None and low.score is not None and appealed.score > low.score
    assert isinstance(events[-1], Asked) and events[-1].card.id == "id-bleu" and events[-1].resumed
    assert [a.kind for a in rec.attempts] == [
        AttemptKind.ANSWER,
        AttemptKind.FOLLOW_UP,
        AttemptKind.RETRY,
        AttemptKind.APPEAL,
    ]
    assert isinstance(AppealRequested(card=c), AppealRequested) and Skipped  # names exported


async def test_buttons_of_an_earlier_question_do_not_act_on_the_current_one() -> None:
    session, rec, _ = make([card("dropout"), card("adam")])
    await run(session.begin())
    await run(session.handle("randomly"))
    (n,) = await run(session.command(Command.SKIP, card_id="id-dropout"))
    assert isinstance(n, Notice) and "earlier question" in n.text and len(rec.attempts) == 1
    events = await run(session.command(Command.HINT, card_id="id-adam"))
    assert isinstance(events[0], Hint)
    events = await run(session.command(Command.REVEAL, card_id="id-dropout"))  # reveal works on any card
    assert isinstance(events[0], Reference) and events[0].card.id == "id-dropout"


def test_when_rounds_to_a_human_interval() -> None:
    from bot.adapters.views import when

    now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    cases = {10: "now", 59.5: "in 1 minute", 600: "in 10 minutes", 3 * 3600: "in 3 hours", 86400 * 4.2: "in 4 days"}
    for seconds, text in cases.items():
        assert when(now + timedelta(seconds=seconds), now) == text


# --- editing the key points in chat ------------------------------------------------------------------


async def test_edited_key_points_are_stored_and_the_same_answer_is_graded_again() -> None:
    from bot.grading.rubric import Rubric, compile_rubric

    stored: dict[str, Rubric] = {}

    async def retrieve_with_rubric(c: Card) -> Retrieval:
        return Retrieval(card=c, reference=c.answer, passages=[], rubric=stored.get(c.id) or compile_rubric(c))

    async def edit_rubric(c: Card, rubric: Rubric) -> Rubric:
        stored[c.id] = rubric.model_copy(update={"compiled_by": "user", "version": rubric.version + 1})
        return stored[c.id]

    session, rec, grader = make([card("dropout"), card("adam")])
    session.deps = SessionDeps(
        grader=grader,
        retrieve=retrieve_with_rubric,
        follow_ups=OfflineFollowUps(),
        recorder=rec,
        edit_rubric=edit_rubric,
    )
    await run(session.begin())
    first = next(e for e in await run(session.handle("randomly")) if isinstance(e, Graded))
    (shown,) = await run(session.command(Command.POINTS))
    assert isinstance(shown, Notice) and "core | " in shown.text and "Randomly deactivates" in shown.text
    (bad,) = await run(session.handle("sometimes | x | Not a weight at all."))
    assert isinstance(bad, Notice) and "not stored" in bad.text and "id-dropout" not in stored
    events = await run(session.handle("core | random neurons | Randomly deactivates a fraction of neurons."))
    assert kinds(events)[:4] == ["Notice", "Grading", "Retrieved", "Graded"]
    regraded = events[3]
    assert regraded.attempt.kind is AttemptKind.REGRADE and regraded.previous == first.grade
    assert grader.requests[-1].answer == "randomly"  # the same answer …
    assert grader.requests[-1].rubric.texts == ["Randomly deactivates a fraction of neurons."]  # … new key points
    assert stored["id-dropout"].compiled_by == "user"
    assert rec.attempts[-1].kind is AttemptKind.REGRADE


async def test_a_command_cancels_a_pending_key_point_edit_and_it_needs_a_store() -> None:
    session, _, _ = make([card("dropout"), card("adam")])
    await run(session.begin())
    await run(session.handle("randomly"))
    (n,) = await run(session.command(Command.POINTS))
    assert isinstance(n, Notice) and "not available" in n.text  # no edit_rubric in these deps
    assert session.phase is not Phase.POINTS

    async def edit_rubric(c: Card, rubric: Any) -> Any:
        raise AssertionError("a cancelled edit stores nothing")

    session.deps.edit_rubric = edit_rubric
    before = session.phase
    await run(session.command(Command.POINTS))
    assert session.phase is Phase.POINTS
    await run(session.command(Command.REVEAL))  # any other command cancels
    assert session.phase is before
    events = await run(session.handle("momentum"))  # … and the next message is an answer again
    assert any(isinstance(e, Graded) for e in events)
