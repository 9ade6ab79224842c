"""The LLM grader: prompt files → an OpenAI-compatible chat model → a validated ``Grade``.

The chain is LCEL (a ``ChatPromptTemplate`` piped into the chat model bound to a structured
output format). The model is asked for JSON matching :class:`GraderOutput` — by a
``json_schema`` response format (OpenAI, llama.cpp, vLLM), by ``json_object`` mode plus the
schema in the prompt for servers without ``json_schema`` (llama-cpp-python, older Ollama), or by
a forced tool call — and every reply goes through the same parser and validator. The score is
computed in code from the checklist and the criteria (:func:`bot.grading.base.compute_score`).

Failure policy, never raising to the caller: a malformed or out-of-range reply is retried once;
transport errors (timeouts, 429, 5xx) are retried with backoff by the ``openai`` client; after
that the offline grader's grade is returned, labelled as a fallback, or ``ungraded`` if that is
impossible too.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable
from pydantic import BaseModel, Field, ValidationError

from bot.grading.base import (
    DEFAULT_CONCURRENCY,
    Claim,
    ClaimStatus,
    Criteria,
    FeedbackDelta,
    Grade,
    GradeEvent,
    Grader,
    GradeRequest,
    Usage,
    compute_score,
    grade_each,
    ungraded,
)
from bot.grading.budget import PASSAGE_TOKENS, TokenCounter, fit_examples, fit_prompt
from bot.grading.calibration import MAX_EXAMPLE_CHARS, CalibrationExample
from bot.grading.prompts import Prompt, PromptError, load_prompt, prompt_set_version
from bot.grading.rubric import Rubric
from bot.grading.safety import clean_answer
from bot.knowledge.text import strip_code_fence

__all__ = ["PRICES_PER_MTOK", "GraderOutput", "LLMGrader", "StructuredMode"]

StructuredMode = Literal["json_schema", "json_mode", "function_calling"]

# USD per million tokens (input, output) for cost estimates; settings can override.
PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1": (2.00, 8.00),
}


# The field descriptions the model sees are prompt text: they live in ``prompts/grader.fields.md``.
class KeyPoint(BaseModel):
    point: str = Field(max_length=400)
    status: Literal["hit", "missed", "contradicted"]
    evidence: str = Field("", max_length=400)


class GraderOutput(BaseModel):
    # What the model must return. Reasoning comes first; there is no score field.
    reasoning: str = Field(max_length=1200)
    key_points: list[KeyPoint] = Field(min_length=1, max_length=8)
    correctness: int = Field(ge=0, le=3)
    depth: int = Field(ge=0, le=2)
    misconceptions: list[str] = Field(default_factory=list, max_length=5)
    feedback: str = Field(max_length=1500)
    model_answer: str = Field(max_length=1500)
    reference_issue: str = Field("", max_length=500)


def output_schema(fields: Prompt) -> dict[str, Any]:
    """The JSON Schema of :class:`GraderOutput` with the descriptions from ``grader.fields``
    (one ``field: description`` line each; ``key_points.point`` for nested fields)."""
    descriptions: dict[str, str] = {}
    for line in fields.format().splitlines():
        key, sep, text = line.partition(":")
        if sep and key.strip():
            descriptions[key.strip()] = text.strip()
    schema = GraderOutput.model_json_schema()
    targets = [("", schema["properties"]), ("key_points.", schema["$defs"]["KeyPoint"]["properties"])]
    wanted = {prefix + name: prop for prefix, props in targets for name, prop in props.items()}
    if set(wanted) != set(descriptions):
        missing, extra = sorted(set(wanted) - set(descriptions)), sorted(set(descriptions) - set(wanted))
        raise PromptError(f"prompt {fields.name!r}: no description for {missing}, unknown fields {extra}")
    for key, prop in wanted.items():
        prop["description"] = descriptions[key]
    return schema


class _BadReply(Exception):
    """The model's reply was not valid JSON or did not match the schema."""


# An appeal is a short argument, not a second answer: longer ones are cut before the prompt.
APPEAL_MAX_CHARS = 2000


def _reply_text(message: BaseMessage, mode: StructuredMode) -> str:
    if mode == "function_calling":
        calls = getattr(message, "tool_calls", None) or []
        if calls:
            return json.dumps(calls[0].get("args", {}))
        chunks = getattr(message, "tool_call_chunks", None) or []
        return "".join(str(c.get("args") or "") for c in chunks)
    content = message.content
    if isinstance(content, list):
        content = "".join(part if isinstance(part, str) else str(part.get("text", "")) for part in content)
    return str(content)


