"""Chainlit handlers run inside a real ChainlitContext with a mocked session and emitter."""

from __future__ import annotations

import asyncio
import importlib
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock, Mock

import pytest


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, seeded: Path, local_embedder: Any) -> Any:
    import bot.retrieval.store

    real_open = bot.retrieval.store.open_store
    monkeypatch.setattr(bot.retrieval.store, "open_store", lambda s, e=None: real_open(s, local_embedder))
    module = importlib.import_module("bot.adapters.chainlit_app")
    monkeypatch.setattr(module, "_coach", None)
    return module


class Sent:
    """What the app sent to the browser: messages (with their actions) and elements."""

    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []
        self.actions: dict[str, list[dict[str, Any]]] = {}
        self.elements: list[dict[str, Any]] = []
        self.settings: list[Any] = []

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [s for s in self.steps if s.get("type") == "assistant_message"]

    def texts(self) -> list[str]:
        return [str(m.get("output", "")) for m in self.messages]

    def last(self, needle: str) -> dict[str, Any]:
        return next(m for m in reversed(self.messages) if needle in str(m.get("output", "")))

    def action_names(self, message: dict[str, Any]) -> list[str]:
        return [a["name"] for a in self.actions.get(message["id"], [])]


@asynccontextmanager
async def chat(session_id: str = "s1", user: str | None = None) -> AsyncIterator[Sent]:
    from chainlit.context import ChainlitContext, context_var
    from chainlit.emitter import BaseChainlitEmitter
    from chainlit.session import WebsocketSession

    session = Mock(spec=WebsocketSession)
    session.id = session_id
    session.thread_id = f"thread-{session_id}"
    session.user_env = {}
    session.chat_settings = {}
    session.user = None
    if user is not None:
        from chainlit.user import User

        session.user = User(identifier=user)
    session.chat_profile = None
    session.http_referer = None
    session.client_type = "webapp"
    session.languages = ["en"]
    session.has_first_interaction = True
    session.files_dir = Path(".files") / session_id
    session.emit = AsyncMock()
    session.persist_file = AsyncMock(return_value={"id": "file-1"})
    emitter = Mock(spec=BaseChainlitEmitter)
    sent = Sent()

    async def send_step(step: dict[str, Any]) -> None:
        sent.steps.append(step)

    async def update_step(step: dict[str, Any]) -> None:
        for i, s in enumerate(sent.steps):
            if s["id"] == step["id"]:
                sent.steps[i] = step

    async def emit(event: str, data: Any) -> None:
        if event == "action":
            sent.actions.setdefault(data["forId"], []).append(data)
        elif event == "chat_settings":
            sent.settings.append(data)

    async def send_element(element: dict[str, Any]) -> None:
        sent.elements.append(element)

    emitter.send_step = AsyncMock(side_effect=send_step)
    emitter.update_step = AsyncMock(side_effect=update_step)
    emitter.emit = AsyncMock(side_effect=emit)
    emitter.send_element = AsyncMock(side_effect=send_element)
    emitter.set_chat_settings = Mock()
    emitter.session = session
    token = context_var.set(ChainlitContext(session, emitter))
    try:
        yield sent
    finally:
        context_var.reset(token)


async def say(app: Any, text: str) -> None:
    import chainlit as cl

    await app.on_message(cl.Message(content=text))


async def click(app: Any, sent: Sent, message: dict[str, Any], name: str) -> None:
    import chainlit as cl
    from chainlit.config import config

    data = next(a for a in sent.actions[message["id"]] if a["name"] == name)
    callback = config.code.action_callbacks[name]  # what Chainlit's server calls for this button
    await callback(cl.Action(name=name, payload=data["payload"], label=data.get("label", "")))


async def test_start_sends_settings_and_no_message_so_starters_show(app: Any) -> None:
    async with chat() as sent:
        await app.start()
        assert sent.messages == []
        (widgets,) = sent.settings
        ids = {w["id"] for w in widgets}
        assert ids == {"mode", "topics", "n_questions", "important_first", "follow_ups"}
        topics = next(w for w in widgets if w["id"] == "topics")
        assert "GenAI & LLMs" in [i["value"] if isinstance(i, dict) else i for i in topics["items"]]
        starters = await app.starters()
        assert [s.message for s in starters][:2] == ["/drill 5", "/interview"]
        assert "/review" in [s.message for s in starters] and "/progress" in [s.message for s in starters]
        assert any(s.message.startswith("/interview ") for s in starters)  # one topic


