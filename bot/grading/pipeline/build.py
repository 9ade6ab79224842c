"""The one place a grader pipeline is assembled from settings.

``build_grader`` returns the configured grader — the LLM grader with the offline grader as its
fallback, or the offline grader alone — wrapped for LangSmith tracing when tracing is on, and, when
asked (the web app), moved into a worker process. Every layer implements the whole
:class:`~bot.grading.base.Grader` protocol. Load control is the web adapter's own business
(:mod:`bot.adapters.load`).
"""

from __future__ import annotations

import atexit
import os
from typing import TYPE_CHECKING, Any

from bot.grading.base import Grader
from bot.grading.pipeline.tracing import maybe_traced

if TYPE_CHECKING:
    from bot.grading.followups import LLMFollowUps, OfflineFollowUps
    from bot.grading.offline.grader import OfflineGrader
    from bot.grading.rubric_book import RubricBook
    from bot.retrieval.embeddings import Embedder
    from bot.settings import Settings

__all__ = [
    "GRADER_KINDS",
    "build_grader",
    "make_chat_model",
    "make_follow_up_writer",
    "make_offline_grader",
    "make_rubric_book",
]

GRADER_KINDS = ("llm", "offline")
AUTO_WORKERS = 2
"""Grader worker processes when ``INTERVIEW_GRADER_WORKERS`` is 0 (auto): one per core, up to this."""


def make_chat_model(settings: Settings) -> Any:
    """ChatOpenAI for OpenAI or any compatible server (Ollama, vLLM, LM Studio, llama.cpp)."""
    from langchain_openai import ChatOpenAI

    key = settings.openai_api_key
    return ChatOpenAI(
        model=settings.llm_model,
        api_key=key.get_secret_value() if key else "not-needed",  # type: ignore[arg-type]
        base_url=settings.openai_base_url,
        temperature=settings.llm_temperature,
        timeout=settings.openai_timeout,
        max_retries=settings.openai_max_retries,
        max_tokens=settings.grader_max_output_tokens,  # type: ignore[call-arg]
        stream_usage=True,
    )


def make_offline_grader(settings: Settings, embedder: Embedder | None = None) -> OfflineGrader:
    from bot.grading.offline.grader import OfflineGrader
    from bot.retrieval.embeddings import make_embedder

    return OfflineGrader(embedder or make_embedder(settings))


def _llm_grader(settings: Settings, fallback: Grader) -> Grader:
    from bot.grading.budget import TokenCounter
    from bot.grading.llm import LLMGrader

    prices = None
    if settings.price_input_per_mtok is not None and settings.price_output_per_mtok is not None:
        prices = (settings.price_input_per_mtok, settings.price_output_per_mtok)
    return LLMGrader(
        make_chat_model(settings),
        model_name=settings.llm_model,
        counter=TokenCounter(settings.tiktoken_dir),
        max_prompt_tokens=settings.grader_max_prompt_tokens,
        structured_output=settings.structured_output,
        fallback=fallback,
        prompts_dir=settings.prompts_dir,
        prices=prices,
    )


def build_grader(
    settings: Settings,
    embedder: Embedder | None = None,
    *,
    kind: str | None = None,
    mode: str = "cli",
    worker: bool = False,
) -> Grader:
    """The configured grader pipeline.

    ``kind`` overrides the configured choice; ``mode`` names who grades in the trace metadata (cli,
    eval, web, terminal); ``worker``: run LLM grades in worker processes when the settings allow it
    (``INTERVIEW_GRADER_PROCESS=auto``, more than one core; ``INTERVIEW_GRADER_WORKERS`` of them) — the
    in-process pipeline stays as each worker's fallback, so a grade is never lost.
    """
    choice = kind or ("llm" if settings.use_llm_grader else "offline")
    if choice not in GRADER_KINDS:
        raise ValueError(f"unknown grader {choice!r}: choose one of {', '.join(GRADER_KINDS)}")
    offline = make_offline_grader(settings, embedder)
    grader: Grader = offline if choice == "offline" else _llm_grader(settings, offline)
    grader = maybe_traced(grader, mode=mode)
    cores = os.cpu_count() or 1
    if worker and choice == "llm" and settings.grader_process == "auto" and cores > 1:
        from bot.grading.pipeline.worker import GraderPool

        pool = GraderPool(grader, settings.grader_workers or min(cores, AUTO_WORKERS)).start()
        atexit.register(pool.stop)
        return pool
    return grader


def make_follow_up_writer(settings: Settings) -> LLMFollowUps | OfflineFollowUps:
    """Interviewer follow-ups: written by the chat model when an LLM grader is configured, else offline."""
    from bot.grading.followups import LLMFollowUps, OfflineFollowUps

    if settings.use_llm_grader:
        return LLMFollowUps(make_chat_model(settings), prompts_dir=settings.prompts_dir)
    return OfflineFollowUps()


def make_rubric_book(settings: Settings, *, chat_model: Any = None) -> RubricBook:
    """The rubrics under the data directory: distilled by the chat model when the LLM grader is in use
    (the heuristic rubric is its fallback), else the heuristic rubric alone (the offline default)."""
    from bot.grading.rubric_book import RubricBook

    compiler = None
    if settings.use_llm_grader:
        from bot.grading.rubric_llm import LLMRubricCompiler

        compiler = LLMRubricCompiler(
            chat_model if chat_model is not None else make_chat_model(settings),
            model_name=settings.llm_model,
            prompts_dir=settings.prompts_dir,
        )
    return RubricBook(settings.data_dir / "rubrics", compiler)