def parse_reply(message: BaseMessage, mode: StructuredMode) -> GraderOutput:
    """Parse and validate a reply; raises :class:`_BadReply` with the reason."""
    text = strip_code_fence(_reply_text(message, mode))
    if not text:
        raise _BadReply("empty reply")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        start, end = text.find("{"), text.rfind("}")
        try:
            data = json.loads(text[start : end + 1]) if start >= 0 < end else None
        except json.JSONDecodeError:
            data = None
        if data is None:
            raise _BadReply("reply is not valid JSON") from None
    try:
        return GraderOutput.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise _BadReply(f"reply does not match the schema ({where}: {first['msg']})") from exc


def _usage(message: BaseMessage | None) -> tuple[int, int]:
    meta = getattr(message, "usage_metadata", None) or {}
    return int(meta.get("input_tokens", 0) or 0), int(meta.get("output_tokens", 0) or 0)


_FEEDBACK_KEY = re.compile(r'"feedback"\s*:\s*"')
_JSON_STRING_BODY = re.compile(r'(?:[^"\\]|\\.)*', re.S)


def _chunk_text(chunk: AIMessageChunk, mode: StructuredMode) -> str:
    """The reply text a streamed chunk adds (tool-call arguments in function-calling mode)."""
    if mode == "function_calling":
        return "".join(str(c.get("args") or "") for c in chunk.tool_call_chunks)
    content = chunk.content
    if isinstance(content, list):
        return "".join(part if isinstance(part, str) else str(part.get("text", "")) for part in content)
    return str(content)


class FeedbackScanner:
    """Pulls the ``"feedback"`` string out of a JSON reply while it streams.

    Work per chunk is proportional to the feedback seen so far, not to the whole reply: the reply
    is never re-parsed from the start (that made 50 concurrent streams CPU-bound).
    """

    def __init__(self) -> None:
        self._buf = ""
        self._start = -1
        self._shown = ""
        self._done = False

    def feed(self, piece: str) -> str:
        """Add reply text; return the feedback text that became visible (possibly "")."""
        if self._done or not piece:
            return ""
        self._buf += piece
        if self._start < 0:
            m = _FEEDBACK_KEY.search(self._buf, max(0, len(self._buf) - len(piece) - 16))
            if m is None:
                return ""
            self._start = m.end()
        body = _JSON_STRING_BODY.match(self._buf, self._start)
        raw = body.group(0) if body else ""
        end = body.end() if body else self._start
        self._done = end < len(self._buf) and self._buf[end] == '"'  # the closing quote arrived
        text = _decode_json_string_prefix(raw)
        if len(text) <= len(self._shown) or not text.startswith(self._shown):
            return ""
        new, self._shown = text[len(self._shown) :], text
        return new


def _decode_json_string_prefix(raw: str) -> str:
    """Decode the body of a JSON string that may end in the middle of an escape (e.g. ``\\u00``)."""
    for cut in range(0, 6):
        try:
            return str(json.loads('"' + raw[: len(raw) - cut] + '"'))
        except json.JSONDecodeError:
            continue
    return ""


def _bad_reply_error(exc: Exception) -> str:
    """Errors that mean 'the reply was unusable' (worth one retry), not 'the server is down'."""
    if isinstance(exc, json.JSONDecodeError):
        return "the server sent malformed JSON"
    if type(exc).__name__ == "LengthFinishReasonError":
        return "the reply was cut off at the token limit"
    if isinstance(exc, _BadReply):
        return str(exc)
    return ""


def _looks_unsupported(exc: Exception) -> bool:
    status = getattr(exc, "status_code", None)
    text = str(exc).lower()
    return status in (400, 422, 501) and any(w in text for w in ("response_format", "json_schema", "schema", "grammar"))