async def test_a_study_session_end_to_end_with_actions_and_report(app: Any) -> None:
    async with chat() as sent:
        await app.start()
        await say(app, "/drill 3")
        intro = sent.texts()[0]
        assert "Study session: 3 questions" in intro and "offline grader" in intro and "/hint" in intro
        q1 = sent.last("Question 1 of 3")
        assert sent.action_names(q1) == ["hint", "skip", "reveal", "end"]
        await click(app, sent, q1, "hint")
        assert any(t.startswith("💡 Hint 1") for t in sent.texts())
        await say(app, "It is about training neural networks with gradients and data")
        graded = sent.last("Score:")
        assert sent.action_names(graded) == ["retry", "appeal", "points"]
        assert "hint used" in graded["output"]
        assert "From your notes" in graded["output"] or "no answer" in graded["output"]
        steps = [s for s in sent.steps if s.get("type") in ("llm", "retrieval")]
        assert {s["name"] for s in steps} == {"Grade", "Retrieve reference"}
        assert all(s.get("defaultOpen") in (False, None) for s in steps)  # collapsed
        assert "Question 2 of 3" in sent.texts()[-1]
        tasks = [e for e in sent.elements if e["type"] == "tasklist"]
        assert tasks, "a task list shows the session's progress"
        await click(app, sent, graded, "retry")
        assert "Retry — Question 1 of 3" in sent.texts()[-1]
        await say(app, "/skip")  # cancels the retry, back to question 2
        assert "Question 2 of 3" in sent.texts()[-1]
        await say(app, "/end")
        report = sent.last("Session report")
        assert "**Overall:" in report["output"] and "## By topic" in report["output"]
        kinds = {e["type"] for e in sent.elements}
        assert {"plotly", "file"} <= kinds
        file = next(e for e in sent.elements if e["type"] == "file")
        assert file["name"].startswith("interview-report-") and file["name"].endswith(".md")
        await say(app, "hello?")
        assert "session is over" in sent.texts()[-1]
        await say(app, "/drill 1")
        assert "Study session: 1 questions" in sent.texts()[-2] or "Study session: 1 question" in "".join(sent.texts())


async def test_interview_mode_hides_the_reference_and_may_follow_up(app: Any) -> None:
    async with chat("s2") as sent:
        await app.start()
        await say(app, "/interview 2")
        assert "Interview session: 2 questions" in sent.texts()[0]
        await say(app, "I am not sure, something about layers")
        last = sent.texts()[-1]
        assert "Follow-up 1 of 2" in last or "Question 2 of 2" in last
        assert not any("From your notes" in t for t in sent.texts())
        await say(app, "/end")
        assert "Session report" in sent.texts()[-1]


async def test_interview_on_one_topic(app: Any) -> None:
    async with chat("s3") as sent:
        await app.start()
        await say(app, "/interview transformers")
        assert "on _Transformers & attention_" in sent.texts()[0]
        await say(app, "/interview no-such-topic")
        assert any("No topic matches" in t for t in sent.texts())


async def test_bad_input_through_the_ui(app: Any) -> None:
    async with chat("s4") as sent:
        await app.start()
        await say(app, "/drill 2")
        await say(app, "   ")
        assert "empty" in sent.texts()[-1]
        await say(app, "gradient " * 25_000)  # ~225 KB
        assert any("characters; only the first" in t for t in sent.texts())
        assert any("Score:" in t or "Ungraded" in t for t in sent.texts()[-3:])
        await say(app, "<img src=x onerror=alert(1)><b>bold</b>")
        assert any("Score:" in t for t in sent.texts()[-3:])


async def test_settings_panel_values_drive_the_next_session(app: Any) -> None:
    import chainlit as cl

    async with chat("s5") as sent:
        await app.start()
        await app.settings_update(
            {
                "mode": "interview",
                "n_questions": 2,
                "topics": ["RNN & LSTM"],
                "important_first": True,
                "follow_ups": False,
            }
        )
        await say(app, "let's go")
        session = cl.user_session.get("session")
        assert session.config.mode.value == "interview" and session.total == 2
        assert {q.card.topic for q in session.questions} == {"RNN & LSTM"}
        assert "Interview session: 2 questions" in sent.texts()[0]


