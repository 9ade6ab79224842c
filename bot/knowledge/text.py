"""Text helpers shared by the parser, the store and the graders.

Everything here is pure and cheap: decoding note files, Unicode normalisation for search,
and turning a question as written into a clean display form.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "NotesDecodeError",
    "decode_notes",
    "decode_notes_checked",
    "display_question",
    "is_shouted",
    "normalize_for_search",
    "question_key",
    "strip_code_fence",
]


class NotesDecodeError(ValueError):
    """The bytes are not a text file we can read (binary, or not text at all)."""


_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def decode_notes(data: bytes) -> str:
    """Decode a notes file: UTF-8 (with or without BOM), UTF-16 with BOM, else Windows-1252 (per line).

    Line endings are normalised to ``\\n``. Binary data raises :class:`NotesDecodeError`.
    :func:`decode_notes_checked` also says what it had to repair.
    """
    return decode_notes_checked(data)[0]


def decode_notes_checked(data: bytes) -> tuple[str, list[str]]:
    """:func:`decode_notes`, plus a warning (naming the line) for each repair it made
    (the rules: :mod:`bot.knowledge.reading`, which reads files line by line)."""
    import io

    from bot.knowledge.reading import NotesLines

    lines = NotesLines(io.BytesIO(data))
    text = "\n".join(lines)
    return text, lines.warnings


_WS = re.compile(r"\s+")


def normalize_for_search(text: str) -> str:
    """NFKC-fold (mathematical bold/italic letters become plain ASCII) and collapse whitespace."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def question_key(text: str) -> str:
    """A case-, punctuation- and Unicode-insensitive key for a question (used in ids)."""
    folded = normalize_for_search(text).casefold()
    return " ".join(re.findall(r"[^\W_]+", folded))


def is_shouted(text: str, threshold: float = 0.7) -> bool:
    """True when most letters are upper case (the notes' SHOUTED style)."""
    letters = [ch for ch in normalize_for_search(text) if ch.isalpha()]
    if len(letters) < 3:
        return False
    upper = sum(1 for ch in letters if ch.isupper())
    return upper / len(letters) >= threshold


# Domain acronyms restored after lower-casing SHOUTED text (and fixed in lower-case notes).
_ACRONYMS = {
    "ai": "AI",
    "ml": "ML",
    "dl": "DL",
    "nlp": "NLP",
    "ner": "NER",
    "rnn": "RNN",
    "rnns": "RNNs",
    "lstm": "LSTM",
    "lstms": "LSTMs",
    "bilstm": "BiLSTM",
    "gru": "GRU",
    "cnn": "CNN",
    "llm": "LLM",
    "llms": "LLMs",
    "rag": "RAG",
    "bert": "BERT",
    "gpt": "GPT",
    "gan": "GAN",
    "gans": "GANs",
    "vae": "VAE",
    "vaes": "VAEs",
    "tfidf": "TF-IDF",
    "tf-idf": "TF-IDF",
    "mlm": "MLM",
    "svm": "SVM",
    "relu": "ReLU",
    "mse": "MSE",
    "mae": "MAE",
    "sgd": "SGD",
    "adam": "Adam",
    "genai": "GenAI",
    "llmops": "LLMOps",
    "mlops": "MLOps",
    "api": "API",
    "apis": "APIs",
    "cbow": "CBOW",
    "knn": "KNN",
    "pca": "PCA",
    "ann": "ANN",
    "sql": "SQL",
    "nosql": "NoSQL",
    "ohe": "OHE",
    "cv": "CV",
}

_QUESTION_STARTS = {
    "what",
    "why",
    "how",
    "when",
    "which",
    "who",
    "whom",
    "whose",
    "where",
    "can",
    "could",
    "do",
    "does",
    "did",
    "is",
    "are",
    "was",
    "were",
    "should",
    "would",
    "will",
    "have",
    "has",
    "explain",
    "describe",
    "define",
    "name",
    "list",
    "compare",
    "give",
    "tell",
    "state",
    "discuss",
    "and",
    "so",
    "now",
    "whats",
    "what's",
    "difference",
    "differences",
}
_VERBS = {"is", "are", "have", "has", "do", "does", "use", "work", "works", "mean", "means"}
_PLURAL_TERMS = ("types", "advantages", "disadvantages", "differences", "steps", "uses", "applications", "kinds")

