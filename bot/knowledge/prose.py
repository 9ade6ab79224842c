"""Questions from prose: sections no question or concept covers, turned into cards by a chat model.

Notes often hold paragraphs of plain prose (lecture transcripts, a pasted article, a PDF's body
text) with no question, heading or ``Term: definition`` line: the parser lists them as "not turned
into questions". With a chat model configured, each such section is sent to the model (prompt
files ``prompts/questions.*``; the notes text is untrusted: cleaned and delimited) and the model
proposes 1–3 questions, each with a supporting *quote* from the section. A proposal is kept only
when its quote is found word for word in the section, after whitespace normalisation (and at word
boundaries); an invented or paraphrased quote drops the question. Each kept question becomes a card:

* its answer is the sentence(s) of the notes that contain the quote, verbatim apart from
  whitespace (whole sentences within the paragraph, so a fragment quote still grades against a
  complete statement; the quote alone when those sentences would be longer than
  :data:`MAX_ANSWER_CHARS`);
* its source lines are the lines of that answer (the quote's lines, widened to the whole sentences);
* its flags are ``generated`` and ``from_prose``; its id is stable: source file, section content
  and question (with an occurrence count).

The model's proposals are cached per section version under ``<data dir>/prose-questions/`` (one
JSON file per section content hash and prompt version), so re-ingesting makes no new calls and the
cards keep their ids. A failed call (HTTP error, timeout, a reply that is not the JSON asked for)
is not cached: the section stays listed as not turned into questions, with the reason, and the
next ingest asks again. Without a model nothing here runs and ingest is what it was.

Parsing keeps no text of these sections (memory does not grow with the notes): their lines are
read again from the file (:meth:`~bot.knowledge.importers.base.Reading.sections`), only here, at
most :data:`MAX_FILE_CHARS` characters a file; sections past that stay listed with the reason.

Long sections are cut into chunks of about :data:`CHUNK_CHARS` characters at paragraph breaks
(one model call each), so a prose-only PDF gets questions from every part of it.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from bot.knowledge.cards import FLAG_FROM_PROSE, FLAG_GENERATED, Card, Source
from bot.knowledge.importers.base import ImportFailed, Reading
from bot.knowledge.notes import Leftover
from bot.knowledge.text import question_key
from bot.knowledge.topics import classify_topic

if TYPE_CHECKING:
    from bot.settings import Settings

__all__ = [
    "CACHE_DIR",
    "LLMQuestionWriter",
    "Proposal",
    "ProseFailed",
    "ProseQuestions",
    "QuestionWriter",
    "ground",
    "make_prose_questions",
    "parse_reply",
]

CACHE_DIR = "prose-questions"
MAX_PER_SECTION = 3
CHUNK_CHARS = 4000  # a longer section is cut at paragraph breaks into chunks of about this size
MAX_ANSWER_CHARS = 1200  # longer containing sentences: the answer is the quote alone
MAX_QUESTION_CHARS = 300
MAX_FILE_CHARS = 2_000_000  # prose read again a file, for its questions (parsing keeps none of it)
MAX_PROMPT_CHARS = 8000  # notes text sent per call (a chunk is shorter unless one line is huge)
MIN_QUOTE_WORDS = 3
WORKERS = 4  # model calls in flight at once

_OVER_FILE_CHARS = f"not sent to the model (past the first {MAX_FILE_CHARS:,} characters of prose in the file)"
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s")
_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*(?= |$)")
_QUOTE_MARKS = "\"'“”‘’«»`"
_OWN_TAGS = re.compile(r"<\s*/?\s*(?:notes_section|section_title)\b[^>]*>", re.IGNORECASE)
_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")


class ProseFailed(Exception):
    """The model gave no usable reply for a section; the message is the reason shown to the user."""


@dataclass(frozen=True)
class Proposal:
    """One question the model proposed, with the quote it says supports it."""

    question: str
    quote: str


class QuestionWriter(Protocol):
    """Proposes questions for a section of prose. ``version`` changes when its prompts change."""

    @property
    def version(self) -> str: ...

    def propose(self, text: str, section: str, limit: int) -> list[Proposal]:
        """Raises :class:`ProseFailed` when the model gives no usable reply."""
        ...


# ------------------------------------------------------------------------------------------------
# Grounding: is the quote in the section, and which sentences and lines hold it?
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grounded:
    """Where a quote was found: the answer around it and its lines (offsets into the section)."""

    answer: str
    first: int  # 0-based line offsets within the section, inclusive
    last: int


@dataclass
class _Flat:
    """The section with every run of whitespace as one space; each character's line; hard breaks."""

    text: str
    line_of: list[int]
    breaks: list[int]  # positions (of a space) where a paragraph or list item starts


