"""One rubric per card version: the key points both graders grade against.

A :class:`Rubric` is compiled once per card version (the card's content hash) from the note's answer
by :func:`compile_rubric`, a heuristic made for messy, hard-wrapped study notes:

1. **Sentences rebuilt** across hard-wrapped lines (a line that does not end a sentence continues on
   the next unless that one opens a bullet, a number or a ``Label:``), split again at sentence ends
   (``app.this`` included) and at clause boundaries when very long.
2. **SHOUTING normalised**: a mostly upper-case sentence is lower-cased except for acronyms (short
   words that are rare in English: RAG, LLM, ADAM).
3. **Detail, not core**: worked-example arithmetic, anecdotes and examples ("suppose", "for
   example", "i got …"), notes-to-self ("remember", "important", "don't confuse") and formulas.
   Questions the note asks itself and header lines ("Here are the key points:") are dropped.
4. **Near-duplicates merged** (:func:`near_duplicate`: content-word Jaccard ≥ ``MERGE_JACCARD``)
   and the most informative 2–6 points kept (greedy by new content words, at most
   ``MAX_CORE`` core and ``MAX_DETAIL`` detail points), in the note's order.
5. **Labels**: a short noun phrase per point (the note's own ``Label:``, the sentence's subject, or
   its most informative run of content words), used by hints and follow-ups.

An answer too short for two clauses of ``MIN_POINT_WORDS`` words gets a single point. Framework-free:
pydantic and the word lists of :mod:`bot.grading.keypoints` only.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Literal, cast

from pydantic import BaseModel, Field, ValidationError

from bot.grading.keypoints import (
    clean_text,
    content_stems,
    function_words,
    known_word,
    stem,
    stopwords,
    tokens,
    word_weight,
)
from bot.knowledge.cards import Card

__all__ = [
    "COMPILER_VERSION",
    "MAX_POINTS",
    "MIN_POINT_WORDS",
    "KeyPoint",
    "Rubric",
    "compile_rubric",
    "dangling",
    "label_for",
    "near_duplicate",
    "parse_rubric_text",
    "rubric_text",
]

COMPILER_VERSION = "heuristic-1"
MAX_POINTS = 6
MAX_CORE = 4
MAX_DETAIL = 2
MIN_POINT_WORDS = 4
MAX_POINT_WORDS = 32
MAX_KEPT_WORDS = 45  # longer sentences (rambles no clause boundary could cut) are dropped when others exist
MERGE_JACCARD = 0.6  # merged when compiling; the quality test calls ≥ 0.8 a near-duplicate
NEAR_DUPLICATE = 0.8

Weight = Literal["core", "detail"]
CompiledBy = Literal["heuristic", "llm", "user"]

WORDS_PATH = Path(__file__).with_name("rubric_words.json")


class KeyPoint(BaseModel):
    """One atomic key point of the reference answer."""

    text: str = Field(min_length=1, max_length=600, description="A whole sentence or clause.")
    label: str = Field(min_length=1, max_length=80, description="A short noun phrase naming the point.")
    weight: Weight = "core"
    lines: list[int] = Field(default_factory=list, description="Source lines of the note it came from.")


class Rubric(BaseModel):
    """The key points of one card version, compiled once and shared by every grader."""

    card_id: str
    card_hash: str = Field(description="The card's content hash this rubric was compiled from.")
    gist: str = Field("", description="The answer in one line.")
    points: list[KeyPoint] = Field(min_length=1, max_length=MAX_POINTS)
    compiled_by: CompiledBy = "heuristic"
    version: int = Field(1, ge=1, description="Bumped by every edit.")
    stale: bool = Field(False, description="A user edit made for an earlier version of the note.")
    compile_note: str = Field("", max_length=500, description="What compiling it left out or fell back from.")

    @property
    def texts(self) -> list[str]:
        return [p.text for p in self.points]

    @property
    def weights(self) -> list[Weight]:
        return [p.weight for p in self.points]


@cache
def _words() -> dict[str, frozenset[str]]:
    data = json.loads(WORDS_PATH.read_text(encoding="utf-8"))
    return {name: frozenset(data[name]) for name in ("verbs", "pronouns", "dangling", "not_labels")}


def near_duplicate(a: str, b: str, threshold: float = NEAR_DUPLICATE) -> bool:
    """Two points say the same: the Jaccard overlap of their content stems is ≥ ``threshold``, or one's
    content stems (at least three) all appear in the other."""
    sa, sb = set(content_stems(a)), set(content_stems(b))
    if not sa or not sb:
        return False
    if len(sa & sb) / len(sa | sb) >= threshold:
        return True
    small, big = (sa, sb) if len(sa) <= len(sb) else (sb, sa)
    return len(small) >= 3 and small <= big


def dangling(text: str) -> bool:
    """The text ends on a function word ("… because of the"): a fragment cut mid-way."""
    words = tokens(text)
    return bool(words) and words[-1] in _words()["dangling"]


# --- sentences ------------------------------------------------------------------------------------

_BULLET = re.compile(r"^\s*(?:[-*+•·▪►]+|\(?\d{1,2}[.)](?!\d)|[a-z][.)](?=\s))\s*")
_LABEL = re.compile(r"^([A-Za-z][\w()'/ -]{1,40}?)\s*:\s*(?=\S)(?!//)")
_MARKER = re.compile(r"^\s*#")
_SENT_END = re.compile(r"(?<=[.!?])\s+|(?<=[A-Za-z)]{2}[.?!])(?=[A-Za-z]{2,})|(?<=[A-Za-z]{2}\?)(?=\w)")
_ABBREV = re.compile(r"\b(e\.g|i\.e|etc|vs|cf|approx)\.", re.IGNORECASE)
_CLAUSE = re.compile(
    r"(?<=[,;])\s*|\s+(?=\b(?:whereas|while|but|so that|because|beacuse|cuz|and then|that's why|thats why|so)\b)",
    re.IGNORECASE,
)
SPLIT_WORDS = 18  # a run-on sentence longer than this is cut at clause boundaries …
_CLAUSE_MORE = re.compile(  # … and beyond this, where a new clause (with its own subject) starts
    r"\s+(?=\b(?:and (?:we|we're|i|it|its|it's|this|that|they|you|u|so)|then|if|when|where|whenever)\b)", re.IGNORECASE
)
_ASKED = re.compile(r"^\s*\w+\?\s*:?\s*")  # "Why?: Without …"
_HEADER = re.compile(
    r"^(here\s+(are|is)|the\s+following|following\s+are|key\s+points?|in\s+(summary|short|brief)\b|to\s+summari[sz]e)",
    re.IGNORECASE,
)
_ARITHMETIC = re.compile(r"\d\s*[-+*/x=]\s*\d|\w\s*=+\s*\w|\d+\.\d+.*\d+\.\d+", re.IGNORECASE)
_ANECDOTE = re.compile(
    r"\b(for example|example|for instance|e\.g|suppose|imagine|let'?s say|like netflix|i got|i have|im having"
    r"|i'm having|in my|my project|my experience|i used|i use|i will|ill have|i'll)\b",
    re.IGNORECASE,
)
_NOTE_TO_SELF = re.compile(
    r"\b(remember|remeber|important|don'?t confuse|dont forget|don'?t forget|note to self|chatgpt|always)\b",
    re.IGNORECASE,
)


def _is_shouted(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 4 and sum(c.isupper() for c in letters) / len(letters) > 0.6


def _acronym(word: str) -> bool:
    low = word.lower()
    return 2 <= len(word) <= 4 and low not in stopwords() and low not in _words()["verbs"] and word_weight(low) >= 0.6


def _unshout(text: str) -> str:
    """Upper-case words lower-cased, acronyms kept (the notes shout single words mid-sentence too)."""
    return re.sub(
        r"[A-Za-z]+",
        lambda m: m.group(0).lower() if m.group(0).isupper() and not _acronym(m.group(0)) else m.group(0),
        text,
    )


def _tidy(sentence: str) -> str:
    s = " ".join(sentence.split()).strip(" -–—:;,")
    s = re.sub(r"\bi\b", "I", s)
    s = re.sub(r"\s+([,.;:!?])", r"\1", s)
    if s and s[0].islower():
        s = s[0].upper() + s[1:]
    if s and s[-1] not in ".!?":
        s += "."
    return s


def _continues(previous: str, line: str) -> bool:
    """A hard-wrapped line goes on with the sentence above it: it opens in lower case or a digit, the
    sentence above stopped on a comma or a function word, or both are shouted."""
    return (
        line[0].islower()
        or line[0].isdigit()
        or previous.rstrip()[-1:] in ",;(-&"
        or dangling(previous)
        or (_is_shouted(previous[-60:]) and _is_shouted(line))
    )


def _units(card: Card) -> list[tuple[str, str, list[int]]]:
    """(label, text, source lines): the answer's lines joined back into sentences."""
    first = card.source.line_start + (1 if card.source.line_end > card.source.line_start else 0)
    units: list[tuple[str, str, list[int]]] = []
    open_unit = False
    for i, raw in enumerate(clean_text(card.answer).split("\n")):
        line_no = min(first + i, card.source.line_end)
        if _MARKER.match(raw):
            open_unit = False
            continue
        line = _BULLET.sub("", raw).strip()
        if not line:
            open_unit = False
            continue
        starts_new = bool(_BULLET.match(raw)) or bool(_LABEL.match(line))
        if open_unit and not starts_new and units and _continues(units[-1][1], line):
            label, text, lines = units[-1]
            units[-1] = (label, f"{text} {line}", [*lines, line_no])
        else:
            label = ""
            match = _LABEL.match(line)
            if match and len(match.group(1).split()) <= 4 and not _HEADER.match(match.group(1)):
                label, line = match.group(1).strip(), line[match.end() :]
            units.append((label, line, [line_no]))
        open_unit = line.rstrip()[-1:] not in ".!?:"
    return units


