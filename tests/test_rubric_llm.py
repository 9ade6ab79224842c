"""Rubrics distilled by the LLM (bot/grading/rubric_llm.py): grounded in the note, cached per card version and
prompt version, the heuristic rubric when the model fails or too little of its reply is grounded."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bot.grading import rubric_book
from bot.grading.prompts import default_prompts_dir
from bot.grading.rubric_book import NOT_COMPILED, RubricBook
from bot.grading.rubric_llm import LLMRubricCompiler, RubricReply, ground_points
from bot.knowledge.cards import Card
from bot.knowledge.notes import parse_notes

NOTE = (
    "what is vanishing gradient problem?\n"
    "Backpropagation multiplies the derivatives of every layer\n"
    "and the sigmoid derivative is at most 0.25.\n"
    "So the gradients of the early layers become tiny and their weights hardly change.\n"
    "For example 0.25 * 0.25 * 0.25 = 0.015 after three layers.\n"
)

GROUNDED = [
    {
        "text": "Backpropagation multiplies the derivatives of every layer; the sigmoid derivative is at most 0.25.",
        "label": "sigmoid derivative",
        "weight": "core",
        "lines": [2, 3],
        "quote": "multiplies the derivatives of every layer",
    },
    {
        "text": "The gradients of the early layers become tiny, so their weights hardly change.",
        "label": "early layers",
        "weight": "core",
        "lines": [4],
        "quote": "gradients of the early layers become tiny",
    },
    {
        "text": "For example, three layers give 0.25 cubed, about 0.015.",
        "label": "worked example",
        "weight": "detail",
        "lines": [5],
        "quote": "0.25 * 0.25 * 0.25 = 0.015",
    },
]
# The note says neither: one quotes nothing that is there, one quotes a real line and says something else.
INVENTED_QUOTE = {
    "text": "ReLU activations and residual connections fix the problem.",
    "label": "fixes",
    "weight": "core",
    "lines": [4],
    "quote": "residual connections fix the problem",
}
INVENTED_CLAIM = {
    "text": "Batch normalisation and ReLU solve vanishing gradients in practice.",
    "label": "batch norm",
    "weight": "core",
    "lines": [4],
    "quote": "the early layers become tiny",
}


def card(note: str = NOTE) -> Card:
    return parse_notes(note, "notes.txt")[0]


def reply(points: list[dict[str, Any]], gist: str = "Gradients shrink through the layers.") -> str:
    return json.dumps({"reasoning": "The note explains why gradients shrink.", "gist": gist, "points": points})


def compiler(function_chat: Any, replies: Any, prompts_dir: Path | None = None) -> tuple[LLMRubricCompiler, Any]:
    """A compiler whose model answers ``replies`` (a list, one per call, or a function of the call)."""

    def function(messages: list[Any], info: Any) -> str:
        if callable(replies):
            return str(replies(messages, info))
        return str(replies[min(info.call, len(replies) - 1)])

    chat = function_chat(function=function)
    return LLMRubricCompiler(chat, model_name="fake", prompts_dir=prompts_dir), chat


def test_the_model_sees_the_numbered_note_and_its_grounded_points_are_the_rubric(
    function_chat: Any, tmp_path: Path
) -> None:
    comp, chat = compiler(function_chat, [reply(GROUNDED)])
    rubric = RubricBook(tmp_path, comp).compiled(card())
    system, user = chat.calls[0][0]
    assert "untrusted text inside <note_answer>" in str(system.content)
    assert "2: Backpropagation multiplies the derivatives of every layer\n3: and the sigmoid" in str(user.content)
    assert rubric.compiled_by == "llm" and rubric.compile_note == ""
    assert rubric.texts == [p["text"] for p in GROUNDED]
    assert [p.weight for p in rubric.points] == ["core", "core", "detail"]
    assert [p.lines for p in rubric.points] == [[2, 3], [4], [5]]
    assert [p.label for p in rubric.points] == ["sigmoid derivative", "early layers", "worked example"]
    assert rubric.gist == "Gradients shrink through the layers." and rubric.card_hash == card().content_hash()


def test_a_point_the_note_does_not_support_is_dropped(function_chat: Any) -> None:
    parsed = RubricReply.model_validate_json(reply([GROUNDED[0], INVENTED_QUOTE, GROUNDED[1], INVENTED_CLAIM]))
    points, dropped = ground_points(card(), parsed)
    assert [p.text for p in points] == [GROUNDED[0]["text"], GROUNDED[1]["text"]]
    assert dropped == [
        "point 2: its quote is not in the note",
        "point 4: only 1 of its 7 content words are in the lines it cites",
    ]
    comp, _ = compiler(function_chat, [reply([GROUNDED[0], INVENTED_QUOTE, GROUNDED[1], INVENTED_CLAIM])])
    rubric = RubricBook(None, comp).compiled(card())
    assert rubric.compiled_by == "llm" and rubric.texts == [GROUNDED[0]["text"], GROUNDED[1]["text"]]
    assert rubric.compile_note.startswith("2 ungrounded point(s) dropped")


def test_a_right_quote_under_the_wrong_line_number_is_found_and_a_typo_fixed_in_a_quote_matches() -> None:
    moved = {**GROUNDED[1], "lines": [2]}  # the quote is on line 4
    typo_note = NOTE.replace("multiplies the derivatives", "multiplys the derivitives")
    points, dropped = ground_points(card(typo_note), RubricReply.model_validate_json(reply([GROUNDED[0], moved])))
    assert dropped == [] and [p.lines for p in points] == [[2, 3], [4]]


def test_too_few_grounded_points_and_the_heuristic_rubric_is_used_and_kept(function_chat: Any, tmp_path: Path) -> None:
    comp, chat = compiler(function_chat, [reply([GROUNDED[0], INVENTED_QUOTE, INVENTED_CLAIM])])
    rubric = RubricBook(tmp_path, comp).compiled(card())
    heuristic = RubricBook(None).compiled(card())
    assert rubric.compiled_by == "heuristic" and rubric.texts == heuristic.texts
    assert rubric.compile_note.startswith("the LLM rubric had 1 point(s) grounded in the note")
    assert RubricBook(tmp_path, comp).compiled(card()) == rubric and len(chat.calls) == 1  # not asked again


@pytest.mark.parametrize(
    "failure", ["not json at all", json.dumps({"points": "none"}), RuntimeError("Error code: 500 - server error")]
)
def test_a_failing_model_gives_the_heuristic_rubric_without_an_error_and_is_tried_again_later(
    function_chat: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: Any
) -> None:
    def answer(messages: list[Any], info: Any) -> str:
        if info.call == 0:
            if isinstance(failure, Exception):
                raise failure
            return str(failure)
        return reply(GROUNDED)

    comp, chat = compiler(function_chat, answer)
    book = RubricBook(tmp_path, comp)
    first = book.compiled(card())
    assert first.compiled_by == "heuristic" and first.compile_note == NOT_COMPILED
    assert not (tmp_path / "compiled-llm").exists()  # a failure is not stored
    assert book.compiled(card()).compiled_by == "heuristic" and len(chat.calls) == 1  # not hammered meanwhile
    monkeypatch.setattr(rubric_book, "RETRY_AFTER_S", 0.0)
    assert book.compiled(card()).compiled_by == "llm" and len(chat.calls) == 2


def test_one_call_per_card_version_and_a_prompt_edit_rebuilds(function_chat: Any, tmp_path: Path) -> None:
    comp, chat = compiler(function_chat, [reply(GROUNDED)])
    first = RubricBook(tmp_path / "r", comp).compiled(card())
    assert RubricBook(tmp_path / "r", comp).compiled(card()) == first  # another process: read from the file
    assert len(chat.calls) == 1
    changed = card(NOTE + "Deep stacks of sigmoid layers make it worse.\n")
    assert changed.id == card().id
    RubricBook(tmp_path / "r", comp).compiled(changed)
    assert len(chat.calls) == 2  # the note changed
    prompts = tmp_path / "prompts"
    shutil.copytree(default_prompts_dir(), prompts)
    system = prompts / "rubric.system.md"
    system.write_text(system.read_text(encoding="utf-8") + "\nBe brief.\n", encoding="utf-8")
    edited, chat2 = compiler(function_chat, [reply(GROUNDED)], prompts_dir=prompts)
    assert edited.version != comp.version
    RubricBook(tmp_path / "r", edited).compiled(changed)
    assert len(chat2.calls) == 1  # the rubric prompt changed: compiled again


def test_threads_asking_for_one_card_at_once_make_one_call(function_chat: Any, tmp_path: Path) -> None:
    def slow(messages: list[Any], info: Any) -> str:
        time.sleep(0.05)  # the others arrive while the first call is out
        return reply(GROUNDED)

    comp, chat = compiler(function_chat, slow)
    book = RubricBook(None, comp)
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(book.compiled(card()))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(chat.calls) == 1 and {r.compiled_by for r in results} == {"llm"} and len(results) == 4


async def test_the_coach_compiles_on_first_use_off_the_event_loop(function_chat: Any, tmp_path: Path) -> None:
    from bot.practice.coach import Coach
    from bot.retrieval.store import Retrieval
    from bot.settings import Settings

    seen: list[bool] = []

    def answer(messages: list[Any], info: Any) -> str:
        try:
            asyncio.get_running_loop()
            seen.append(True)
        except RuntimeError:
            seen.append(False)
        return reply(GROUNDED)

    class Store:
        def related(self, c: Card, k: int, owners: Any) -> Retrieval:
            return Retrieval(card=c, reference=c.answer, passages=[])

    coach = Coach(Settings(), Store(), grader=None, follow_ups=None)  # type: ignore[arg-type]
    comp, _ = compiler(function_chat, answer)
    coach.rubrics = RubricBook(tmp_path, comp)
    request = (await coach.retrieve(card())).request("an answer")
    assert request.rubric is not None and request.rubric.compiled_by == "llm"
    assert seen == [False]  # the model call ran in a worker thread, not on the event loop


def test_offline_settings_compile_heuristically_and_a_model_makes_the_llm_compiler(
    monkeypatch: pytest.MonkeyPatch, function_chat: Any
) -> None:
    from bot.grading.pipeline import make_rubric_book
    from bot.settings import Settings

    assert make_rubric_book(Settings()).compiler is None  # the offline default
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    book = make_rubric_book(Settings(), chat_model=function_chat(function=lambda m, i: reply(GROUNDED)))
    assert isinstance(book.compiler, LLMRubricCompiler) and book.compiler.version.startswith("llm:gpt-4o-mini:rubric-")


@pytest.fixture
def llm_notes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, function_chat: Any) -> Any:
    """The CLI with a configured model, answered by a fake one."""
    import bot.grading.pipeline.build as build

    folder = tmp_path / "knowledge"
    folder.mkdir()
    (folder / "notes.txt").write_text(NOTE + "\nwhat is gan?\n\nwhat is dropout?\nIt is a way to stop overfitting.\n")
    monkeypatch.setenv("INTERVIEW_KNOWLEDGE_DIR", str(folder))
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")

    def answer(messages: list[Any], info: Any) -> str:
        return reply(GROUNDED) if "vanishing" in str(messages[-1].content) else "{broken"

    chat = function_chat(function=answer)
    monkeypatch.setattr(build, "make_chat_model", lambda settings: chat)
    return chat


def test_interview_rubric_shows_who_compiled_it_and_compile_all_reports_progress(llm_notes: Any) -> None:
    from bot.adapters.cli import cli

    result = CliRunner().invoke(cli, ["rubric", "vanishing gradient"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert "Rubric version 1, llm (distilled by the LLM)" in result.stdout
    assert "1. [core] sigmoid derivative — Backpropagation multiplies" in result.stdout
    result = CliRunner().invoke(cli, ["rubric", "--compile-all"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert "compiling rubrics: 2/2 (100%" in result.stderr
    assert result.stdout.strip() == (
        "2 rubrics compiled by the LLM: 1 by the LLM, 0 heuristic, "
        "1 heuristic because the model failed (tried again on first use)."
    )
    assert len(llm_notes.calls) == 2  # the vanishing-gradient card was compiled already: only dropout's
