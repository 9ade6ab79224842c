"""Notes → cards.

A line-oriented parser for messy study notes. It recognises, in one pass:

* plain question lines ending in ``?`` (any case, SHOUTED included, bulleted or numbered,
  a trailing ``(e.g. …)`` allowed), and inline ``TERM?answer`` lines;
* Markdown headings that are questions (``## What is X?``), ``Q:``/``A:`` and ``Q.``/``A.``
  pairs, ``**Question:**``/``**Answer:**`` labels and bold question lines;
* section boundaries that end an answer: Markdown headings, ``#TAG`` marker lines,
  SHOUTED ``HEADER:`` lines and short SHOUTED title lines after a blank line, numbered bold
  headers (``1. **Fundamental Concepts:**``) and ``IMPORTANT …`` notes-to-self;
* importance markers (``#IMPORTANT``, ``#SUPER IMPORTANT …``, ``(important)``) that flag the
  next question.

Concepts without a question mark — Markdown headings, ``Term: definition`` lines, bold lead-ins,
bullet definitions (:mod:`bot.knowledge.concepts`) — become cards with a generated question
wherever no explicit question is open; text under neither can be collected as leftovers.

An answer runs from the question to the next question or boundary. Trailing paragraphs that
share no content word with the question (a stray note the user jotted below an answer) are
moved to ``Card.extra`` instead of being graded against.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bot.knowledge.cards import FLAG_GENERATED, FLAG_IMPORTANT, FLAG_NO_ANSWER, Card, Source
from bot.knowledge.concepts import concept_question, is_imperative, is_term, match_definition
from bot.knowledge.text import display_question, is_shouted, normalize_for_search, question_key
from bot.knowledge.topics import classify_topic

__all__ = ["MAX_QUESTION_CHARS", "Leftover", "card_id", "iter_cards", "parse_file", "parse_notes"]

MAX_QUESTION_CHARS = 400  # a longer line ending in "?" is prose, not a question (ingest warns)

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_TAG_LINE = re.compile(r"^#(?![#\s])(.+)$")
_Q_LABEL = re.compile(
    r"^(?:[-*+]\s+)?(?:\*\*|__)?\s*(?:Q\d*|Question\s*\d*)\s*[:.)]\s*(?:\*\*|__)?\s*(.*)$", re.IGNORECASE
)
_A_LABEL = re.compile(
    r"^(?:[-*+]\s+)?(?:\*\*|__)?\s*(?:A\d*|Ans|Answer\s*\d*)\s*[:.)]\s*(?:\*\*|__)?\s*(.*)$", re.IGNORECASE
)
_INLINE_A = re.compile(r"\s+(?:\*\*|__)?(?:A|Answer)\s*[:.](?:\*\*|__)?\s+", re.IGNORECASE)
_LIST_PREFIX = re.compile(r"^(?:[-*+•]\s+|\d{1,3}[.)]\s+)")
_BOLD_ONLY = re.compile(r"^(?:\*\*|__)(.+?)(?:\*\*|__)\s*:?\s*$")
_ENDS_WITH_QUESTION = re.compile(r"\?\s*(?:\((?:e\.g\.|eg|i\.e\.|ie)[^)]*\))?\s*$", re.IGNORECASE)
_INLINE_TERM = re.compile(r"^([^?]{1,60}?)\s*\?\s*(\S.*)$")
_IMPORTANT_INLINE = re.compile(r"[\(\[]\s*(?:super\s+)?important\s*[\)\]]|#\s*(?:super\s*)?important\b", re.IGNORECASE)
_BARE_WORDS = {"why", "how", "what", "really", "right", "ok", "okay", "so", "and", "yes", "no", "huh"}

# A paragraph opening like this continues the answer above it.
_CONTINUATION = re.compile(
    r"^\s*(?:it|its|it's|this|that|these|those|they|so|also|and|but|however|hence|thus|therefore|"
    r"in summary|in short|for example|e\.g\.|example|note|remember|overall)\b",
    re.IGNORECASE,
)

# Words that never count when deciding whether a paragraph belongs to a question.
_STOP_WORDS = """
a an the and or of to in on for with without from by as at is are was were be been being it its this
that these those there their they them we you your i im my me our us he she his her do does did
doing done can could should would will shall may might must what why how when which who whom whose
where use used using uses difference between different differ differs explain describe define mean
means meaning some any all each other than then also just like about into over under more most very
much many few type types way ways work works working model models get got make made one two three
have has having not no yes
"""
_STOP = frozenset(_STOP_WORDS.split())


def card_id(source_key: str, question: str, occurrence: int) -> str:
    """Stable content-based id: same file + same question (+ how many times it appeared before)."""
    digest = hashlib.sha1(f"{source_key}\n{question_key(question)}\n{occurrence}".encode()).hexdigest()
    return digest[:16]


@dataclass
class _Question:
    text: str
    line: int  # 0-based
    term_only: bool = False
    important: bool = False
    inline_answer: str = ""
    concept: bool = False  # a concept card (no question mark in the notes): generated question
    level: int = 0  # Markdown heading level of a heading question: deeper headings stay in its answer


@dataclass(frozen=True)
class Leftover:
    """Text under no question or concept: a section that could not be turned into questions."""

    line_start: int  # 1-based, inclusive
    line_end: int
    section: str
    words: int


@dataclass
class _Open:
    q: _Question
    section: str
    important: bool
    lines: list[tuple[int, str]] = field(default_factory=list)


def _strip_list_prefix(text: str) -> str:
    return _LIST_PREFIX.sub("", text, count=1)


def _match_question(line: str) -> _Question | None:
    """Return the question on this line, if the line is one."""
    s = line.strip()
    if not s:
        return None
    important = bool(_IMPORTANT_INLINE.search(s))
    m = _HEADING.match(s)
    if m:
        body = _BOLD_ONLY.sub(r"\1", m.group(2)).strip()
        if _ENDS_WITH_QUESTION.search(_IMPORTANT_INLINE.sub("", body)):
            return _Question(body, 0, important=important, level=len(m.group(1)))
        return None
    m = _Q_LABEL.match(s)
    if m and m.group(1).strip():
        body = m.group(1).strip()
        inline = ""
        parts = _INLINE_A.split(body, maxsplit=1)
        if len(parts) == 2:
            body, inline = parts[0].strip(), parts[1].strip()
        return _Question(body, 0, important=important, inline_answer=inline)
    body = _strip_list_prefix(s)
    bold = _BOLD_ONLY.match(body)
    if bold:
        body = bold.group(1).strip()
    plain = _IMPORTANT_INLINE.sub("", body).strip()
    if body.rstrip().endswith("?:"):
        return None  # "Why Feature Extraction?:" — a sub-heading inside a pasted answer
    if _ENDS_WITH_QUESTION.search(plain) and re.search(r"[^\W\d_]", plain) and len(plain) <= MAX_QUESTION_CHARS:
        return _Question(body, 0, important=important)
    m = _INLINE_TERM.match(plain)
    if m and not bold:
        term, rest = m.group(1).strip(), m.group(2).strip()
        words = term.split()
        if 1 <= len(words) <= 5 and term.lower() not in _BARE_WORDS and not term.endswith((":", ",")):
            if rest.startswith(":"):
                rest = rest[1:].strip()
            if rest:
                return _Question(term + "?", 0, term_only=True, important=important, inline_answer=rest)
    return None


def _is_marker(s: str) -> tuple[str, str] | None:
    """``#TAG`` lines: ("important" | "ignore" | "section", text)."""
    m = _TAG_LINE.match(s)
    if not m:
        return None
    body = m.group(1).strip()
    if re.search(r"important", body, re.IGNORECASE):
        return ("important", body)
    if re.search(r"\banswer\b|\bsource\b|\bref\b", body, re.IGNORECASE):
        return ("ignore", body)
    return ("section", body)