class LLMGrader:
    """Grades with any OpenAI-compatible chat model (or any LangChain chat model in tests)."""

    def __init__(
        self,
        chat_model: BaseChatModel,
        *,
        model_name: str,
        counter: TokenCounter,
        max_prompt_tokens: int = 1600,
        structured_output: Literal["auto", "json_schema", "json_mode", "function_calling"] = "auto",
        fallback: Grader | None = None,
        prompts_dir: Any = None,
        prices: tuple[float, float] | None = None,
    ) -> None:
        self._chat = chat_model
        self._model_name = model_name
        self._counter = counter
        self._budget = max_prompt_tokens
        self._auto = structured_output == "auto"
        self._mode: StructuredMode = "json_schema" if structured_output == "auto" else structured_output
        self._fallback = fallback
        self._prices = prices if prices is not None else PRICES_PER_MTOK.get(model_name)

        def load(name: str) -> Prompt:
            return load_prompt(name, prompts_dir)

        self._system: Prompt = load("grader.system")
        self._user: Prompt = load("grader.user")
        self._ref: Prompt = load("grader.reference")
        self._noref: Prompt = load("grader.no_reference")
        self._passages: Prompt = load("grader.passages")
        self._json_mode: Prompt = load("grader.json_mode")
        self._appeal: Prompt = load("grader.appeal")
        self._answer_cut: Prompt = load("grader.answer_cut")
        self._rubric: Prompt = load("grader.rubric")
        self._examples: Prompt = load("grader.examples")
        self._example: Prompt = load("grader.example")
        fields = load("grader.fields")
        self._schema = output_schema(fields)
        used = (self._system, self._user, self._ref, self._noref, self._passages, self._json_mode, self._appeal)
        extra = (self._answer_cut, self._rubric, self._examples, self._example, fields)
        self._prompt_version = prompt_set_version("grader", [*used, *extra])
        self._template = ChatPromptTemplate.from_messages([("system", "{system}"), ("human", "{user}")])
        self._chains: dict[StructuredMode, Runnable[Any, BaseMessage]] = {}  # built once per mode

    @property
    def name(self) -> str:
        return f"llm:{self._model_name}"

    @property
    def batched(self) -> bool:
        return False

    @property
    def prompt_version(self) -> str:
        """``grader-`` and a hash of every prompt file this grader reads (see ``prompt_set_version``)."""
        return self._prompt_version

    @property
    def mode(self) -> StructuredMode:
        return self._mode

    # -- prompt ------------------------------------------------------------------------------

    def _system_text(self) -> str:
        text = self._system.format()
        if self._mode == "json_mode":
            text += "\n\n" + self._json_mode.format(schema=json.dumps(self._schema, separators=(",", ":")))
        return text

    def _rubric_block(self, rubric: Rubric | None) -> str:
        if rubric is None:
            return ""
        points = "\n".join(f"{i}. [{p.weight}] {p.text}" for i, p in enumerate(rubric.points, 1))
        return "\n\n" + self._rubric.format(points=points, count=str(len(rubric.points)))

    def example_items(self, examples: Sequence[CalibrationExample]) -> list[str]:
        """Each graded example as its prompt block, cleaned like an answer (candidate-written text);
        an example with nothing left after cleaning is left out."""
        items: list[str] = []
        for ex in examples:
            answer = clean_answer(ex.answer[:MAX_EXAMPLE_CHARS]).text
            if not answer:
                continue
            items.append(
                self._example.format(
                    n=str(len(items) + 1),
                    question=clean_answer(ex.question[:APPEAL_MAX_CHARS]).text,
                    answer=answer,
                    score=f"{ex.score:.1f}",
                    band=ex.band,
                    why=clean_answer(ex.why[:APPEAL_MAX_CHARS]).text or "corrected grade",
                )
            )
        return items

    def _examples_block(self, items: Sequence[str]) -> str:
        if not items:
            return ""
        return self._examples.format(examples="\n".join(items), count=str(len(items)))

    def _user_text(
        self,
        question: str,
        reference: str,
        passages: list[str],
        answer: str,
        note: str,
        appeal: str = "",
        rubric: Rubric | None = None,
        examples: Sequence[str] = (),
    ) -> str:
        ref_block = self._ref.format(reference=reference) if reference.strip() else self._noref.format()
        if reference.strip():
            ref_block += self._rubric_block(rubric)
        pas_block = self._passages.format(passages="\n\n".join(f"- {p}" for p in passages)) if passages else ""
        return self._user.format(
            question=question.strip(),
            reference_block=ref_block,
            passages_block=pas_block,
            examples_block=self._examples_block(examples),
            answer=answer,
            answer_note=note,
            appeal_block=self._appeal.format(appeal=appeal) if appeal else "",
        )

    def build_messages(self, request: GradeRequest, answer: str) -> tuple[list[BaseMessage], list[str], bool]:
        """Render the prompt within the token budget. Returns (messages, notes, answer_trimmed)."""
        system = self._system_text()
        appeal = clean_answer(request.appeal[:APPEAL_MAX_CHARS]).text if request.appeal.strip() else ""

        def note_for(ans: str) -> str:
            return "\n" + self._answer_cut.format() if ans != answer else ""

        rubric = request.rubric
        # Graded examples are dropped (least similar first) before anything else is cut.
        cut_passages = [self._counter.truncate(p, PASSAGE_TOKENS) for p in request.passages]

        def render_examples(items: list[str]) -> str:
            user = self._user_text(request.question, request.reference, cut_passages, answer, "", appeal, rubric, items)
            return system + "\n" + user

        examples = fit_examples(self.example_items(request.examples), render_examples, self._counter, self._budget)

        def render(reference: str, passages: list[str], ans: str) -> str:
            user = self._user_text(request.question, reference, passages, ans, note_for(ans), appeal, rubric, examples)
            return system + "\n" + user

        fitted = fit_prompt(
            reference=request.reference,
            passages=list(request.passages),
            answer=answer,
            render=render,
            counter=self._counter,
            budget=self._budget,
        )
        user = self._user_text(
            request.question,
            fitted.reference,
            fitted.passages,
            fitted.answer,
            note_for(fitted.answer),
            appeal,
            rubric,
            examples,
        )
        messages = self._template.format_messages(system=system, user=user)
        return messages, fitted.notes, fitted.answer_trimmed

    # -- model call --------------------------------------------------------------------------

    def _chain(self) -> Runnable[Any, BaseMessage]:
        """The chat model bound to the current structured-output mode, traced as ``llm-grader``."""
        chain = self._chains.get(self._mode)
        if chain is None:
            chain = self._chains[self._mode] = self._bound().with_config(
                run_name="llm-grader",
                metadata={"prompt_version": self.prompt_version, "structured_output": self._mode},
            )
        return chain

    def _bound(self) -> Runnable[Any, BaseMessage]:
        if self._mode == "function_calling":
            tool = {"type": "function", "function": {"name": "GraderOutput", "parameters": self._schema}}
            return self._chat.bind_tools([tool], tool_choice="GraderOutput")
        # The response format travels in the request body as-is (``extra_body``). Passed as
        # ``response_format``, langchain-openai routes through the SDK's structured-output helpers,
        # which re-walk the schema on every request and re-parse the whole reply on every streamed
        # chunk: with 50 concurrent grades that alone kept the event loop busy for seconds.
        # We parse and validate the reply ourselves (one path with retry), so nothing is lost.
        if self._mode == "json_mode":
            return self._chat.bind(extra_body={"response_format": {"type": "json_object"}})
        fmt = {"type": "json_schema", "json_schema": {"name": "GraderOutput", "schema": self._schema}}
        return self._chat.bind(extra_body={"response_format": fmt})

    async def _call(
        self, messages: list[BaseMessage], on_delta: Callable[[str], Awaitable[None]] | None
    ) -> BaseMessage:
        chain = self._chain()
        if on_delta is None:
            return await chain.ainvoke(messages)
        chunks: list[AIMessageChunk] = []
        scanner = FeedbackScanner()
        async for chunk in chain.astream(messages):
            if not isinstance(chunk, AIMessageChunk):
                continue
            chunks.append(chunk)
            new = scanner.feed(_chunk_text(chunk, self._mode))
            if new:
                await on_delta(new)
        if not chunks:
            raise _BadReply("empty stream")
        return chunks[0] + chunks[1:] if len(chunks) > 1 else chunks[0]  # one merge, not one per chunk

    async def _grade(self, request: GradeRequest, on_delta: Callable[[str], Awaitable[None]] | None) -> Grade:
        clean = clean_answer(request.answer)
        notes: list[str] = []
        if clean.injections:
            notes.append("text that tried to instruct the grader was ignored (" + ", ".join(clean.injections) + ")")
        if clean.truncated:
            notes.append(f"your answer was cut from {clean.original_chars} characters before grading")
        no_reference = not request.reference.strip()
        if clean.empty:
            return Grade(
                score=0.0,
                feedback="No answer was given. Even a partial answer earns credit; say what you know.",
                grader=self.name,
                prompt_version=self.prompt_version,
                graded_without_reference=no_reference,
                notes=notes,
            )
        prompt_tokens = completion_tokens = 0
        problem = ""
        for attempt in range(3):
            messages, fit_notes, _ = self.build_messages(request, clean.text)
            try:
                reply = await self._call(messages, on_delta if attempt == 0 else None)
            except Exception as exc:  # transport errors arrive here after the client's own retries
                bad = _bad_reply_error(exc)
                if bad:
                    problem = bad
                    if attempt >= 1:
                        break
                    continue
                if self._auto and self._mode == "json_schema" and _looks_unsupported(exc):
                    self._mode = "json_mode"  # remember for this process: the server lacks json_schema
                    continue
                problem = _describe(exc)
                break
            p, c = _usage(reply)
            prompt_tokens, completion_tokens = prompt_tokens + p, completion_tokens + c
            try:
                out = parse_reply(reply, self._mode)
                rubric = request.rubric if not no_reference else None
                if rubric is not None and len(out.key_points) != len(rubric.points):
                    raise _BadReply(
                        f"reply marks {len(out.key_points)} key points, the rubric has {len(rubric.points)}"
                    )
            except _BadReply as exc:
                problem = str(exc)
                if attempt >= 1:
                    break
                continue
            usage = self._usage(prompt_tokens, completion_tokens)
            return self._to_grade(out, no_reference, notes + fit_notes, usage, rubric)
        return await self._fall_back(
            request, problem or "no valid reply", self._usage(prompt_tokens, completion_tokens)
        )

    def _usage(self, prompt_tokens: int, completion_tokens: int) -> Usage:
        cost = None
        if self._prices is not None:
            cost = round((prompt_tokens * self._prices[0] + completion_tokens * self._prices[1]) / 1e6, 6)
        return Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cost_usd=cost)

    def _to_grade(
        self, out: GraderOutput, no_reference: bool, notes: list[str], usage: Usage, rubric: Rubric | None = None
    ) -> Grade:
        """The grade from a validated reply. With a rubric the checklist is the rubric's points, by index
        (the reply's wording of a point is not used): same rubric, same checklist."""
        if rubric is not None:
            claims = [
                Claim(point=p.text, label=p.label, weight=p.weight, status=ClaimStatus(k.status), evidence=k.evidence)
                for p, k in zip(rubric.points, out.key_points, strict=True)
            ]
        else:
            claims = [Claim(point=k.point, status=ClaimStatus(k.status), evidence=k.evidence) for k in out.key_points]
        criteria = Criteria(correctness=out.correctness, depth=out.depth)
        return Grade(
            score=compute_score(claims, criteria),
            claims=claims,
            criteria=criteria,
            misconceptions=out.misconceptions,
            feedback=out.feedback.strip(),
            model_answer=out.model_answer.strip(),
            reference_issue="" if no_reference else out.reference_issue.strip(),
            graded_without_reference=no_reference,
            usage=usage,
            grader=self.name,
            prompt_version=self.prompt_version,
            notes=notes,
        )

    async def _fall_back(self, request: GradeRequest, reason: str, usage: Usage) -> Grade:
        reason = f"{self.name} failed: {reason}"
        if self._fallback is not None:
            try:
                grade = await self._fallback.agrade(request)
            except Exception as exc:  # a fallback must not crash the caller either
                return ungraded(f"{reason}; offline grader failed: {exc}", grader=self.name, usage=usage)
            if grade.graded:
                return grade.model_copy(update={"fallback_reason": reason})  # shown once, by the views
            return ungraded(f"{reason}; {grade.ungraded_reason}", grader=self.name, usage=usage)
        return ungraded(reason, grader=self.name, prompt_version=self.prompt_version, usage=usage)

    # -- public ------------------------------------------------------------------------------

    async def agrade(self, request: GradeRequest) -> Grade:
        """Grade one answer. Never raises."""
        try:
            return await self._grade(request, None)
        except Exception as exc:  # last line of defence: the caller always gets a Grade
            return ungraded(f"unexpected grader error: {_describe(exc)}", grader=self.name)

    async def agrade_many(
        self, requests: Sequence[GradeRequest], *, concurrency: int = DEFAULT_CONCURRENCY
    ) -> list[Grade]:
        """One model call per answer, at most ``concurrency`` at once."""
        return await grade_each(self, requests, concurrency)

    async def astream(self, request: GradeRequest) -> AsyncIterator[GradeEvent]:
        """Yield feedback text as it is generated, then the final ``Grade`` (always last)."""

        queue: asyncio.Queue[GradeEvent] = asyncio.Queue()

        async def on_delta(text: str) -> None:
            await queue.put(FeedbackDelta(text))

        async def run() -> None:
            try:
                grade = await self._grade(request, on_delta)
            except Exception as exc:
                grade = ungraded(f"unexpected grader error: {_describe(exc)}", grader=self.name)
            await queue.put(grade)

        task = asyncio.create_task(run())
        try:
            while True:
                item = await queue.get()
                yield item
                if isinstance(item, Grade):
                    break
        finally:
            await task


def _describe(exc: Exception) -> str:
    kind = type(exc).__name__
    status = getattr(exc, "status_code", None)
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{kind}{f' {status}' if status else ''}: {text}".strip(": ")
