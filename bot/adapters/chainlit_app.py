"""Chainlit adapter: wires chat events to the core and renders the session's events. No session logic.

Run with ``interview web`` (or ``make run``). Everything slow (store, models, grading, database)
runs in worker threads or async clients, so one slow grade never stalls another user.
(Chainlit loads this file outside ``sys.modules``: no dataclasses here.)
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from typing import Any

import chainlit as cl
from chainlit.input_widget import MultiSelect, Select, Slider, Switch

from bot.adapters import uploads
from bot.adapters.inert import inert
from bot.adapters.load import LoadAwareGrader
from bot.adapters.views import (
    SessionRenderer,
    follow_up_md,
    graded_md,
    hint_md,
    question_md,
    reference_md,
    schedule_md,
    source_line,
)
from bot.grading.base import Grade, Grader
from bot.history.users import LOCAL_USER
from bot.practice.coach import Coach, StartRequest, names_topic, parse_start
from bot.practice.commands import Command
from bot.practice.events import (
    AppealRequested,
    Asked,
    Closed,
    Event,
    Feedback,
    Finished,
    FollowUpAsked,
    Graded,
    Grading,
    Hint,
    Notice,
    Reference,
    Retrieved,
    Skipped,
)
from bot.practice.rephrase import FLAG_REPHRASED
from bot.practice.report import build_report, report_figure, report_md
from bot.practice.session import InterviewSession, Mode, SessionConfig
from bot.settings import get_settings

_lock = asyncio.Lock()
_coach: Coach | None = None
_load: LoadAwareGrader | None = None  # the web app's load control around the coach's grader

ACTION_LABELS = {
    "hint": ("💡 Hint", "lightbulb"),
    "skip": ("Skip", "skip-forward"),
    "reveal": ("Reveal reference", "book-open"),
    "retry": ("Retry", "rotate-ccw"),
    "appeal": ("I think I was right", "scale"),
    "points": ("Edit key points", "list-checks"),
    "next": ("Next question", "arrow-right"),
    "end": ("End session", "square"),
    "rate": ("Change rating", "star"),
    "original": ("Show original wording", "quote"),
}
RATINGS = {"again": 1, "hard": 2, "good": 3, "easy": 4}
STREAM_FLUSH_S = 0.15  # streamed feedback is sent in pieces at most this often
SETTLE_S = 0.3  # longest a next question waits for other users' grades to go out first


async def get_coach() -> Coach:
    """One coach per process, opened off the event loop on first use."""
    global _coach
    if _coach is not None:  # every message and button lands here: no lock once it is open
        return _coach
    async with _lock:
        if _coach is None:
            settings = get_settings()

            def load_control(grader: Grader) -> Grader:
                global _load
                _load = LoadAwareGrader(grader, settings.max_streams)
                return _load

            _coach = await asyncio.to_thread(lambda: Coach.open(settings, mode="web", worker=True, wrap=load_control))
            gc.freeze()  # what is loaded now lives as long as the process: full collections skip it
        return _coach


def _user_name(user: Any) -> str:
    """The signed-in user's name, or the single local user when authentication is off."""
    return str(getattr(user, "identifier", "") or LOCAL_USER)


def _user() -> str:
    return _user_name(cl.user_session.get("user"))


def _actions(card_id: str, *names: str) -> list[cl.Action]:
    return [
        cl.Action(name=n, payload={"card_id": card_id}, label=ACTION_LABELS[n][0], icon=ACTION_LABELS[n][1])
        for n in names
    ]


@cl.set_starters
async def starters(user: Any = None, language: Any = None) -> list[cl.Starter]:
    coach = await get_coach()
    topics = await asyncio.to_thread(coach.topics, _user_name(user))
    out = []
    info = await coach.resumable(_user_name(user))
    if info is not None:
        done = len(info.finished_card_ids)
        out.append(cl.Starter(label=f"Resume: {done} of {len(info.card_ids)} done", message="/resume"))
    out += [
        cl.Starter(label="Quick drill: 5 questions", message="/drill 5"),
        cl.Starter(label="Mock interview", message="/interview"),
        cl.Starter(label="Add notes", message="/notes add"),
    ]
    if topics:
        out.append(cl.Starter(label=f"Mock interview: {topics[0]}", message=f"/interview {topics[0]}"))
    out += [
        cl.Starter(label="Review what's due", message="/review"),
        cl.Starter(label="Progress", message="/progress"),
    ]
    return out


