"""Concept cards: notes without question marks.

Lecture-style notes name a concept and explain it: a Markdown heading (``## Teacher forcing``,
``## Explain precision and recall``), a ``Term: definition`` or ``Term – definition`` line, a
bold lead-in (``**Term.** text``, ``**Term**: text``) or a bullet definition. Each becomes a card
whose display question is generated from the concept ("What is teacher forcing?",
"Explain precision and recall.", "Compare perplexity and cross-entropy.") and flagged
``generated``; the answer is the text under it, verbatim, up to the next concept or question.

The parser in :mod:`bot.knowledge.notes` asks this module only while no explicit question is
open: inside an explicit question's answer, definition lines stay part of that answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.knowledge.text import display_question

__all__ = ["Concept", "concept_question", "is_imperative", "is_term", "match_definition"]

_LIST_PREFIX = re.compile(r"^(?:[-*+•]\s+|\d{1,3}[.)]\s+)")
# **Term.** text | **Term**: text | **Term:** text | **Term** – text
_BOLD_LEAD = re.compile(r"^(?:\*\*|__)([^*_]{1,60}?)\s*([.:])?\s*(?:\*\*|__)\s*(?:([:–—-])\s*)?(.*)$")
_COLON = re.compile(r"^([^:]{1,60}?)\s*:\s+(\S.*)$")
_DASH = re.compile(r"^(.{1,60}?)\s+(?:--|[–—-])\s+(\S.*)$")
_BOLD_TITLE = re.compile(r"^(?:\*\*|__)([^*_]{1,60}?)\s*:?\s*(?:\*\*|__)\s*:?$")
_TERM_TITLE = re.compile(r"^([^:]{1,60}?)\s*:$")  # "Overfitting:" with the definition below

# A "term" opening like this is a label or a sentence, not a concept.
_LABEL_WORDS = """
note notes example examples eg e.g ie i.e source sources ref refs reference references see todo tip tips
warning important answer question summary result results pros cons advantages disadvantages formula
intuition why how what key idea remember also update edit date time link url http https file page
step input output returns return usage default defaults caveat caveats hint recap tldr tl;dr
"""
_SENTENCE_WORDS = "it this that we you i they he she there here so and but or if when then"
_VERB_WORDS = "is are was were be been has have had do does did can will would should must may mean means"
_IMPERATIVE_WORDS = """
explain describe compare contrast list define outline discuss summarise summarize name give state derive
show illustrate justify evaluate identify write sketch draw implement calculate prove walk
"""
_INTERROGATIVE_WORDS = "how why what when which who whom whose where is are does do did can could should would will"
_LABELS = frozenset(_LABEL_WORDS.split())
_SENTENCE_STARTS = frozenset(_SENTENCE_WORDS.split())
_VERBS = frozenset(_VERB_WORDS.split())
_IMPERATIVES = frozenset(_IMPERATIVE_WORDS.split())
_INTERROGATIVES = frozenset(_INTERROGATIVE_WORDS.split())
_VERSUS = re.compile(r"^(.+?)\s+(?:vs\.?|versus)\s+(.+)$", re.IGNORECASE)
_DIFFERENCE = re.compile(r"^(?:the\s+)?differences?\s+between\s+(.+)$", re.IGNORECASE)
_MAX_TERM_WORDS = 5
_NUMBERING = re.compile(r"^(?:\d+(?:\.\d+)*[.)]?|[IVX]+\.|[A-Z]\))\s+")


@dataclass(frozen=True)
class Concept:
    """A concept found on one line: its term and the definition text on that line (may be empty)."""

    term: str
    definition: str


def is_term(term: str) -> bool:
    """A short noun phrase naming a concept (not a label such as ``Note``, not a sentence)."""
    words = term.split()
    if not 1 <= len(words) <= _MAX_TERM_WORDS or len(term) > 60:
        return False
    if not re.match(r"[^\W\d_]", term) or re.search(r"[?!;:,=<>{}\[\]]|\.\s|\.$", term):
        return False
    low = [w.casefold().strip("()") for w in words]
    if low[0] in _LABELS or low[0] in _SENTENCE_STARTS or " ".join(low) in _LABELS:
        return False
    return not (set(low[1:]) & _VERBS)


def is_imperative(text: str) -> bool:
    """``Explain …``, ``Compare …``: a question written as an instruction."""
    words = re.findall(r"[A-Za-z']+", _NUMBERING.sub("", text.strip()))
    return bool(words) and words[0].casefold() in _IMPERATIVES


def _enough(definition: str) -> bool:
    """A definition, not a subtitle ("Interview prep: classical ML"): three words or a formula."""
    return len(definition.split()) >= 3 or bool(re.search(r"[=()/^+]", definition))


def match_definition(line: str) -> Concept | None:
    """``Term: definition``, ``Term – definition``, ``**Term.** text``, ``**Term**``, as bullets too."""
    s = _LIST_PREFIX.sub("", line.strip(), count=1)
    if not s:
        return None
    title = _BOLD_TITLE.match(s) or _TERM_TITLE.match(s)
    if title and is_term(title.group(1).strip()):
        return Concept(title.group(1).strip(), "")
    bold = _BOLD_LEAD.match(s)
    if bold and (bold.group(2) or bold.group(3)):
        term, rest = bold.group(1).strip(), bold.group(4).strip()
        if is_term(term) and _enough(rest):
            return Concept(term, rest)
        return None
    for pattern in (_COLON, _DASH):
        m = pattern.match(s)
        term = m.group(1).strip().strip("*_`").strip() if m else ""
        if m and is_term(term) and _enough(m.group(2)):
            return Concept(term, m.group(2).strip())
    return None


def _plural(term: str) -> bool:
    last = term.split()[-1].casefold()
    return len(last) > 3 and last.endswith("s") and not last.endswith(("ss", "us", "is", "as", "ics", "'s"))


def concept_question(term: str) -> str:
    """The display question generated for a concept (a heading or a defined term)."""
    text = _NUMBERING.sub("", term.strip().rstrip(":").strip()).strip() or term.strip()
    words = re.findall(r"[A-Za-z']+", text)
    first = words[0].casefold() if words else ""
    if first in _IMPERATIVES:
        return text[0].upper() + text[1:].rstrip(".") + "."
    if first in _INTERROGATIVES:
        second = words[1].casefold() if len(words) > 1 else ""
        if first in {"how", "why", "what", "when", "where", "which"} and second not in _INTERROGATIVES | _VERBS:
            return f"Explain {_lower(text).rstrip('.')}."  # "How attention works" → "Explain how attention works."
        return display_question(text.rstrip(".") + "?")
    versus = _VERSUS.match(text)
    if versus:
        return f"Compare {_lower(versus.group(1))} and {_lower(versus.group(2))}."
    difference = _DIFFERENCE.match(text)
    if difference:
        return f"What is the difference between {_lower(difference.group(1))}?"
    words_all = text.split()
    if len(words_all) > 1 and all(w[:1].isupper() for w in words_all if w[:1].isalpha()):
        text = " ".join(_lower(w) for w in words_all)  # Title Case heading: "Logistic Regression"
    question = display_question(text, term_only=True)
    if _plural(text) and question.startswith("What is "):
        question = "What are " + question[len("What is ") :]
    return question


def _title_word(word: str) -> bool:
    """``Regression``, ``Short-Term``: capitalised, the rest lower case (not ``LSTM``, ``ReLU``)."""
    return all(p[:1].isupper() and p[1:] == p[1:].lower() and p[1:].isalpha() for p in word.split("-"))


def _lower(part: str) -> str:
    """Sentence case for a term inside a question, keeping acronyms and names like ReLU."""
    part = part.strip()
    first = part.split()[0] if part else ""
    if _title_word(first):
        return first.lower() + part[len(first) :]
    return part