def _flatten(lines: Sequence[str]) -> _Flat:
    out: list[str] = []
    line_of: list[int] = []
    breaks: list[int] = []
    gap, newlines = False, 0
    for j, line in enumerate(lines):
        if j:
            gap, newlines = True, newlines + 1
        hard = bool(_LIST_ITEM.match(line))
        for ch in line:
            if ch.isspace():
                gap = True
                continue
            if gap and out:
                if newlines >= 2 or (hard and newlines >= 1):
                    breaks.append(len(out))
                out.append(" ")
                line_of.append(j)
            gap, newlines = False, 0
            out.append(ch)
            line_of.append(j)
    return _Flat("".join(out), line_of, breaks)


def _clean_quote(quote: str) -> str:
    q = " ".join(quote.split())
    for _ in range(2):
        q = q.strip().strip(_QUOTE_MARKS).strip()
        q = re.sub(r"^(?:\.\.\.|…)\s*|\s*(?:\.\.\.|…)$", "", q)
    return q


def _find(flat: _Flat, quote: str) -> int:
    """The first place the quote stands in the text as whole words; -1 when it does not."""
    start = flat.text.find(quote)
    while start >= 0:
        end = start + len(quote)
        before = flat.text[start - 1] if start else " "
        after = flat.text[end] if end < len(flat.text) else " "
        if not (before.isalnum() and quote[0].isalnum()) and not (after.isalnum() and quote[-1].isalnum()):
            return start
        start = flat.text.find(quote, start + 1)
    return -1


def ground(quote: str, lines: Sequence[str]) -> Grounded | None:
    """Find ``quote`` in ``lines`` (whitespace normalised): the sentences that hold it and their lines.

    None when the quote is not there word for word, or is too short to support anything.
    """
    q = _clean_quote(quote)
    if len(q.split()) < MIN_QUOTE_WORDS or not re.search(r"[^\W\d_]", q):
        return None
    flat = _flatten(lines)
    at = _find(flat, q)
    if at < 0:
        return None
    end_q = at + len(q)
    start = max([m.end() for m in _SENTENCE_END.finditer(flat.text, 0, at)] + [b for b in flat.breaks if b <= at] + [0])
    ends = [b for b in flat.breaks if b >= end_q]
    stop = ends[0] if ends else len(flat.text)
    m = _SENTENCE_END.search(flat.text, max(end_q - 1, start), stop)
    end = m.end() if m else stop
    answer = flat.text[start:end].strip()
    if len(answer) > MAX_ANSWER_CHARS:
        start, end, answer = at, end_q, q
    while start < len(flat.text) and flat.text[start] == " ":
        start += 1
    return Grounded(answer=answer, first=flat.line_of[start], last=flat.line_of[max(end - 1, start)])


# ------------------------------------------------------------------------------------------------
# The model's reply
# ------------------------------------------------------------------------------------------------


def parse_reply(text: str) -> list[Proposal]:
    """``{"questions": [{"question", "quote"}]}`` (or the bare list). Raises ValueError otherwise.

    Items without a question or a quote are skipped; the questions are cleaned (one line, a
    closing ``?`` or ``.``).
    """
    body = _FENCE.sub("", text.strip())
    if not body.startswith(("{", "[")):
        first = min((i for i in (body.find("{"), body.find("[")) if i >= 0), default=-1)
        if first < 0:
            raise ValueError("no JSON in the reply")
        body = body[first:]
    data, _ = json.JSONDecoder().raw_decode(body)
    items = data.get("questions") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError('no "questions" list in the reply')
    out: list[Proposal] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        question, quote = item.get("question"), item.get("quote")
        if not isinstance(question, str) or not isinstance(quote, str):
            continue
        question = " ".join(question.split()).strip().strip(_QUOTE_MARKS).strip()
        if not question or not quote.strip() or len(question) > MAX_QUESTION_CHARS:
            continue
        if not question.endswith(("?", ".")):
            question += "?"
        out.append(Proposal(question=question[0].upper() + question[1:], quote=quote))
    return out


