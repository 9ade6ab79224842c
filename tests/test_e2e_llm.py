"""End to end with a model: the real app, `OPENAI_BASE_URL` at the fake OpenAI-compatible server.

A whole session over socket.io — question → answer → LLM grade → next → report — and an
interview whose follow-up is written by the model. The grades go through the grader worker
process, so this also proves the app → worker → model path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chainlit_client import AppServer, ChainlitClient, serve_seeded
from tests.conftest import REAL_NOTES
from tests.fake_openai import FakeOpenAI, Reply, rubric_size

pytestmark = pytest.mark.slow

QUESTION_ACTIONS = ("hint", "skip", "reveal", "end")
GRADED = re.compile(r"Score: \d+(\.\d+)?/10")
ANSWER = "It switches off random neurons while training so that the network does not overfit."
FOLLOW_UP = "How would you pick the drop probability, and what happens at inference time?"


def grader_reply(statuses: tuple[str, ...]) -> dict[str, Any]:
    return {
        "reasoning": "Checked each key point against the answer.",
        "key_points": [
            {"point": f"key point {i + 1}", "status": st, "evidence": "switches off random neurons" * (st == "hit")}
            for i, st in enumerate(statuses)
        ],
        "correctness": 3,
        "depth": 1,
        "misconceptions": [],
        "feedback": "Right idea; now say why it reduces co-adaptation.",
        "model_answer": "Dropout zeroes random activations during training.",
        "reference_issue": "",
    }


def respond(req: dict[str, Any]) -> Reply:
    fmt = ((req.get("response_format") or {}).get("json_schema") or {}).get("name")
    if fmt == "GraderOutput":
        # Like a model that follows the prompt: one entry per rubric point when the card has a rubric
        # (the last one missed), else its own two points (one missed).
        n = rubric_size(req, 2)
        return Reply.json(grader_reply(("hit",) * (n - 1) + ("missed",)))
    return Reply.content(FOLLOW_UP)  # the interviewer's follow-up (plain text)


@pytest.fixture(scope="module")
def model() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        fake.chat.default = respond
        yield fake


@pytest.fixture(scope="module")
def app(model: FakeOpenAI, _seeded_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    env = {**model.env(), "INTERVIEW_GRADER": "llm", "INTERVIEW_LLM_MODEL": "gpt-4o-mini"}
    yield from serve_seeded(_seeded_template, tmp_path_factory.mktemp("llm"), knowledge=REAL_NOTES.parent, env=env)


def grading_requests(model: FakeOpenAI) -> list[dict[str, Any]]:
    return [
        r["json"]
        for r in model.requests("chat")
        if (((r["json"] or {}).get("response_format") or {}).get("json_schema") or {}).get("name") == "GraderOutput"
    ]


async def test_study_session_graded_by_the_model_end_to_end(app: AppServer, model: FakeOpenAI) -> None:
    async with ChainlitClient(app.url) as chat:
        await chat.send("/drill 2")
        q1 = await chat.wait_for("Question 1 of 2", actions=QUESTION_ACTIONS)
        assert "Grading: **llm:gpt-4o-mini**" in chat.ordered()[0].output
        mark = chat.mark()
        await chat.send(ANSWER)
        grade = await chat.wait_for(GRADED, after=mark, actions=("retry", "appeal"))
        assert "graded by llm:gpt-4o-mini" in grade.output  # the model's grade, no offline fallback
        assert "now say why it reduces co-adaptation" in grade.output
        sent = grading_requests(model)[-1]
        user = sent["messages"][-1]["content"]
        assert ANSWER in user and q1.output.split("### ", 1)[1].strip() in user  # the question and answer
        assert sent["response_format"]["type"] == "json_schema"

        q2 = await chat.wait_for("Question 2 of 2", after=grade.seq, actions=QUESTION_ACTIONS)
        mark = chat.mark()
        await chat.click("skip", q2)
        report = await chat.wait_for(
            "Session report", after=mark, where=lambda m: any(e.get("type") == "plotly" for e in m.elements)
        )
        assert "1 skipped (counted as 0)" in report.output and "graded by llm:gpt-4o-mini" in report.output
        assert not chat.errors, chat.dump()
    assert "Traceback" not in app.output()


async def test_interview_follow_up_is_written_by_the_model(app: AppServer, model: FakeOpenAI) -> None:
    async with ChainlitClient(app.url) as chat:
        await chat.send("/interview 1")
        await chat.wait_for("Question 1 of 1", actions=QUESTION_ACTIONS)
        mark = chat.mark()
        await chat.send(ANSWER)
        follow = await chat.wait_for("Follow-up 1 of 2", after=mark, actions=("hint", "next", "end"))
        assert FOLLOW_UP in follow.output
        mark = chat.mark()
        await chat.send("Scale the kept activations by 1/(1-p) during training; nothing is dropped at inference.")
        grade = await chat.wait_for(GRADED, after=mark)  # each missed point is probed once: no second follow-up
        assert "graded by llm:gpt-4o-mini" in grade.output
        report = await chat.wait_for("Session report", after=mark)
        assert "## Reference answers" in report.output or "## Weakest questions" in report.output
        graded = grading_requests(model)
        combined = graded[-1]["messages"][-1]["content"]
        assert ANSWER in combined and "1/(1-p)" in combined  # the follow-up answer is graded with the first
        assert not chat.errors, chat.dump()
