"""Topic classification for cards: a transparent keyword scorer tuned for ML interview notes.

Patterns tolerate the spelling in real notes (``propgation``, ``optimzers``, ``lemmetization``).
The question counts three times as much as the answer and the section header twice, so a card
lands where its question points even when its answer wanders.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.knowledge.text import normalize_for_search

__all__ = ["GENERAL", "TOPICS", "classify_topic", "match_topics"]

GENERAL = "General"

# Order matters only for ties: earlier topics win.
_PATTERNS: dict[str, list[str]] = {
    "Transformers & attention": [
        r"transformers?",
        r"self[\s-]?attention",
        r"attention",
        r"encoders?",
        r"decoders?",
        r"bert",
        r"positional",
        r"multi[\s-]?head",
        r"quer(?:y|ies)\b.*\bkeys?",
        r"residual connection",
    ],
    "RNN & LSTM": [
        r"rnns?",
        r"lstms?",
        r"bilstm",
        r"recurr?ent",
        r"bidirectional",
        r"gru",
        r"forget gate",
        r"long[\s-]term dependenc",
        r"memory cell",
        r"one to many",
        r"many to one",
    ],
    "GenAI & LLMs": [
        r"generative",
        r"generative ai",
        r"discriminative",
        r"dicriminative",
        r"genai",
        r"gen ai",
        r"llms?",
        r"large languages? models?",
        r"gans?",
        r"vaes?",
        r"autoencoder",
        r"rag\b",
        r"retriev\w* augm",
        r"fine[\s-]?tun",
        r"prompt",
        r"mode collapse",
        r"style transfer",
        r"discriminator",
        r"diffusion",
        r"serverless",
        r"bedrock",
        r"langchain",
        r"vector (?:database|embedding)",
        r"hallucinat",
        r"gemini",
        r"gpt",
        r"chatgpt",
    ],
    "NLP & embeddings": [
        r"nlp",
        r"natural language",
        r"tokk?eni[sz]",
        r"stop\s?wo?rds",
        r"lemm?e?ti[sz]",
        r"stemm?ing",
        r"\bner\b",
        r"named entity",
        r"bag of words",
        r"tf[\s-]?idf",
        r"word2?vec",
        r"wor2vec",
        r"embedd?ings?",
        r"wordembedding",
        r"cosine",
        r"similarity",
        r"corpus",
        r"vocabulary",
        r"feature extraction",
        r"one hot",
        r"n[\s-]?grams?",
        r"bigrams?",
        r"perpl?e?xity",
        r"masked language",
        r"\bmlm\b",
        r"cbow",
        r"skip[\s-]?gram",
        r"text",
    ],
    "Training & optimisation": [
        r"loss",
        r"cost function",
        r"optimi[sz]",
        r"optimzers?",
        r"gradient",
        r"descent",
        r"back[\s-]?prop\w*",
        r"vanishing",
        r"exploding",
        r"learning rate",
        r"epochs?",
        r"early st\w*ping",
        r"regulari[sz]",
        r"overfit\w*",
        r"underfit\w*",
        r"dropout",
        r"drop out",
        r"adam",
        r"momentum",
        r"rmsprop",
        r"adagrad\w*",
        r"noice",
        r"noise",
        r"convergence",
        r"weight updation",
        r"batch",
        r"chain rule",
    ],
    "Neural network basics": [
        r"neural",
        r"neurons?",
        r"nurons?",
        r"perceptron",
        r"weights?",
        r"bias(?:es)?",
        r"activation",
        r"sigmoid",
        r"relu",
        r"tanh",
        r"softmax",
        r"forward prop\w*",
        r"dense",
        r"hidden layers?",
        r"sequential",
        r"deep learning",
        r"\bdl\b",
        r"\bann\b",
        r"transfor learning",
        r"transfer learning",
    ],
    "Classical ML & data": [
        r"\bml\b",
        r"machine learning",
        r"(?<!generative )(?<!discriminative )\bai\b",
        r"data lake",
        r"data model\w*",
        r"data mining",
        r"feature scaling",
        r"standardi[sz]",
        r"normali[sz]",
        r"random forest",
        r"decision tree",
        r"cross[\s-]?validation",
        r"validation",
        r"\btrain\b",
        r"\btest\b",
        r"fit_transform",
        r"fit_predict",
        r"transform",
        r"box[\s-]?cox",
        r"skew",
        r"distribution",
        r"white (?:and black )?box",
        r"black box",
        r"xgboost",
        r"cluster\w*",
        r"regression",
        r"classification",
        r"\bsvm\b",
        r"bias and variance",
        r"bias[\s-]variance",
        r"precision",
        r"recall",
        r"f1",
        r"roc",
        r"auc",
        r"confusion matrix",
        r"accuracy",
        r"k[\s-]?nn",
        r"k-fold",
    ],
}

TOPICS: tuple[str, ...] = tuple(_PATTERNS)

_COMPILED = {
    topic: [re.compile(rf"\b(?:{p})", re.IGNORECASE) for p in patterns] for topic, patterns in _PATTERNS.items()
}


# One pass per topic first: most texts name few topics, so the per-pattern counts run only there.
_ANY = {topic: re.compile(rf"\b(?:{'|'.join(patterns)})", re.IGNORECASE) for topic, patterns in _PATTERNS.items()}


def _score(text: str) -> dict[str, int]:
    folded = normalize_for_search(text).casefold().replace("_", "_")
    return {
        topic: sum(len(rx.findall(folded)) for rx in rxs) if _ANY[topic].search(folded) else 0
        for topic, rxs in _COMPILED.items()
    }


def classify_topic(question: str, answer: str = "", section: str = "") -> str:
    """Pick the topic for a card; ``General`` when nothing matches."""
    totals = dict.fromkeys(TOPICS, 0.0)
    for text, weight, cap in ((question, 3.0, None), (section, 2.0, None), (answer[:1500], 1.0, 4)):
        if not text:
            continue
        for topic, n in _score(text).items():
            totals[topic] += weight * (min(n, cap) if cap is not None else n)
    best = max(TOPICS, key=lambda t: (totals[t], -TOPICS.index(t)))
    return best if totals[best] > 0 else GENERAL


def match_topics(wanted: str, topics: Sequence[str]) -> list[str]:
    """The topics a user's words name: the one equal to them (any case), else all that contain them."""
    low = wanted.strip().lower()
    return [t for t in topics if t.lower() == low] or [t for t in topics if low in t.lower()]
