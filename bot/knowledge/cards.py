"""The card: one interview question from the notes with its reference answer."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, Field

from bot.knowledge.text import normalize_for_search

__all__ = ["FLAG_FROM_PROSE", "FLAG_GENERATED", "FLAG_IMPORTANT", "FLAG_NO_ANSWER", "Card", "Source"]

FLAG_IMPORTANT = "important"
FLAG_NO_ANSWER = "no_answer"
FLAG_GENERATED = "generated"  # the display question was generated from a concept, not written
FLAG_FROM_PROSE = "from_prose"  # (with "generated") a model wrote the question from prose; answer quoted


class Source(BaseModel):
    """Where a card came from: the file and its 1-based, inclusive line range (pages for a PDF)."""

    path: str
    line_start: int = Field(ge=1)
    line_end: int = Field(ge=1)
    page_start: int | None = Field(default=None, ge=1, description="PDF page of the first line.")
    page_end: int | None = Field(default=None, ge=1, description="PDF page of the last line.")

    def describe(self) -> str:
        """``notes.md:12–14`` or ``notes.pdf p. 3–4``."""
        if self.page_start is not None:
            end = self.page_end or self.page_start
            return f"{self.path} p. {self.page_start}" + (f"–{end}" if end != self.page_start else "")
        lines = str(self.line_start) + (f"–{self.line_end}" if self.line_end != self.line_start else "")
        return f"{self.path}:{lines}"


class Card(BaseModel):
    """A question from the notes, its reference answer and where it came from."""

    id: str = Field(description="Stable id: hash of source file, normalised question and occurrence.")
    question: str = Field(description="The question as written in the notes.")
    display_question: str = Field(description="Clean question for display.")
    answer: str = Field(default="", description="Reference answer from the notes; empty when none.")
    topic: str
    flags: list[str] = Field(default_factory=list)
    source: Source
    section: str = Field(default="", description="The section header the card sits under, if any.")
    extra: str = Field(
        default="",
        description="Nearby text judged unrelated to the question (kept, not used as the reference).",
    )

    @property
    def important(self) -> bool:
        return FLAG_IMPORTANT in self.flags

    @property
    def has_answer(self) -> bool:
        return FLAG_NO_ANSWER not in self.flags

    def search_text(self) -> str:
        """What is embedded for retrieval: question and answer, Unicode-folded."""
        return normalize_for_search(f"{self.display_question}\n{self.answer}")

    def content_hash(self) -> str:
        """Changes whenever anything stored for the card changes (drives incremental ingest)."""
        # exclude_none: cards without page numbers hash as they did before pages existed
        payload = json.dumps(self.model_dump(mode="json", exclude_none=True), sort_keys=True, ensure_ascii=False)
        return hashlib.sha1(payload.encode("utf-8")).hexdigest()

    def to_public_json(self) -> dict[str, Any]:
        """The JSON shape printed by ``interview cards --json``."""
        return self.model_dump(mode="json")