def _section_header(s: str, after_break: bool) -> str | None:
    """Return a section title when this (non-question) line starts a new section."""
    m = _HEADING.match(s)
    if m:
        return _BOLD_ONLY.sub(r"\1", m.group(2)).strip()
    numbered = re.match(r"^\d{1,3}[.)]\s+(.*)$", s)
    if numbered and _BOLD_ONLY.match(numbered.group(1).strip()):
        return _BOLD_ONLY.sub(r"\1", numbered.group(1).strip()).rstrip(":").strip()
    if not after_break:
        return None
    words = s.split()
    if is_shouted(s):
        if s.endswith(":") and len(words) <= 12:
            return s.rstrip(":").strip()
        if len(words) <= 6 and not re.search(r"[.?!,;:)]$", s):
            return s
    return None


def _is_note_to_self(s: str, after_break: bool) -> bool:
    """``IMPORTANT LEARN ABOUT …`` after a blank line: a reminder, not part of an answer."""
    return after_break and bool(re.match(r"^(?:IMPORTANT|TODO|NOTE TO SELF)\b", s)) and is_shouted(s)


def _content_words(text: str) -> set[str]:
    words = re.findall(r"[a-z][a-z0-9]+", normalize_for_search(text).casefold())
    return {w[:5] for w in words if w not in _STOP and len(w) > 2}