def _cut(sentence: str, pattern: re.Pattern[str]) -> list[str]:
    """``sentence`` cut where ``pattern`` matches, into clauses of more than ``MIN_POINT_WORDS`` words that
    never end on a function word (shorter pieces stay with their neighbour)."""
    out: list[str] = []
    cur = ""
    for part in pattern.split(sentence):
        part = part.strip()
        if not part:
            continue
        if cur and len(cur.split()) > MIN_POINT_WORDS and len(part.split()) > MIN_POINT_WORDS and not dangling(cur):
            out.append(cur)
            cur = part
        else:
            cur = f"{cur} {part}".strip()
    if cur:
        if out and (len(cur.split()) <= MIN_POINT_WORDS or dangling(out[-1])):
            out[-1] = f"{out[-1]} {cur}"
        else:
            out.append(cur)
    return out


def _split_long(sentence: str) -> list[str]:
    """A run-on sentence over ``SPLIT_WORDS`` words cut at clause boundaries; a clause still over
    ``SPLIT_WORDS`` words is cut again at plain conjunctions."""
    if len(sentence.split()) <= SPLIT_WORDS:
        return [sentence]
    out: list[str] = []
    for clause in _cut(sentence, _CLAUSE):
        out.extend(_cut(clause, _CLAUSE_MORE) if len(clause.split()) > SPLIT_WORDS else [clause])
    return out


