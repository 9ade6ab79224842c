"""All configuration in one typed object, read from the environment and an optional ``.env``.

Every field names its environment variable. Nothing is read at import time: call
:func:`get_settings` (cached) or build ``Settings()`` yourself (tests do).
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.grading.base import BANDS

__all__ = ["Settings", "default_models_dir", "get_settings"]


def default_models_dir() -> Path:
    """Model files prepared by ``make install`` live with the environment that installed them."""
    return Path(sys.prefix) / "share" / "interview-coach"


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    """Interview coach settings. Defaults run fully offline with nothing configured."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(
        Path(".data"),
        validation_alias=_env("INTERVIEW_DATA_DIR"),
        description="Where the embedded Chroma store and the SQLite practice history live.",
    )
    knowledge_dir: Path = Field(
        Path("knowledge"),
        validation_alias=_env("INTERVIEW_KNOWLEDGE_DIR"),
        description="Folder of .txt/.md notes ingested by default.",
    )
    models_dir: Path = Field(
        default_factory=default_models_dir,
        validation_alias=_env("INTERVIEW_MODELS_DIR"),
        description="Offline model files: the ONNX embedding model and tiktoken's BPE files.",
    )
    embeddings: Literal["local", "openai"] = Field(
        "local",
        validation_alias=_env("INTERVIEW_EMBEDDINGS"),
        description="'local' = all-MiniLM-L6-v2 via ONNX (offline); 'openai' = an OpenAI-compatible API.",
    )
    openai_embedding_model: str = Field(
        "text-embedding-3-small",
        validation_alias=_env("OPENAI_EMBEDDING_MODEL"),
        description="Embedding model name when INTERVIEW_EMBEDDINGS=openai (e.g. nomic-embed-text on Ollama).",
    )
    openai_api_key: SecretStr | None = Field(
        None, validation_alias=_env("OPENAI_API_KEY"), description="API key for OpenAI or a compatible server."
    )
    openai_base_url: str | None = Field(
        None,
        validation_alias=_env("OPENAI_BASE_URL"),
        description="OpenAI-compatible endpoint, e.g. http://localhost:11434/v1 (Ollama), http://host:8000/v1 (vLLM).",
    )
    openai_timeout: float = Field(
        30.0, validation_alias=_env("OPENAI_TIMEOUT"), description="Seconds per OpenAI-compatible request."
    )
    openai_max_retries: int = Field(
        2, validation_alias=_env("OPENAI_MAX_RETRIES"), description="Retries on timeouts, 429 and 5xx."
    )
    grader: Literal["auto", "offline", "llm"] = Field(
        "auto",
        validation_alias=_env("INTERVIEW_GRADER"),
        description="'auto' = the LLM grader when a key or base URL is set, else offline; or force one.",
    )
    llm_model: str = Field(
        "gpt-4o-mini",
        validation_alias=_env("INTERVIEW_LLM_MODEL"),
        description="Chat model for the LLM grader (e.g. llama3.1:8b on Ollama, a model id on vLLM).",
    )
    llm_temperature: float = Field(
        0.0, ge=0, le=2, validation_alias=_env("INTERVIEW_LLM_TEMPERATURE"), description="Grader temperature."
    )
    structured_output: Literal["auto", "json_schema", "json_mode", "function_calling"] = Field(
        "auto",
        validation_alias=_env("INTERVIEW_STRUCTURED_OUTPUT"),
        description="How the grader asks for JSON; 'auto' tries json_schema and falls back to json_mode.",
    )
    grader_max_prompt_tokens: int = Field(
        1600,
        ge=400,
        validation_alias=_env("GRADER_MAX_PROMPT_TOKENS"),
        description="Prompt budget: related passages are shortened first, then the answer; never the question.",
    )
    grader_max_output_tokens: int = Field(
        700, ge=64, validation_alias=_env("GRADER_MAX_OUTPUT_TOKENS"), description="Cap on the grader's reply."
    )
    calibration_examples: int = Field(
        3,
        ge=0,
        le=10,
        validation_alias=_env("INTERVIEW_CALIBRATION_EXAMPLES"),
        description="Graded examples the LLM grader sees: the user's kept corrections (upheld appeals, "
        "re-grades after a rubric edit) most similar to the answer, same card first; 0 = none.",
    )
    price_input_per_mtok: float | None = Field(
        None,
        validation_alias=_env("INTERVIEW_PRICE_INPUT_PER_MTOK"),
        description="USD per million prompt tokens for cost estimates (built-in for common OpenAI models).",
    )
    price_output_per_mtok: float | None = Field(
        None,
        validation_alias=_env("INTERVIEW_PRICE_OUTPUT_PER_MTOK"),
        description="USD per million completion tokens for cost estimates.",
    )
    prompts_dir: Path | None = Field(
        None, validation_alias=_env("INTERVIEW_PROMPTS_DIR"), description="Override the prompts/ folder."
    )
    chroma_host: str | None = Field(
        None,
        validation_alias=_env("CHROMA_HOST"),
        description="Chroma server host (`chroma run`); unset = embedded PersistentClient under the data dir.",
    )
    chroma_port: int = Field(8000, validation_alias=_env("CHROMA_PORT"), description="Chroma server port.")
    collection: str = Field(
        "cards", validation_alias=_env("INTERVIEW_COLLECTION"), description="Chroma collection name prefix."
    )
    lock_wait: float = Field(
        60.0,
        ge=0,
        validation_alias=_env("INTERVIEW_LOCK_WAIT"),
        description="Seconds a CLI write (ingest) waits for the app that owns the embedded data folder; 0 = refuse.",
    )
    max_cards_per_file: int = Field(
        20_000,
        ge=1,
        validation_alias=_env("INTERVIEW_MAX_CARDS_PER_FILE"),
        description="Notes files with more questions than this are refused (skipped in a folder): split or raise.",
    )
    prose_questions: Literal["auto", "off"] = Field(
        "auto",
        validation_alias=_env("INTERVIEW_PROSE_QUESTIONS"),
        description=(
            "'auto' = with a chat model configured (the LLM grader's), ingest asks it for questions about "
            "prose sections no question or concept covers; 'off' = never (such sections are only listed)."
        ),
    )
    prose_max_calls: int = Field(
        200,
        ge=0,
        validation_alias=_env("INTERVIEW_PROSE_MAX_CALLS"),
        description=(
            "Model calls for prose sections per ingested path (a file or folder; each uploaded file); cached "
            "sections cost none; the rest are listed and asked on the next ingest."
        ),
    )
    related_k: int = Field(
        3, ge=0, le=20, validation_alias=_env("INTERVIEW_RELATED_K"), description="Related passages per card."
    )
    grader_process: Literal["auto", "off"] = Field(
        "auto",
        validation_alias=_env("INTERVIEW_GRADER_PROCESS"),
        description=(
            "'auto' = the web app runs the LLM grader in a worker process when the machine has more "
            "than one CPU (its client-side CPU then leaves the shared event loop); 'off' = in-process."
        ),
    )
    grader_workers: int = Field(
        0,
        ge=0,
        le=16,
        validation_alias=_env("INTERVIEW_GRADER_WORKERS"),
        description=(
            "Grader worker processes when the grader runs in workers (see INTERVIEW_GRADER_PROCESS); "
            "0 = one per CPU core, up to 2. Each grade goes to the worker with the fewest in flight."
        ),
    )
    max_streams: int = Field(
        4,
        ge=0,
        validation_alias=_env("INTERVIEW_MAX_STREAMS"),
        description=(
            "Grades streamed token by token at the same time (web app). Beyond this, grades arrive "
            "whole: streaming costs CPU per token, and under load it delays everyone's grade."
        ),
    )
    embed_threads: int = Field(
        0,
        ge=0,
        validation_alias=_env("INTERVIEW_EMBED_THREADS"),
        description="ONNX Runtime intra-op threads for local embeddings (0 = min(2, CPUs), no spin-waiting).",
    )
    database_url: SecretStr | None = Field(
        None,
        validation_alias=_env("DATABASE_URL"),
        description="Practice history: a SQLAlchemy URL (postgresql+psycopg://...); unset = SQLite in the data dir.",
    )
    users: SecretStr = Field(
        SecretStr(""),
        validation_alias=_env("INTERVIEW_USERS"),
        description="Users and password hashes, 'alice:scrypt$...,bob:scrypt$...' (interview hash-password); "
        "empty = no login, one local user.",
    )
    session_hours: float = Field(
        12.0,
        gt=0,
        le=24 * 15,
        validation_alias=_env("INTERVIEW_SESSION_HOURS"),
        description="How long a web sign-in lasts before the password is asked again.",
    )
    login_attempts: int = Field(
        5,
        ge=1,
        validation_alias=_env("INTERVIEW_LOGIN_ATTEMPTS"),
        description="Wrong passwords allowed per user name and per address in INTERVIEW_LOGIN_WINDOW_S; "
        "more are refused (HTTP 429) until the window has passed.",
    )
    login_window_s: float = Field(
        300.0,
        gt=0,
        validation_alias=_env("INTERVIEW_LOGIN_WINDOW_S"),
        description="The sign-in throttling window in seconds (see INTERVIEW_LOGIN_ATTEMPTS).",
    )
    max_message_mb: float = Field(
        8.0,
        gt=0,
        le=256,
        validation_alias=_env("INTERVIEW_MAX_MESSAGE_MB"),
        description="Largest web message accepted (MB); a larger one is refused with a message. "
        "Only the first 20,000 characters of an answer are graded.",
    )
    desired_retention: float = Field(
        0.9,
        gt=0.5,
        lt=1.0,
        validation_alias=_env("INTERVIEW_DESIRED_RETENTION"),
        description="FSRS target recall probability when a card comes due.",
    )
    leech_threshold: int = Field(
        6,
        ge=1,
        validation_alias=_env("INTERVIEW_LEECH_THRESHOLD"),
        description="A card rated Again this many times is flagged: rewrite that note.",
    )
    again_below: float = Field(
        BANDS.partial,
        ge=0,
        le=10,
        validation_alias=_env("INTERVIEW_AGAIN_BELOW"),
        description="Scores (0-10) below this rate the card Again.",
    )
    hard_below: float = Field(
        BANDS.good,
        ge=0,
        le=10,
        validation_alias=_env("INTERVIEW_HARD_BELOW"),
        description="Scores below this (and not below INTERVIEW_AGAIN_BELOW) rate Hard.",
    )
    easy_from: float = Field(
        BANDS.excellent,
        ge=0,
        le=10,
        validation_alias=_env("INTERVIEW_EASY_FROM"),
        description="Scores from this up rate Easy; between INTERVIEW_HARD_BELOW and this, Good.",
    )
    min_coverage: float = Field(
        0.25,
        ge=0,
        le=1,
        validation_alias=_env("INTERVIEW_MIN_COVERAGE"),
        description="Fewer key points hit than this share rates Again, whatever the score.",
    )
    host: str = Field("127.0.0.1", validation_alias=_env("HOST"), description="Address the web app listens on.")
    port: int = Field(8000, validation_alias=_env("PORT"), description="Port the web app listens on.")

    @model_validator(mode="after")
    def _rating_thresholds_ordered(self) -> Settings:
        if not self.again_below <= self.hard_below <= self.easy_from:
            raise ValueError(
                "rating thresholds must satisfy INTERVIEW_AGAIN_BELOW <= INTERVIEW_HARD_BELOW <= INTERVIEW_EASY_FROM"
            )
        return self

    @property
    def history_url(self) -> str:
        """The SQLAlchemy URL of the practice history (DATABASE_URL or SQLite in the data dir)."""
        if self.database_url is not None and self.database_url.get_secret_value().strip():
            return self.database_url.get_secret_value().strip()
        return f"sqlite:///{(self.data_dir / 'history.sqlite3').resolve()}"

    @property
    def llm_configured(self) -> bool:
        return self.openai_api_key is not None or bool(self.openai_base_url)

    @property
    def use_llm_grader(self) -> bool:
        return self.grader == "llm" or (self.grader == "auto" and self.llm_configured)

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def embedding_model_dir(self) -> Path:
        return self.models_dir / "all-MiniLM-L6-v2"

    @property
    def tiktoken_dir(self) -> Path:
        return self.models_dir / "tiktoken"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once, on first use)."""
    return Settings()