async def test_grading_and_retrieval_run_off_the_event_loop(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    async with chat("s6"):
        await app.start()
        coach = await app.get_coach()
        threads: list[str] = []
        real_related = coach.store.related
        inner = coach.grader.inner  # the web app's load control wraps the offline grader
        real_grade = inner.grade

        def related(*a: Any, **k: Any) -> Any:
            threads.append(threading.current_thread().name)
            return real_related(*a, **k)

        def grade(*a: Any, **k: Any) -> Any:
            threads.append(threading.current_thread().name)
            return real_grade(*a, **k)

        monkeypatch.setattr(coach.store, "related", related)
        monkeypatch.setattr(inner, "grade", grade)
        await say(app, "/drill 1")
        await say(app, "an answer")
        assert len(threads) == 2 and threading.main_thread().name not in threads


async def test_two_chats_are_independent_and_concurrent(app: Any) -> None:
    import chainlit as cl

    async def one(sid: str) -> Any:
        async with chat(sid) as sent:
            await app.start()
            await say(app, "/drill 2")
            await say(app, "answer " + sid)
            return cl.user_session.get("session"), sent

    (a, _sa), (b, _sb) = await asyncio.gather(one("c1"), one("c2"))
    assert a is not b and a.id != b.id
    assert a.questions[0].answers == ["answer c1"] and b.questions[0].answers == ["answer c2"]


async def test_reload_resumes_at_the_next_question_with_every_graded_attempt(app: Any) -> None:
    import chainlit as cl

    async with chat("tab1") as sent:
        await app.start()
        await say(app, "/drill 3")
        await say(app, "first answer about gradients")
        first = cl.user_session.get("session")
    # the browser reloads: a new websocket session for the same (local) user
    async with chat("tab2") as sent:
        await app.start()
        starters = await app.starters()
        assert starters[0].message == "/resume" and starters[0].label == "Resume: 1 of 3 done"
        await say(app, "/resume")
        assert "Resuming your study session at question 2 of 3" in sent.texts()[0]
        assert "Question 2 of 3" in sent.texts()[-1]
        resumed = cl.user_session.get("session")
        assert resumed.id == first.id
        assert resumed.questions[0].attempts[0].answer == "first answer about gradients"
        await say(app, "/end")
        report = sent.last("Session report")["output"]
        assert "1 of 3 questions" in report  # the attempt from before the reload is in the report
        assert (await app.starters())[0].message != "/resume"  # finished: nothing to resume


async def test_rating_override_and_progress_view(app: Any) -> None:
    async with chat("r1") as sent:
        await app.start()
        await say(app, "/drill 1")
        await say(app, "no idea at all")
        rated = sent.last("Rated **")
        assert sent.action_names(rated) == ["rate"]
        await click(app, sent, rated, "rate")
        menu = sent.messages[-1]
        assert sent.action_names(menu) == ["rate_again", "rate_hard", "rate_good", "rate_easy"]
        await click(app, sent, menu, "rate_easy")
        assert sent.texts()[-1].startswith("_You rated **Easy**") and "next review in" in sent.texts()[-1]
        await say(app, "/progress")
        progress = sent.messages[-1]
        plots = [e for e in sent.elements if e["type"] == "plotly" and e.get("forId") == progress["id"]]
        assert len(plots) == 3
        assert "Readiness" in progress["output"] or "readiness" in progress["output"]


async def test_each_signed_in_user_sees_only_their_own_history(app: Any) -> None:
    from chainlit.user import User

    async with chat("a1", user="alice") as sent:
        await app.start()
        await say(app, "/drill 2")
        await say(app, "alice's answer")
    async with chat("b1", user="bob") as sent:
        await app.start()
        assert all(s.message != "/resume" for s in await app.starters(User(identifier="bob")))
        await say(app, "/resume")
        assert "no unfinished session" in sent.texts()[-1]
        await say(app, "/progress")
        assert "alice" not in sent.texts()[-1]
    async with chat("a2", user="alice") as sent:
        await app.start()
        assert (await app.starters(User(identifier="alice")))[0].message == "/resume"
        assert (await app.starters())[0].message != "/resume"  # the local user has no session
        coach = await app.get_coach()
        alice, bob = coach.history.user_id("alice"), coach.history.user_id("bob")
        assert [a.answer for a in coach.history.attempts(alice)] == ["alice's answer"]
        assert coach.history.attempts(bob) == []


def test_password_sign_in_checks_configured_users(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.history.users import authenticate, hash_password
    from bot.settings import Settings

    monkeypatch.setenv("INTERVIEW_USERS", f"alice:{hash_password('s3cret')}")
    settings = Settings()
    assert authenticate(settings, "alice", "s3cret") == "alice"
    assert authenticate(settings, "alice", "wrong") is None
    assert authenticate(settings, "mallory", "s3cret") is None


async def test_chainlit_constructors_sleep_only_without_the_patch(monkeypatch: pytest.MonkeyPatch) -> None:
    """``bot.adapters.web`` drops the 1 ms ``time.sleep`` of ``cl.Message`` / ``cl.Step`` (pinned
    Chainlit): this fails when Chainlit stops sleeping (drop the patch) or the patch stops applying."""
    import time

    import chainlit as cl

    from bot.adapters.web import unblock_chainlit_constructors

    modules = [importlib.import_module(name) for name in ("chainlit.message", "chainlit.step")]
    for module in modules:
        monkeypatch.setattr(module, "time", time)  # unpatched, and restored after the test
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    async with chat():
        cl.Message(content="x")
        cl.Step(name="s")
        assert slept == [0.001, 0.001]
        unblock_chainlit_constructors()
        slept.clear()
        cl.Message(content="x")
        cl.Step(name="s")
        assert slept == []
    assert all(module.time.monotonic is time.monotonic for module in modules)  # the rest of `time` is kept