@cl.set_chat_profiles
async def profiles(user: Any = None, language: Any = None) -> list[cl.ChatProfile]:
    """One profile: its icon and description are the welcome screen (what this is, the user's notes)."""
    coach = await get_coach()
    welcome = await asyncio.to_thread(uploads.welcome_md, coach, _user_name(user))
    return [cl.ChatProfile(name="Interview Coach", markdown_description=welcome, icon="/public/icon.svg", default=True)]


@cl.on_chat_start
async def start() -> None:
    """Send the chat settings only: the starters stay visible until the first message."""
    coach = await get_coach()
    topics = await asyncio.to_thread(coach.topics, _user())
    values = await cl.ChatSettings(
        [
            Select(
                id="mode",
                label="Mode",
                values=["study", "interview"],
                initial_value="study",
                description="Study shows the reference after each answer; interview hides it and asks follow-ups.",
            ),
            MultiSelect(id="topics", label="Topics (none = all)", items={t: t for t in topics}, initial=[]),
            Slider(id="n_questions", label="Questions", initial=5, min=1, max=20, step=1),
            Switch(id="important_first", label="Important questions first", initial=True),
            Switch(id="follow_ups", label="Follow-up questions (interview mode)", initial=True),
        ]
    ).send()
    cl.user_session.set("prefs", values)
    cl.user_session.set("turn_lock", asyncio.Lock())


@cl.on_settings_update
async def settings_update(values: dict[str, Any]) -> None:
    cl.user_session.set("prefs", values)
    session: InterviewSession | None = cl.user_session.get("session")
    if session is not None and not session.finished:
        await cl.Message(content="Settings saved: they apply to the next session (`/end` finishes this one).").send()


def _turn_lock() -> asyncio.Lock:
    lock: asyncio.Lock | None = cl.user_session.get("turn_lock")
    if lock is None:
        lock = asyncio.Lock()
        cl.user_session.set("turn_lock", lock)
    return lock


@cl.on_message
async def on_message(message: cl.Message) -> None:
    async with _turn_lock():
        text = message.content or ""
        session: InterviewSession | None = cl.user_session.get("session")
        coach = await get_coach()
        if message.elements:  # the attach button: notes files
            await uploads.add_notes(coach, _user(), message.elements)
            if not text.strip().startswith("/"):  # words sent with files are about the files
                return
        notes = uploads.NOTES_COMMAND.match(text.strip())
        if notes:
            await uploads.notes_command(coach, _user(), notes.group(1))
            return
        # the topics read the store after notes changed: only a start command naming one needs them
        topics = await asyncio.to_thread(coach.topics, _user()) if names_topic(text) else []
        request = parse_start(text, SessionConfig.from_dict(cl.user_session.get("prefs")), topics)
        if session is None or session.finished or request is not None:
            await _start(coach, session, request, text)
            return
        await _render(session, session.handle(text), under=message.id)


async def _start(coach: Coach, previous: InterviewSession | None, request: StartRequest | None, text: str) -> None:
    if request is None:
        if previous is not None and previous.finished:
            await cl.Message(
                content="This session is over. Pick a starter, or type `/drill`, `/interview` or `/review`."
            ).send()
            return
        request = StartRequest(kind="session", config=SessionConfig.from_dict(cl.user_session.get("prefs")))
    if request.kind == "progress":
        await _show_progress(coach)
        return
    if previous is not None and not previous.finished:
        await _render(previous, previous.command(Command.END))
    cards = await asyncio.to_thread(coach.cards, _user())
    if not cards:
        await cl.Message(content="No questions found in your notes. " + uploads.HOW_TO_ADD).send()
        return
    if request.kind == "resume":
        restored = await coach.resume(_user())
        if restored is None:
            await cl.Message(content="There is no unfinished session to resume. Pick a starter to begin one.").send()
            return
        resumed, at = restored
        cl.user_session.set("session", resumed)
        cl.user_session.set("tasks", None)
        await cl.Message(
            content=f"Resuming your {resumed.config.mode.value} session at question {at + 1} of {resumed.total}. "
            + coach.grader_line()
        ).send()
        await _render(resumed, resumed.begin(resume_at=at))
        return
    session = await coach.start(request.config, user=_user(), review=request.review)
    if session.total == 0:
        await cl.Message(content="No cards match those topics. Change the topics in the settings panel.").send()
        return
    cl.user_session.set("session", session)
    cl.user_session.set("tasks", None)
    mode = session.config.mode
    how = (
        "I show the reference answer from your notes after each answer."
        if mode is Mode.STUDY
        else "I keep the reference answers for the report at the end, and may ask follow-ups."
    )
    intro = [
        f"**{mode.value.capitalize()} session: {session.total} questions**"
        + (f" on _{', '.join(session.config.topics)}_" if session.config.topics else "")
        + f". {how}",
        "Answer in a normal message. Commands (or the buttons): `/hint` `/skip` `/reveal` `/retry` "
        "`/appeal <why>` `/next` `/end`.",
        coach.grader_line(),
    ]
    if request.note:
        intro.insert(0, f"_{request.note}_")
    await cl.Message(content="\n\n".join(intro)).send()
    await _render(session, session.begin())