def _sentences(card: Card) -> list[tuple[str, str, list[int]]]:
    out: list[tuple[str, str, list[int]]] = []
    for label, text, lines in _units(card):
        protected = _ABBREV.sub(lambda m: m.group(1) + "\x00", text)
        pieces: list[str] = []
        for piece in _SENT_END.split(protected):
            piece = _ASKED.sub("", piece.replace("\x00", ".")).strip()
            if pieces and dangling(pieces[-1]):  # "the process of:" goes on in the next piece
                pieces[-1] = f"{pieces[-1]} {piece}"
            elif piece and not piece.endswith("?") and not _HEADER.match(piece):
                pieces.append(piece)
        for piece in pieces:
            match = _LABEL.match(piece)
            if match and len(match.group(1).split()) <= 3 and not label:
                label, piece = match.group(1).strip(), piece[match.end() :]
            for clause in _split_long(_unshout(piece)):
                out.append((_unshout(label), _tidy(clause), lines))
                label = ""  # a label names the first sentence after it only
    merged: list[tuple[str, str, list[int]]] = []
    for label, text, lines in out:
        if merged and dangling(merged[-1][1]):  # "… the process of:" goes on in the next line
            lab, prev, prev_lines = merged[-1]
            merged[-1] = (lab, f"{prev[:-1]} {text[0].lower()}{text[1:]}", sorted({*prev_lines, *lines}))
        else:
            merged.append((label, text, lines))
    return merged