_FILLER_PREFIX = re.compile(r"^(?:now\s+)?(?:the\s+)?question\s+(?:arises?|is)\s*[:,-]?\s*", re.IGNORECASE)
_IMPORTANT_TAG = re.compile(
    r"[\(\[]\s*(?:super\s+)?important\s*[\)\]]|#\s*(?:super\s*)?important\b|^\s*(?:super\s+)?important\s*:",
    re.IGNORECASE,
)
_MARKUP = re.compile(r"\*\*|__|`")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([?,.;:!])")
_MISSING_SPACE = re.compile(r"([?,;])(?=[^\s?,;)\]\"'])")


def _fix_case(text: str, shouted: bool) -> str:
    if shouted:
        text = text.lower()

    def repl(m: re.Match[str]) -> str:
        word = m.group(0)
        low = word.lower()
        if low in _ACRONYMS:
            return _ACRONYMS[low]
        if low.endswith("'s") and low[:-2] in _ACRONYMS:
            return _ACRONYMS[low[:-2]] + "'s"
        return word

    text = re.sub(r"[A-Za-z][A-Za-z\-]*(?:'s)?", repl, text)
    # Capitalise the start of every sentence.
    return re.sub(r"(^|[?.!]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)


def display_question(raw: str, *, term_only: bool = False) -> str:
    """Clean a question as written into a display form.

    Removes list bullets, ``#`` markers, ``Q:`` prefixes and Markdown emphasis, fixes SHOUTING
    (keeping acronyms), tidies spacing around ``?``, and turns a bare term (``TFIDF?``) into
    "What is TF-IDF?". The original wording is otherwise kept: typos are the user's own.
    """
    text = normalize_for_search(raw) if _has_math_letters(raw) else raw
    text = _IMPORTANT_TAG.sub(" ", _MARKUP.sub("", text))
    text = re.sub(r"^\s*(?:#+\s*|[-*+•]\s+|\d+[.)]\s+)", "", text)
    text = re.sub(r"^(?:Q\d*|Question\s*\d*)\s*[:.)]\s*", "", text, flags=re.IGNORECASE)
    text = _FILLER_PREFIX.sub("", text.strip())
    text = _WS.sub(" ", text).strip()
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = _MISSING_SPACE.sub(r"\1 ", text)
    text = text.rstrip(":").strip()
    if not text:
        return raw.strip()
    text = _fix_case(text, is_shouted(text))
    words = re.findall(r"[A-Za-z']+", text.lower())
    if term_only or (words and words[0] not in _QUESTION_STARTS and not (set(words) & _VERBS)):
        body = text.rstrip("?").strip()
        if body and body[0].isupper() and not body[:2].isupper() and body.split()[0].lower() not in _ACRONYMS:
            body = body[0].lower() + body[1:]
        lead = "What are" if body.lower().startswith(_PLURAL_TERMS) else "What is"
        text = f"{lead} {body}?"
    elif (
        not text.endswith("?")
        and words
        and words[0]
        in _QUESTION_STARTS
        - {"explain", "describe", "define", "list", "name", "compare", "give", "tell", "state", "discuss"}
    ):
        text += "?"
    return text[0].upper() + text[1:]


def _has_math_letters(text: str) -> bool:
    return any(0x1D400 <= ord(ch) <= 0x1D7FF for ch in text)


_CODE_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.S)


def strip_code_fence(text: str) -> str:
    """A model's reply without the Markdown code fence (```json … ```) some models wrap JSON in."""
    return _CODE_FENCE.sub("", text.strip())