async def _tasks(session: InterviewSession) -> cl.TaskList:
    tasks: cl.TaskList | None = cl.user_session.get("tasks")
    if tasks is None:
        tasks = cl.TaskList()
        for q in session.questions:
            title = q.card.display_question
            await tasks.add_task(cl.Task(title=inert(f"Question {q.number} of {session.total}: {title[:60]}")))
        cl.user_session.set("tasks", tasks)
    return tasks


async def _progress(session: InterviewSession, current: int | None) -> None:
    tasks = await _tasks(session)
    for q, task in zip(session.questions, tasks.tasks, strict=False):
        if q.skipped and not q.answered:
            task.status = cl.TaskStatus.FAILED
        elif q.done or (q.answered and q.number != current):
            task.status = cl.TaskStatus.DONE
        elif q.number == current:
            task.status = cl.TaskStatus.RUNNING
        else:
            task.status = cl.TaskStatus.READY
    done = sum(q.done for q in session.questions)
    tasks.status = "Finished" if session.finished else f"{done} of {session.total} done"
    await tasks.send()


async def _render(session: InterviewSession, events: AsyncIterator[Event], *, under: str | None = None) -> None:
    """Turn the core's events into messages, steps and elements (steps nest under ``under``, the
    user's answer, when given)."""
    renderer = _ChatRenderer(session, under)
    async for event in events:
        await renderer.show(event)