# --- labels ----------------------------------------------------------------------------------------

_SUBJECT = re.compile(
    r"^(?:the |a |an )?([\w'() -]{3,60}?)\s+(?:is|are|was|were|refers to|means|includes?|has|have|can|will|"
    r"allows?|helps?|determines?|introduces?|decides?|provides?|predicts?|identif(?:y|ies)|learns?|ranges?|"
    r"enables?|shifts?|represents?|converts?|reduces?|multipl(?:y|ies)|updates?|involves?)\b",
    re.IGNORECASE,
)


def _label_ok(label: str) -> bool:
    words = tokens(label)
    if not 1 <= len(words) <= 5:
        return False
    if len(words) == 1 and words[0] in _words()["not_labels"]:
        return False  # "Example:", "Definition:" name no idea
    bad = function_words() | _words()["pronouns"]
    return (
        words[0] not in bad
        and words[-1] not in bad
        and words[-1] not in _words()["verbs"]
        and not any(w in _words()["pronouns"] for w in words)
    )


def _label_weight(word: str) -> float:
    return word_weight(word) if known_word(word) else 0.3  # a typo is a poor name for a point


def _content_run(text: str, avoid: set[str]) -> str:
    """The most informative run of 1–3 adjacent content words (no verbs), as written."""
    lists = _words()
    stop = stopwords() | lists["verbs"] | lists["pronouns"] | lists["dangling"] | lists["not_labels"]
    runs: list[list[str]] = [[]]
    for w in re.findall(r"[A-Za-z][A-Za-z0-9'’-]*", text):
        low = w.lower()
        if (
            "'" in low
            or "’" in low
            or low in stop
            or len(low) < 3
            or (low.endswith("ly") and len(low) > 4)
            or (low.endswith("ed") and len(low) > 5)
        ):
            runs.append([])
        else:
            runs[-1].append(w)
    best, best_score = "", 0.0
    runs = [r for r in runs if r]
    for n, run in enumerate(runs):
        for size in (3, 2, 1):
            for i in range(0, max(0, len(run) - size) + 1):
                words = run[i : i + size]
                if len(words) < size:
                    continue
                # rare words over common ones, longer phrases a little, and earlier ones (the topic) first
                weights = [_label_weight(w.lower()) * (0.3 if w.lower() in avoid else 1.0) for w in words]
                score = sum(weights) / size**0.5 / (1 + 0.1 * n)
                if score > best_score + 1e-9:
                    best, best_score = " ".join(words), score
    return best