def _paragraphs(lines: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    paras: list[list[tuple[int, str]]] = []
    for idx, text in lines:
        if not text.strip():
            if paras and paras[-1]:
                paras.append([])
            continue
        if not paras:
            paras.append([])
        paras[-1].append((idx, text))
    return [p for p in paras if p]


def _join(lines: list[tuple[int, str]]) -> str:
    if not lines:
        return ""
    texts = [t.rstrip() for _, t in lines]
    indents = [len(t) - len(t.lstrip()) for t in texts if t.strip()]
    cut = min(indents) if indents else 0
    out: list[str] = []
    prev = None
    for idx, t in zip((i for i, _ in lines), texts, strict=True):
        if prev is not None and idx - prev > 1:
            out.append("")
        out.append(t[cut:])
        prev = idx
    return "\n".join(out).strip()


def _strip_answer_label(text: str) -> str:
    m = _A_LABEL.match(text.strip())
    return m.group(1) if m else text


_Finished = tuple[_Question, str, str, int, bool, str]
_LEFTOVER_MIN_WORDS = 12  # shorter stray lines are not reported as sections left out


def _finish(open_: _Open) -> _Finished:
    """Resolve an open question into (question, answer, extra, last line, important, section)."""
    lines = list(open_.lines)
    if open_.q.inline_answer:
        lines.insert(0, (open_.q.line, open_.q.inline_answer))
    if lines:
        first_idx, first_text = lines[0]
        lines[0] = (first_idx, _strip_answer_label(first_text))
    paras = _paragraphs(lines)
    keep = len(paras)
    if len(paras) > 1 and not open_.q.concept:  # a concept's answer is all the text under it
        qwords = _content_words(open_.q.text)
        awords = _content_words(" ".join(t for _, t in paras[0]))
        keep = 1
        for i, para in enumerate(paras[1:], start=1):
            text = " ".join(t for _, t in para)
            words = _content_words(text)
            if qwords & words or len(awords & words) >= 2 or _CONTINUATION.match(text):
                keep = i + 1
            awords |= words if i < keep else set()
    kept = [ln for p in paras[:keep] for ln in p]
    dropped = [ln for p in paras[keep:] for ln in p]
    answer = _join(kept)
    if not re.search(r"[^\W_]", answer):
        answer = ""
    last = kept[-1][0] if kept else open_.q.line
    return open_.q, answer, _join(dropped), last, open_.important, open_.section


def _keeps_subheading(current: _Open | None, heading: re.Match[str]) -> bool:
    """A deeper heading under a heading question stays part of that question's answer.

    An imperative heading (``### Explain …``) is a question of its own.
    """
    deeper = current is not None and not current.q.concept and 0 < current.q.level < len(heading.group(1))
    return deeper and not is_imperative(_BOLD_ONLY.sub(r"\1", heading.group(2)))


def _concept_at(s: str, heading: re.Match[str] | None, first_line: bool) -> _Question | None:
    """A concept starting on this (non-question) line: a Markdown heading or a definition line."""
    if heading is not None:
        if first_line and len(heading.group(1)) == 1:
            return None  # the document's title
        return _Question(_BOLD_ONLY.sub(r"\1", heading.group(2)).strip(), 0, concept=True)
    found = match_definition(s)
    if found is None:
        return None
    return _Question(found.term, 0, concept=True, inline_answer=found.definition)


def _scan(lines: Iterable[str], leftovers: _LeftoverRuns | None = None) -> Iterator[_Finished]:
    """Questions and concepts with their answers, as the lines are read (one pass: nothing but the
    open question's lines is held); text under neither goes to ``leftovers``."""
    current: _Open | None = None
    pending_important = False
    section = ""
    after_break = True  # start of file counts as after a blank line
    seen_text = False
    for i, raw in enumerate(lines):
        s = raw.strip()
        if not s:
            if current is not None:
                current.lines.append((i, ""))
            after_break = True
            continue
        first_line, seen_text = not seen_text, True
        heading = _HEADING.match(s)
        marker = _is_marker(s) if not heading else None
        if marker is not None:
            kind, body = marker
            if kind == "ignore":
                continue
            if current is not None:
                yield _finish(current)
                current = None
            if kind == "important":
                pending_important = True
            else:
                section = body
                pending_important = False
            after_break = True
            continue
        q = _match_question(raw)
        if q is None and heading is not None and _keeps_subheading(current, heading):
            q = None
        elif q is None and (heading is not None or current is None or current.q.concept):
            q = _concept_at(s, heading, first_line)
        if q is not None:
            if current is not None:
                yield _finish(current)
            q.line = i
            if q.concept and heading is not None:
                section = q.text
            current = _Open(q=q, section=section, important=pending_important or q.important)
            pending_important = False
            after_break = False
            continue
        header = _section_header(s, after_break) if heading is None else None
        if header is not None or (heading is None and _is_note_to_self(s, after_break)):
            if current is not None:
                yield _finish(current)
                current = None
            if header is not None:
                section = header
                if is_term(header):  # a short title ("WORD2VEC:") with text under it is a concept
                    current = _Open(q=_Question(header, i, concept=True), section=section, important=False)
            pending_important = False
            after_break = True
            continue
        pending_important = False
        after_break = False
        if current is not None:
            current.lines.append((i, raw))
        elif leftovers is not None and heading is None:
            leftovers.add(i, section, raw)
    if current is not None:
        yield _finish(current)
    if leftovers is not None:
        leftovers.close()


class _LeftoverRuns:
    """Runs of text under no question, split where a section changes, kept when they hold at least
    a sentence: grouped as the lines come (a run at a time is held, not every line)."""

    def __init__(self, out: list[Leftover]) -> None:
        self._out = out
        self._run: Leftover | None = None

    def add(self, line: int, section: str, text: str) -> None:
        """``line`` (0-based) under no question, in ``section``."""
        words = len(text.split())
        last = self._run
        if last is not None and last.section == section and line + 1 - last.line_end <= 2:
            self._run = Leftover(last.line_start, line + 1, section, last.words + words)
        else:
            self.close()
            self._run = Leftover(line + 1, line + 1, section, words)

    def close(self) -> None:
        if self._run is not None and self._run.words >= _LEFTOVER_MIN_WORDS:
            self._out.append(self._run)
        self._run = None


def parse_notes(text: str, source_key: str, *, leftovers: list[Leftover] | None = None) -> list[Card]:
    """Parse decoded notes text into cards. ``source_key`` names the file in ids and sources.

    ``leftovers``, when given, receives the sections of text that could not be turned into
    questions (text under no question or concept).
    """
    return list(iter_cards(text.split("\n"), source_key, leftovers=leftovers))


def iter_cards(lines: Iterable[str], source_key: str, *, leftovers: list[Leftover] | None = None) -> Iterator[Card]:
    """:func:`parse_notes` over lines as they are read (``\\n``-free, e.g. a
    :class:`~bot.knowledge.reading.NotesLines`): each card is yielded once its answer has ended, so
    memory is one card's, whatever the size of the file. ``leftovers`` is complete when the
    iteration is.
    """
    seen: dict[str, int] = {}  # question key -> times seen (for the ids): small, one entry a question
    runs = _LeftoverRuns(leftovers) if leftovers is not None else None
    for q, answer, extra, last, important, section in _scan(lines, runs):
        if q.concept and not answer:
            continue  # a heading with nothing under it is only a section title
        key = question_key(q.text)
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        display = concept_question(q.text) if q.concept else display_question(q.text, term_only=q.term_only)
        flags: list[str] = []
        if important:
            flags.append(FLAG_IMPORTANT)
        if not answer:
            flags.append(FLAG_NO_ANSWER)
        if q.concept:
            flags.append(FLAG_GENERATED)
        yield Card(
            id=card_id(source_key, q.text, occurrence),
            question=q.text.strip(),
            display_question=display,
            answer=answer,
            topic=classify_topic(display, answer, section),
            flags=flags,
            source=Source(path=source_key, line_start=q.line + 1, line_end=last + 1),
            section=section,
            extra=extra,
        )


def parse_file(path: Path, source_key: str | None = None) -> list[Card]:
    """Read and parse one notes file. Raises NotesDecodeError for binary/undecodable files."""
    from bot.knowledge.reading import NotesLines

    with path.open("rb") as stream:
        return list(iter_cards(NotesLines(stream), source_key or str(path)))
