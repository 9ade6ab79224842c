"""End to end: start the real app (`interview web`) and drive sessions over socket.io, as the web UI does.

The protocol lives in ``tests/chainlit_client.py``; these tests check the app's UI contract: starters
and no message on connect, a session started by the first message, questions with their buttons,
grades, hints, typed commands, the session report, and odd input (empty, a 200 KB paste).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chainlit_client import AppServer, ChainlitClient, Msg, serve_seeded
from tests.conftest import REAL_NOTES

pytestmark = pytest.mark.slow

QUESTION_ACTIONS = ("hint", "skip", "reveal", "end")
GRADED = re.compile(r"Score: \d+(\.\d+)?/10|Ungraded")
ANSWER = "Dropout randomly drops neurons during training so the network cannot co-adapt; it reduces overfitting."


@pytest.fixture(scope="module")
def app(_seeded_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """One `interview web` for the module, offline grader, on a private copy of the ingested notes."""
    yield from serve_seeded(_seeded_template, tmp_path_factory.mktemp("app"), knowledge=REAL_NOTES.parent)


def _no_errors(chat: ChainlitClient, app: AppServer) -> None:
    assert not chat.errors, f"errors: {chat.errors}\nmessages: {chat.dump()}\nserver log:\n{app.output()[-3000:]}"


async def _start(chat: ChainlitClient, command: str) -> Msg:
    """Send the session's first message; return the first question (with its four buttons)."""
    await chat.send(command)
    return await chat.wait_for("Question 1 of", actions=QUESTION_ACTIONS)


async def test_connect_sends_settings_and_no_message_so_starters_show(app: AppServer) -> None:
    async with ChainlitClient(app.url) as chat:
        starters = await chat.starters()
        by_message = {s["message"]: s["label"] for s in starters}
        expected = {
            "/drill 5": "Quick drill",
            "/interview": "Mock interview",
            "/review": "Review what's due",
            "/progress": "Progress",
        }
        for message, label in expected.items():
            assert message in by_message, f"no starter sends {message!r}: {starters}"
            assert by_message[message].startswith(label), f"starter for {message!r} is {by_message[message]!r}"
        for _ in range(40):  # on_chat_start runs as a task after "connection_successful"
            if chat.chat_settings is not None:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)
        assert chat.chat_settings, "the app sent no chat settings on connect"
        assert chat.outputs() == [], f"a message on connect hides the starters: {chat.outputs()}"
        _no_errors(chat, app)


async def test_drill_question_hint_answer_grade_next_skip_end_report(app: AppServer) -> None:
    async with ChainlitClient(app.url) as chat:
        q1 = await _start(chat, "/drill 3")
        first = chat.ordered()[0]
        assert "Grading: **offline grader**" in first.output, f"first bot message: {first.output!r}"
        assert "Question 1 of 3" in q1.output
        labels = {a["name"]: a["label"] for a in q1.actions}
        assert labels == {"hint": "💡 Hint", "skip": "Skip", "reveal": "Reveal reference", "end": "End session"}

        mark = chat.mark()
        response = await chat.click("hint", q1)
        assert response.get("success") is True
        await chat.wait_for(lambda t: t.startswith("💡 Hint"), after=mark)

        mark = chat.mark()
        await chat.send(ANSWER)
        grade = await chat.wait_for(GRADED, after=mark, actions=("retry", "appeal"))
        assert "graded by offline" in grade.output or "Ungraded" in grade.output, grade.output
        appeal = grade.action("appeal")
        assert appeal is not None and appeal["label"] == "I think I was right"
        q2 = await chat.wait_for("Question 2 of 3", after=grade.seq, actions=QUESTION_ACTIONS)

        mark = chat.mark()
        await chat.click("skip", q2)
        await chat.wait_for("Question 3 of 3", after=mark, actions=QUESTION_ACTIONS)

        mark = chat.mark()
        await chat.send("/end")
        report = await chat.wait_for(
            "Session report",
            after=mark,
            where=lambda m: (
                any(e.get("type") == "plotly" for e in m.elements)
                and any(e.get("type") == "file" and str(e.get("name", "")).endswith(".md") for e in m.elements)
            ),
        )
        md = next(e for e in report.elements if e.get("type") == "file")
        content = (await chat.fetch_element(md)).decode()
        assert content.strip(), "the downloadable report is empty"
        _no_errors(chat, app)


async def test_typed_commands_answer_like_the_buttons(app: AppServer) -> None:
    async with ChainlitClient(app.url) as chat:
        await _start(chat, "/drill 3")

        mark = chat.mark()
        await chat.send("/hint")
        await chat.wait_for(lambda t: t.startswith("💡 Hint"), after=mark)
        await chat.wait_idle()

        mark = chat.mark()
        await chat.send("/reveal")
        revealed = await chat.wait_for(lambda t: bool(t.strip()), after=mark)
        assert "From your notes" in revealed.output or "no answer" in revealed.output, revealed.output
        await chat.wait_idle()

        mark = chat.mark()
        await chat.send(ANSWER)
        await chat.wait_for(GRADED, after=mark, actions=("retry", "appeal"))
        await chat.wait_for("Question 2 of 3", after=mark)
        await chat.wait_idle()

        mark = chat.mark()
        await chat.send("/skip")
        await chat.wait_for("Question 3 of 3", after=mark)
        await chat.wait_idle()

        for command in ("/retry", "/appeal Dropout is exactly what my notes describe.", "/next"):
            mark = chat.mark()
            await chat.send(command)
            reply = await chat.wait_for(lambda t: bool(t.strip()), after=mark)
            assert not reply.is_error, f"{command}: {reply.output}"
            await chat.wait_idle()

        if chat.find("Session report") is None:  # /next on the last question may already have ended it
            mark = chat.mark()
            await chat.send("/end")
            await chat.wait_for("Session report", after=mark)
        _no_errors(chat, app)