def _label(own: str, text: str, question: str, taken: set[str]) -> str:
    """The point's own ``Label:``, else its subject, else its most informative run of content words —
    the first that reads as a noun phrase and is not another point's label already."""
    q = set(tokens(question))
    candidates = [own]
    subject = _SUBJECT.match(text)
    if subject:
        candidates.append(subject.group(1))
    taken_words = {w for label in taken for w in tokens(label)}
    candidates += [_content_run(text, q), _content_run(text, q | taken_words)]
    for cand in candidates:
        cand = " ".join(cand.replace("(", " ").replace(")", " ").split()).strip(" -'")
        if cand and _label_ok(cand) and cand.lower() not in taken:
            return cand if any(c.isupper() for c in cand[1:]) else cand.lower()
    fallback = (_content_run(text, set()) or _content_run(question, set())).lower() or "answer"
    return fallback if fallback not in taken else f"{fallback} {len(taken) + 1}"


def label_for(text: str, question: str = "") -> str:
    """A noun-phrase label for a key point written without one (an LLM's point, an older grade)."""
    own = _LABEL.match(text)
    return _label(own.group(1) if own else "", text, question, set())


# --- compiling ------------------------------------------------------------------------------------


def _is_detail(label: str, text: str) -> bool:
    return bool(_ARITHMETIC.search(text) or _ANECDOTE.search(f"{label} {text}") or _NOTE_TO_SELF.search(text))


_CASUAL = frozenset({"i", "im", "ill", "ive", "u", "ur", "my", "cuz", "wanna", "gonna"})


def _quality(text: str) -> float:
    """How well a sentence reads as a key point: long run-ons, chatty first person and typos count against."""
    words = tokens(text)
    factor = min(1.0, 24 / max(1, len(words)))
    if any(w in _CASUAL for w in words):
        factor *= 0.7
    content = [w for w in words if w not in stopwords() and len(w) > 2 and not w.isdigit()]
    if content:
        factor *= 0.5 + 0.5 * sum(known_word(w) for w in content) / len(content)
    return factor


def _stem_weights(text: str, exclude: set[str]) -> dict[str, float]:
    """Content stems with their informativeness (a typo weighs little: it is not a known word)."""
    out: dict[str, float] = {}
    for w in tokens(text):
        if w in stopwords() or (len(w) < 2 and not w.isdigit()):
            continue
        s = stem(w)
        if s in exclude:
            continue
        out[s] = max(out.get(s, 0.0), word_weight(w) if known_word(w) else 0.2)
    return out


def _pick(cands: list[tuple[int, dict[str, float], float]], limit: int, covered: set[str]) -> list[int]:
    """Greedy: the sentence adding the most new, informative content (times its quality), up to ``limit``."""
    chosen: list[int] = []
    while len(chosen) < limit:
        best, best_gain = -1, 0.5
        for idx, stems, quality in cands:
            if idx in chosen:
                continue
            gain = quality * sum(w for s, w in stems.items() if s not in covered)
            if gain > best_gain:
                best, best_gain = idx, gain
        if best < 0:
            break
        chosen.append(best)
        covered |= set(next(c[1] for c in cands if c[0] == best))
    return chosen