class _ChatRenderer(SessionRenderer[Awaitable[None]]):
    """One ``_render`` call: the grade step, the streamed feedback message and what is still to flush."""

    def __init__(self, session: InterviewSession, under: str | None) -> None:
        self.session = session
        self.under = under
        self.grade_step: cl.Step | None = None
        self.steps_sent: asyncio.Future[Any] | None = None
        self.stream: cl.Message | None = None
        self.pending, self.flushed = "", 0.0

    async def asked(self, event: Asked) -> None:
        await cl.Message(
            content=question_md(
                event.card, event.number, event.total, retry=event.retry, resumed=event.resumed, leech=event.leech
            ),
            actions=_actions(
                event.card.id,
                "hint",
                "skip",
                "reveal",
                "end",
                *(["original"] if FLAG_REPHRASED in event.card.flags else []),
            ),
        ).send()
        await _progress(self.session, event.number)

    async def follow_up_asked(self, event: FollowUpAsked) -> None:
        await cl.Message(
            content=follow_up_md(event.text, event.number, event.of),
            actions=_actions(event.card.id, "hint", "next", "end"),
        ).send()

    async def grading(self, event: Grading) -> None:
        self.grade_step = cl.Step(name="Grade", type="llm", default_open=False, parent_id=self.under)
        self.grade_step.input = inert(f"{event.kind.value}: {event.card.display_question}")
        # Sent in the background: the answer goes to the grader first, the UI catches up.
        self.steps_sent = asyncio.ensure_future(self.grade_step.send())

    async def retrieved(self, event: Retrieved) -> None:
        parent = self.grade_step.id if self.grade_step else None
        step = cl.Step(name="Retrieve reference", type="retrieval", parent_id=parent)
        step.output = inert(
            "\n".join(
                [f"reference: {source_line(event.card)}"]
                + [f"- {h.score:.2f} {h.card.display_question}" for h in event.retrieval.passages]
            )
        )
        step.end = datetime.now(UTC).isoformat()
        self.steps_sent = asyncio.ensure_future(_in_order(self.steps_sent, step.send()))  # after its parent

    async def feedback(self, event: Feedback) -> None:
        if self.session.config.mode is not Mode.STUDY:  # interview mode may follow up first: no live grade
            return
        self.pending += event.text
        now = asyncio.get_running_loop().time()
        if now - self.flushed >= STREAM_FLUSH_S:  # a few updates a second, not one per token
            if self.stream is None:
                self.stream = cl.Message(content="")
            # the whole text so far, made inert, replaces what is shown: no half-streamed image
            await self.stream.stream_token(inert(self.pending), is_sequence=True)
            self.flushed = now

    async def _close_grade_step(self, grade: Grade) -> None:
        if self.steps_sent is not None:
            await self.steps_sent
            self.steps_sent = None
        if self.grade_step is not None:
            self.grade_step.output = (
                f"{grade.grader}: {grade.score:.1f}/10 ({grade.band.value if grade.band else ''})"
                if grade.graded
                else f"{grade.grader}: ungraded — {grade.ungraded_reason}"
            )
            self.grade_step.end = datetime.now(UTC).isoformat()
            await self.grade_step.update()
            self.grade_step = None

    async def graded(self, event: Graded) -> None:
        await self._close_grade_step(event.grade)
        if event.follow_up_next:
            if self.stream is not None:
                await self.stream.remove()
                self.stream = None
            await _delivered()
            return  # the interviewer probes first; the question's grade comes after the follow-ups
        names = ["retry", "appeal"] + (["reveal"] if self.session.config.mode is Mode.INTERVIEW else [])
        if event.card.has_answer and event.grade.graded:
            names.append("points")
        content = graded_md(
            event.grade,
            event.card,
            show_reference=event.show_reference,
            previous=event.previous,
            kind=event.attempt.kind.value,
        )
        if self.stream is not None:
            self.stream.content = content
            self.stream.actions = _actions(event.card.id, *names)
            await self.stream.update()
            self.stream = None
        else:
            await cl.Message(content=content, actions=_actions(event.card.id, *names)).send()
        await _delivered()
        # Grades first: what follows a shown grade (scheduling, the next question) waits a moment
        # while other users' grades are still on their way out.
        await _settle()

    async def hint(self, event: Hint) -> None:
        await cl.Message(content=hint_md(event.point, event.used)).send()

    async def reference(self, event: Reference) -> None:
        await cl.Message(content=reference_md(event.card)).send()

    async def skipped(self, event: Skipped) -> None:
        await cl.Message(content=inert(f"Skipped: _{event.card.display_question}_")).send()

    async def appeal_requested(self, event: AppealRequested) -> None:
        await cl.Message(
            content=(
                f"Tell me why you think your answer to _{inert(event.card.display_question)}_ deserved more. "
                "Your next message is your argument; I'll re-grade with it and keep both grades."
            )
        ).send()

    async def notice(self, event: Notice) -> None:
        await cl.Message(content=inert(event.text)).send()  # may quote what the user typed

    async def closed(self, event: Closed) -> None:
        line = schedule_md(event.receipt, datetime.now(UTC))
        if line and getattr(event.receipt, "rating", None) is not None:
            await cl.Message(content=line, actions=_actions(event.card.id, "rate")).send()

    async def finished(self, event: Finished) -> None:
        await _progress(self.session, None)
        await _report(self.session)


async def _in_order(first: asyncio.Future[Any] | None, then: Awaitable[Any]) -> None:
    if first is not None:
        await first
    await then


async def _delivered() -> None:
    if _load is not None:
        await _load.delivered()


async def _settle() -> None:
    if _load is not None:
        await _load.settle(SETTLE_S)