async def test_empty_message_and_huge_paste_get_a_reply_not_an_error(app: AppServer) -> None:
    async with ChainlitClient(app.url) as chat:
        await _start(chat, "/drill 2")

        mark = chat.mark()
        await chat.send("")
        await chat.wait_for(lambda t: "empty" in t.lower(), after=mark)
        await chat.wait_idle()

        mark = chat.mark()
        await chat.send(("Dropout randomly zeroes activations during training. " * 4000)[:200_000])
        await chat.wait_for(re.compile(r"too long|trimm", re.IGNORECASE), after=mark, timeout=120)
        await chat.wait_idle(timeout=120)
        _no_errors(chat, app)


async def _interview_answer(chat: ChainlitClient) -> tuple[Msg, list[Msg]]:
    """Answer question 1 in interview mode; return the first message after it and the follow-ups asked."""
    await _start(chat, "/interview")
    mark = chat.mark()
    await chat.send(ANSWER)
    first = await chat.wait_for(re.compile(r"Follow-up|Score: \d|Ungraded"), after=mark)
    follow_ups = []
    if "Follow-up" in first.output:
        follow_ups.append(await chat.wait_for("Follow-up", after=mark, actions=("hint", "next", "end")))
    return first, follow_ups


async def test_interview_mode_follow_ups_then_grade_with_reveal_then_next(app: AppServer) -> None:
    async with ChainlitClient(app.url) as chat:
        first, follow_ups = await _interview_answer(chat)
        mark = first.seq - 1
        # The app holds the grade back while it probes: answer each follow-up until the question is graded.
        while follow_ups and chat.find(GRADED, after=mark) is None:
            assert len(follow_ups) <= 3, f"endless follow-ups: {chat.dump()}"
            await chat.wait_idle()
            step = chat.mark()
            await chat.send("Because dropping units forces redundant features, which generalise better.")
            nxt = await chat.wait_for(re.compile(r"Follow-up|Score: \d|Ungraded"), after=step)
            if "Follow-up" in nxt.output:
                follow_ups.append(await chat.wait_for("Follow-up", after=step, actions=("hint", "next", "end")))
        grade = await chat.wait_for(GRADED, after=mark, actions=("retry", "appeal", "reveal"))
        await chat.wait_for("Question 2 of", after=grade.seq, actions=QUESTION_ACTIONS)
        await chat.wait_idle()

        mark = chat.mark()
        await chat.click("end")
        report = await chat.wait_for("Session report", after=mark)
        assert "interview" in report.output.lower()
        _no_errors(chat, app)


async def test_interview_next_on_a_follow_up_still_shows_the_grade(app: AppServer) -> None:
    async with ChainlitClient(app.url) as chat:
        first, follow_ups = await _interview_answer(chat)
        if not follow_ups:
            pytest.skip("no follow-up was asked for this question")
        mark = chat.mark()
        await chat.click("next", follow_ups[0])
        await chat.wait_for("Question 2 of", after=mark, actions=QUESTION_ACTIONS)
        await chat.wait_idle()
        assert chat.find(GRADED, after=first.seq - 1) is not None, f"question 1 was never graded: {chat.dump()}"
        _no_errors(chat, app)


async def test_edit_key_points_of_a_graded_answer_and_see_it_graded_again(app: AppServer) -> None:
    """The "Edit key points" button on a grade: the points come back editable in chat, the edited ones
    are sent as a message, and the same answer is graded again against them."""
    async with ChainlitClient(app.url) as chat:
        await _start(chat, "/drill 5")
        grade = None
        for n in range(2, 7):  # a question your notes don't answer has no key points to edit: go on
            mark = chat.mark()
            await chat.send(ANSWER)
            graded = await chat.wait_for(GRADED, after=mark, actions=("retry", "appeal"))
            await chat.wait_for("Rated", after=graded.seq)  # sent after the grade's buttons
            if graded.action("points") is not None:
                grade = graded
                break
            await chat.wait_for(f"Question {n} of 5", after=graded.seq, actions=QUESTION_ACTIONS)
        assert grade is not None, chat.dump()
        assert grade.action("points")["label"] == "Edit key points"  # type: ignore[index]

        mark = chat.mark()
        await chat.click("points", grade)
        shown = await chat.wait_for("Key points for", after=mark)
        lines = re.search(r"```text\n(.*?)\n```", shown.output, re.S)
        assert lines and lines.group(1).count(" | ") >= 2, shown.output

        mark = chat.mark()
        await chat.send(
            "core | dropout | Dropout randomly drops neurons during training so the network cannot co-adapt."
        )
        await chat.wait_for("Key points saved", after=mark)
        again = await chat.wait_for(lambda t: "With your key points:" in t, after=mark)
        assert GRADED.search(again.output), again.output
        _no_errors(chat, app)