def compile_rubric(card: Card) -> Rubric:
    """The heuristic rubric of ``card`` (an unanswered card gets its question as the only point)."""
    sents = [s for s in _sentences(card) if len(s[1].split()) >= MIN_POINT_WORDS and content_stems(s[1])]
    if any(len(s[1].split()) <= MAX_KEPT_WORDS for s in sents):  # a rambling paragraph is no key point
        sents = [s for s in sents if len(s[1].split()) <= MAX_KEPT_WORDS]
    kept: list[tuple[str, str, list[int]]] = []
    for label, text, lines in sents:
        dup = next((j for j, k in enumerate(kept) if near_duplicate(text, k[1], MERGE_JACCARD)), None)
        if dup is None:
            kept.append((label, text, lines))
        elif len(content_stems(text)) > len(content_stems(kept[dup][1])):
            kept[dup] = (label or kept[dup][0], text, sorted({*kept[dup][2], *lines}))
    if not kept:
        whole = _tidy(_unshout(" ".join(clean_text(card.answer or card.display_question).split())))
        kept = [("", whole, [card.source.line_start])]
    q_stems = set(content_stems(card.display_question))
    stems = [(i, _stem_weights(t, q_stems) or _stem_weights(t, set()), _quality(t)) for i, (_, t, _) in enumerate(kept)]
    detail = {i for i, (lab, t, _) in enumerate(kept) if _is_detail(lab, t)}
    core = _pick([c for c in stems if c[0] not in detail], MAX_CORE, set())
    if not core:  # a note made only of examples: its best ones are still what it says
        core = _pick(stems, min(2, MAX_CORE), set())
    covered = {s for c in stems if c[0] in core for s in c[1]}
    rest = [c for c in stems if c[0] not in core]
    extra = _pick(rest, min(MAX_DETAIL, MAX_POINTS - len(core)), covered)
    if len(core) + len(extra) < 2 and rest:
        extra = [rest[0][0]]
    taken: set[str] = set()
    points: list[KeyPoint] = []
    for i in sorted([*core, *extra]):
        own, text, lines = kept[i]
        label = _label(own, text, card.display_question, taken)
        taken.add(label.lower())
        points.append(KeyPoint(text=text, label=label, weight="core" if i in core else "detail", lines=lines))
    gist = next((p.text for p in points if p.weight == "core"), points[0].text)
    return Rubric(card_id=card.id, card_hash=card.content_hash(), gist=gist, points=points, compiled_by="heuristic")


# --- the editable text form --------------------------------------------------------------------

EDIT_HELP = """\
# Key points of: {question}
# One point per line:  weight | label | text
#   weight: core (what an interviewer expects) or detail (depth, examples)
#   label:  a short noun phrase naming the point (used by hints and follow-ups; may be left empty)
#   text:   the point as a whole sentence
# Lines starting with # are ignored. 1 to {max_points} points, at least one core.
# Save and close to store your version; an empty file changes nothing.
"""


def rubric_text(r: Rubric, question: str) -> str:
    """The editable text form of a rubric (what ``--edit`` opens)."""
    lines = [EDIT_HELP.format(question=" ".join(question.split()), max_points=MAX_POINTS)]
    lines += [f"{p.weight} | {p.label} | {p.text}" for p in r.points]
    return "\n".join(lines) + "\n"


def parse_rubric_text(text: str, base: Rubric, question: str) -> Rubric:
    """A rubric from JSON (a whole rubric, or ``{"points": [...]}``) or the ``weight | label | text``
    lines; raises ValueError saying what is wrong."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc}") from exc
        raw_points = data.get("points") if isinstance(data, dict) else None
        if not isinstance(raw_points, list):
            raise ValueError('the JSON needs a "points" list')
        rows = [(str(p.get("weight", "core")), str(p.get("label", "")), str(p.get("text", ""))) for p in raw_points]
    else:
        rows = []
        for n, line in enumerate(stripped.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = [p.strip() for p in line.split("|", 2)]
            if len(parts) != 3:
                raise ValueError(f"line {n}: expected 'weight | label | text', got {line.strip()[:60]!r}")
            rows.append((parts[0], parts[1], parts[2]))
    if not rows:
        raise ValueError("no key points")
    if len(rows) > MAX_POINTS:
        raise ValueError(f"{len(rows)} key points: at most {MAX_POINTS}")
    points = []
    for n, (weight, label, body) in enumerate(rows, 1):
        weight = weight.lower()
        if weight not in ("core", "detail"):
            raise ValueError(f"point {n}: weight must be core or detail, got {weight!r}")
        if len(body.split()) < 2:
            raise ValueError(f"point {n}: the text needs a whole sentence")
        points.append(KeyPoint(text=body, label=label or label_for(body, question), weight=cast(Weight, weight)))
    if not any(p.weight == "core" for p in points):
        raise ValueError("at least one point must be core")
    try:
        return Rubric.model_validate({**base.model_dump(), "points": [p.model_dump() for p in points]})
    except ValidationError as exc:
        raise ValueError(str(exc.errors()[0]["msg"])) from exc