async def _report(session: InterviewSession) -> None:
    report = build_report(session)
    md = report_md(report)
    elements: list[Any] = []
    if report.items:
        figure = await asyncio.to_thread(report_figure, report)
        elements.append(cl.Plotly(name="scores by topic", figure=figure, display="inline", size="large"))
    stamp = session.started_at.strftime("%Y-%m-%d-%H%M")
    elements.append(
        cl.File(name=f"interview-report-{stamp}.md", content=md.encode(), display="inline", mime="text/markdown")
    )
    await cl.Message(
        content=inert(md) + "\n\nStart again with a starter, `/drill`, `/interview` or `/review`.", elements=elements
    ).send()


async def _show_progress(coach: Coach) -> None:
    """The Progress view: readiness per topic, activity over time, weakest cards (Plotly)."""
    if coach.history is None:
        await cl.Message(content="Progress needs the history database, which is switched off.").send()
        return
    from bot.history.progress import (
        activity_figure,
        readiness_figure,
        stats_markdown,
        stats_with_settings,
        weakest_figure,
    )

    user = _user()

    def compute() -> tuple[Any, list[Any]]:
        stats = stats_with_settings(coach.history, user, coach.cards(user), coach.settings, datetime.now(UTC))
        return stats, [readiness_figure(stats), activity_figure(stats), weakest_figure(stats)]

    stats, figures = await asyncio.to_thread(compute)
    names = ["readiness by topic", "activity", "weakest cards"]
    await cl.Message(
        content=inert(stats_markdown(stats)),
        elements=[
            cl.Plotly(name=n, figure=f, display="inline", size="large") for n, f in zip(names, figures, strict=True)
        ],
    ).send()


async def _rate_menu(action: cl.Action) -> None:
    card_id = (action.payload or {}).get("card_id")
    await cl.Message(
        content="How well did you really know it? Your rating replaces the automatic one for scheduling.",
        actions=[
            cl.Action(name=f"rate_{name}", payload={"card_id": card_id}, label=name.capitalize()) for name in RATINGS
        ],
    ).send()


async def _rerate(action: cl.Action) -> None:
    from fsrs import Rating

    session: InterviewSession | None = cl.user_session.get("session")
    recorder = session.deps.recorder if session is not None else None
    card_id = (action.payload or {}).get("card_id")
    if session is None or recorder is None or not hasattr(recorder, "rerate") or not card_id:
        await cl.Message(content="Ratings need the history database.").send()
        return
    rating = Rating(RATINGS[action.name.removeprefix("rate_")])
    try:
        review = await recorder.rerate(session.id, card_id, rating)
    except (LookupError, ValueError) as exc:
        await cl.Message(content=f"Could not change that rating: {exc}").send()
        return
    await cl.Message(content=schedule_md(review, datetime.now(UTC)).replace("Rated", "You rated", 1)).send()


async def _on_action(action: cl.Action) -> None:
    async with _turn_lock():
        session: InterviewSession | None = cl.user_session.get("session")
        if session is None:
            await cl.Message(content="No session is running. Pick a starter or type `/drill`.").send()
            return
        card_id = (action.payload or {}).get("card_id")
        await _render(session, session.command(Command(action.name), card_id=card_id))


async def _show_original(action: cl.Action) -> None:
    """A question asked in other words on review: the wording from the notes."""
    coach = await get_coach()
    card_id = (action.payload or {}).get("card_id")
    card = next((c for c in await asyncio.to_thread(coach.cards, _user()) if c.id == card_id), None)
    text = f"Original wording, from your notes:\n\n> {card.display_question}" if card else "That card is gone."
    await cl.Message(content=text).send()


for _name in ACTION_LABELS:
    if _name not in ("rate", "original"):
        cl.action_callback(_name)(_on_action)
cl.action_callback("rate")(_rate_menu)
cl.action_callback("original")(_show_original)
for _name in RATINGS:
    cl.action_callback(f"rate_{_name}")(_rerate)


def _install_auth() -> None:
    """Password sign-in when users are configured (INTERVIEW_USERS); otherwise one local user."""
    from bot.adapters.auth import sign_in_metadata
    from bot.history.users import auth_enabled, authenticate

    if not auth_enabled(get_settings()):
        return

    @cl.password_auth_callback
    async def _auth(username: str, password: str) -> cl.User | None:
        # scrypt is deliberately slow: verify in a worker thread, never on the event loop
        name = await asyncio.to_thread(authenticate, get_settings(), username, password)
        return cl.User(identifier=name, metadata=sign_in_metadata(get_settings(), name)) if name else None


_install_auth()