def _reason(exc: BaseException) -> str:
    """A short reason for the summary: never the whole message (it may hold a URL or a prompt)."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return f"HTTP {status} from the model server"
    name = type(exc).__name__
    if isinstance(exc, TimeoutError) or "timeout" in name.lower():
        return "the model did not answer in time"
    if "connection" in name.lower() or isinstance(exc, ConnectionError):
        return "the model server could not be reached"
    return f"the model call failed ({name})"


class LLMQuestionWriter:
    """A chat model (built on first use by ``make_chat``) proposes the questions; prompts from files."""

    def __init__(self, make_chat: Callable[[], Any], *, prompts_dir: Path | None = None) -> None:
        from bot.grading.prompts import load_prompt, prompt_set_version

        self._make_chat = make_chat
        self._chat: Any = None
        self._lock = threading.Lock()
        self._system = load_prompt("questions.system", prompts_dir)
        self._user = load_prompt("questions.user", prompts_dir)
        self._version = prompt_set_version("questions", [self._system, self._user])

    @property
    def version(self) -> str:
        return self._version

    def _model(self) -> Any:
        with self._lock:
            if self._chat is None:
                self._chat = self._make_chat()
            return self._chat

    def propose(self, text: str, section: str, limit: int) -> list[Proposal]:
        from langchain_core.messages import HumanMessage, SystemMessage

        messages = [
            SystemMessage(self._system.format()),
            HumanMessage(
                self._user.format(
                    section=clean_notes(section) or "(none)",
                    notes=clean_notes(text)[:MAX_PROMPT_CHARS],
                    max_questions=str(limit),
                )
            ),
        ]
        try:
            reply = self._model().invoke(messages)
        except Exception as exc:  # HTTP errors, timeouts, connection errors: the section stays listed
            raise ProseFailed(_reason(exc)) from exc
        content = reply.content if isinstance(reply.content, str) else json.dumps(reply.content)
        try:
            return parse_reply(content)
        except ValueError as exc:
            raise ProseFailed("the model's reply was not the JSON asked for") from exc


def clean_notes(text: str) -> str:
    """Notes text for a prompt: cleaned like an answer (control characters, our delimiters, text that
    addresses the model removed: :func:`bot.grading.safety.clean_answer`), and our own tags removed."""
    from bot.grading.safety import clean_answer

    return _OWN_TAGS.sub(" ", clean_answer(_OWN_TAGS.sub(" ", text)).text).strip()


# ------------------------------------------------------------------------------------------------
# Sections, cache, cards
# ------------------------------------------------------------------------------------------------


def _chunks(leftover: Leftover, lines: Sequence[str]) -> list[Leftover]:
    """The leftover as is, or cut at blank lines (at a line when a paragraph is huge) into chunks.
    ``lines``: the leftover's own (the first is line ``leftover.line_start``)."""
    if sum(len(line) + 1 for line in lines) <= CHUNK_CHARS:
        return [leftover]
    out: list[Leftover] = []
    first = leftover.line_start
    start: int | None = None
    size = words = 0
    for i, line in enumerate(lines):
        if start is None and not line.strip():
            continue  # a chunk starts at text, not at the blank line that ended the one before
        start = i if start is None else start
        size += len(line) + 1
        words += len(line.split())
        last = i + 1 >= len(lines)
        at_break = last or not lines[i + 1].strip()
        if last or (size >= CHUNK_CHARS and (at_break or size >= 2 * CHUNK_CHARS)):
            out.append(Leftover(first + start, first + i, leftover.section, words))
            start, size, words = None, 0, 0
    return out


