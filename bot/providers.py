"""Provider factory: every external client (embeddings, Chroma) is built here from settings."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from bot.retrieval.store import CardStore, Embedder
from bot.settings import Settings

__all__ = ["LocalEmbedder", "OpenAIEmbedder", "make_chroma_client", "make_embedder", "open_store"]


class LocalEmbedder:
    """all-MiniLM-L6-v2 through ONNX Runtime (offline)."""

    model_id = "all-MiniLM-L6-v2"

    def __init__(self, settings: Settings) -> None:
        from bot.retrieval.embeddings import MiniLMEmbedder

        self._inner = MiniLMEmbedder(settings.embedding_model_dir, threads=settings.embed_threads or None)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._inner.embed(texts)


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible ``/v1/embeddings`` endpoint (OpenAI, Ollama, vLLM…)."""

    def __init__(self, settings: Settings, *, batch_size: int = 128) -> None:
        self._settings = settings
        self._batch = batch_size
        self._client: Any = None
        self._lock = threading.Lock()
        self.model_id = f"openai-{settings.openai_embedding_model}"

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                from openai import OpenAI

                key = self._settings.openai_api_key
                self._client = OpenAI(
                    api_key=key.get_secret_value() if key else "not-needed",
                    base_url=self._settings.openai_base_url,
                    timeout=self._settings.openai_timeout,
                    max_retries=self._settings.openai_max_retries,
                )
            return self._client

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        client = self._get_client()
        rows: list[list[float]] = []
        for start in range(0, len(texts), self._batch):
            chunk = [t if t.strip() else " " for t in texts[start : start + self._batch]]
            resp = client.embeddings.create(model=self._settings.openai_embedding_model, input=chunk)
            rows.extend(item.embedding for item in sorted(resp.data, key=lambda d: d.index))
        arr = np.asarray(rows, dtype=np.float32)
        norms = np.linalg.norm(arr, axis=1, keepdims=True)
        return arr / np.where(norms == 0, 1.0, norms)


def make_embedder(settings: Settings) -> Embedder:
    if settings.embeddings == "openai":
        return OpenAIEmbedder(settings)
    return LocalEmbedder(settings)


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


def make_offline_grader(settings: Settings, embedder: Embedder | None = None) -> Any:
    from bot.grading.offline.grader import OfflineGrader

    return OfflineGrader(embedder or make_embedder(settings))


def make_grader(
    settings: Settings, embedder: Embedder | None = None, *, kind: str | None = None, mode: str = "cli"
) -> Any:
    """The configured grader: the LLM grader (with the offline grader as its fallback) or offline.

    With LangSmith tracing on, every grade is traced with metadata (``mode`` says who asked).
    """
    from bot.grading.pipeline.tracing import maybe_traced

    choice = kind or ("llm" if settings.use_llm_grader else "offline")
    offline = make_offline_grader(settings, embedder)
    if choice == "offline":
        return maybe_traced(offline, mode=mode)
    from bot.grading.budget import TokenCounter
    from bot.grading.llm import LLMGrader

    prices = None
    if settings.price_input_per_mtok is not None and settings.price_output_per_mtok is not None:
        prices = (settings.price_input_per_mtok, settings.price_output_per_mtok)
    grader = LLMGrader(
        make_chat_model(settings),
        model_name=settings.llm_model,
        counter=TokenCounter(settings.tiktoken_dir),
        max_prompt_tokens=settings.grader_max_prompt_tokens,
        structured_output=settings.structured_output,
        fallback=offline,
        prompts_dir=settings.prompts_dir,
        prices=prices,
    )
    return maybe_traced(grader, mode=mode)


def make_follow_up_writer(settings: Settings) -> Any:
    """Interviewer follow-ups: written by the chat model when an LLM grader is configured, else offline."""
    from bot.grading.followups import LLMFollowUps, OfflineFollowUps

    if settings.use_llm_grader:
        return LLMFollowUps(make_chat_model(settings), prompts_dir=settings.prompts_dir)
    return OfflineFollowUps()


def make_chroma_client(settings: Settings) -> Any:
    """Embedded PersistentClient under the data dir, or an HttpClient when CHROMA_HOST is set."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_host:
        return chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings)
    settings.chroma_path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.chroma_path), settings=chroma_settings)


def open_store(settings: Settings, embedder: Embedder | None = None) -> CardStore:
    return CardStore(make_chroma_client(settings), embedder or make_embedder(settings), prefix=settings.collection)