@dataclass
class _Task:
    file: int
    leftover: Leftover
    lines: list[str]
    key: str  # cache key: prompt version + section text
    proposals: list[Proposal] | None = None
    error: str = ""


@dataclass
class ProseQuestions:
    """Turns the leftovers of imported files into cards through a :class:`QuestionWriter`.

    ``cache_dir`` None keeps nothing between runs; ``max_calls``: model calls one :meth:`apply`
    may make, i.e. per path ingested (a file or folder; each uploaded file); cached sections cost
    none; 0 = cached results only, no calls.
    """

    writer: QuestionWriter
    cache_dir: Path | None
    max_calls: int = 200
    workers: int = WORKERS
    calls: int = field(default=0, init=False)  # model calls made so far (tests, summaries)

    def apply(
        self, files: Sequence[tuple[str, Reading]], progress: Callable[[int, int], None] | None = None
    ) -> list[list[Card]]:
        """The cards written for each file's leftovers (read to the end), a card per grounded
        question. Each reading's ``leftovers`` become those still not turned into questions (a
        long section's chunks), each with its reason in ``reasons``.

        The sections' text is read again from the file (:meth:`Reading.sections`), at most
        :data:`MAX_FILE_CHARS` characters of it a file: parsing never kept it.
        """
        tasks: list[_Task] = []
        unsent: dict[int, list[tuple[Leftover, str]]] = {}  # leftovers not asked about, and why
        for index, (_, reading) in enumerate(files):
            if reading.lines is None or not reading.leftovers:
                continue
            try:
                sections = reading.sections(MAX_FILE_CHARS)
            except (ImportFailed, OSError) as exc:
                why = f"not sent to the model (the file could not be read again: {exc})"
                unsent[index] = [(leftover, why) for leftover in reading.leftovers]
                continue
            for leftover in reading.leftovers:
                lines = sections.get(leftover, [])
                whole = leftover.line_end - leftover.line_start + 1
                if len(lines) < whole:  # past the characters read a file (or the file changed)
                    rest = Leftover(
                        leftover.line_start + len(lines),
                        leftover.line_end,
                        leftover.section,
                        max(leftover.words - sum(len(line.split()) for line in lines), 0),
                    )
                    unsent.setdefault(index, []).append((rest, _OVER_FILE_CHARS))
                    if not lines:
                        continue
                part = replace(leftover, line_end=leftover.line_start + len(lines) - 1)
                if part != leftover:
                    part = replace(part, words=sum(len(line.split()) for line in lines))
                first = part.line_start
                for chunk in _chunks(part, lines):
                    section_lines = lines[chunk.line_start - first : chunk.line_end - first + 1]
                    tasks.append(_Task(index, chunk, section_lines, self._cache_key(section_lines)))
        for task in tasks:
            task.proposals = self._read_cache(task.key)
        todo = [t for t in tasks if t.proposals is None]
        done = len(tasks) - len(todo)
        if progress is not None and tasks:
            progress(done, len(tasks))
        allowed, over = todo[: max(self.max_calls, 0)], todo[max(self.max_calls, 0) :]
        for task in over:
            task.error = (
                "not sent to the model (over INTERVIEW_PROSE_MAX_CALLS this run; ingest again for more)"
                if self.max_calls
                else "not sent to the model"
            )
        self.calls += len(allowed)
        if allowed:
            with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(allowed)))) as pool:
                for _ in pool.map(self._run, allowed):
                    done += 1
                    if progress is not None:
                        progress(done, len(tasks))
        by_file: dict[int, list[_Task]] = {}
        for task in tasks:
            by_file.setdefault(task.file, []).append(task)
        return [
            self._rebuild(key, reading, by_file.get(i, []), unsent.get(i, [])) for i, (key, reading) in enumerate(files)
        ]

    # -- one section ------------------------------------------------------------------------------

    def _run(self, task: _Task) -> None:
        try:
            section = task.leftover.section
            task.proposals = self.writer.propose("\n".join(task.lines), section, MAX_PER_SECTION)
        except ProseFailed as exc:
            task.error = str(exc)
            return
        except Exception as exc:  # a writer bug must not take the ingest down with it
            task.error = _reason(exc)
            return
        self._write_cache(task.key, task.proposals)

    def _cache_key(self, lines: Sequence[str]) -> str:
        text = " ".join(" ".join(lines).split())
        return hashlib.sha256(f"{self.writer.version}\0{text}".encode()).hexdigest()

    def _path(self, key: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / f"{key}.json"

    def _read_cache(self, key: str) -> list[Proposal] | None:
        path = self._path(key)
        if path is None:
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return [Proposal(str(p["question"]), str(p["quote"])) for p in data["proposals"]]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write_cache(self, key: str, proposals: list[Proposal]) -> None:
        path = self._path(key)
        if path is None:
            return
        payload = {"version": self.writer.version, "proposals": [p.__dict__ for p in proposals]}
        with contextlib.suppress(OSError):  # a read-only data dir costs only the cache
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(payload, fh, ensure_ascii=False, indent=1)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    # -- cards ------------------------------------------------------------------------------------

    def _rebuild(
        self, key: str, reading: Reading, tasks: list[_Task], unsent: list[tuple[Leftover, str]]
    ) -> list[Card]:
        if not tasks and not unsent:
            return []
        seen: dict[str, int] = {}
        new: list[Card] = []
        left: list[Leftover] = []
        for leftover, reason in unsent:
            left.append(leftover)
            reading.reasons[leftover] = reason
        for task in tasks:
            cards, reason = self._cards(key, reading, task, seen)
            new += cards
            if not cards:
                left.append(task.leftover)
                reading.reasons[task.leftover] = reason
        reading.leftovers = sorted(left, key=lambda lo: lo.line_start)
        return sorted(new, key=lambda c: c.source.line_start)

    def _cards(self, key: str, reading: Reading, task: _Task, seen: dict[str, int]) -> tuple[list[Card], str]:
        if task.proposals is None:
            return [], task.error or "not sent to the model"
        out: list[Card] = []
        asked: set[str] = set()
        first_line = task.leftover.line_start
        for proposal in task.proposals:
            found = ground(proposal.quote, task.lines)
            qkey = question_key(proposal.question)
            if found is None or qkey in asked or len(out) >= MAX_PER_SECTION:
                continue
            asked.add(qkey)
            id_key = f"{key}\nfrom prose\n{task.key}\n{qkey}"
            occurrence = seen.get(id_key, 0)
            seen[id_key] = occurrence + 1
            start, end = first_line + found.first, first_line + found.last
            section = task.leftover.section
            out.append(
                Card(
                    id=hashlib.sha1(f"{id_key}\n{occurrence}".encode()).hexdigest()[:16],
                    question=proposal.question,
                    display_question=proposal.question,
                    answer=found.answer,
                    topic=classify_topic(proposal.question, found.answer, section),
                    flags=[FLAG_GENERATED, FLAG_FROM_PROSE],
                    source=Source(
                        path=key,
                        line_start=start,
                        line_end=end,
                        page_start=bisect.bisect_right(reading.page_starts, start) or None,
                        page_end=bisect.bisect_right(reading.page_starts, end) or None,
                    ),
                    section=section,
                )
            )
        if out:
            return out, ""
        if task.proposals:
            return [], "the model's questions were dropped: their quotes are not in the text"
        return [], "the model found nothing to ask"


def make_prose_questions(settings: Settings, *, calls: bool = True) -> ProseQuestions | None:
    """Questions from prose when a chat model is configured (the LLM grader's), else None (offline).

    ``calls`` False: only what is cached is used (``interview cards`` shows what ``ingest`` stored).
    """
    if settings.prose_questions == "off" or not settings.use_llm_grader:
        return None
    from bot.grading.pipeline.build import make_chat_model

    writer = LLMQuestionWriter(lambda: make_chat_model(settings), prompts_dir=settings.prompts_dir)
    return ProseQuestions(writer, settings.data_dir / CACHE_DIR, max_calls=settings.prose_max_calls if calls else 0)
