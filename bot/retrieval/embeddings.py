"""Run-time sentence embeddings: all-MiniLM-L6-v2 as ONNX, no torch.

The model directory is produced once at install time by
``python -m bot.install.model_export --dest DIR`` (see :mod:`bot.install.model_export`).  It
holds ``model.onnx`` (mean pooling and L2 normalisation are inside the graph),
``tokenizer.json`` and ``manifest.json``.

This module only needs numpy, onnxruntime and tokenizers; the store wraps it for Chroma
(:mod:`bot.retrieval.store`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import onnxruntime
    from tokenizers import Tokenizer

    from bot.settings import Settings

__all__ = [
    "EMBEDDING_DIM",
    "MAX_SEQ_LENGTH",
    "MODEL_NAME",
    "Embedder",
    "EmbeddingModelMissing",
    "LocalEmbedder",
    "MiniLMEmbedder",
    "OpenAIEmbedder",
    "load_tokenizer",
    "make_embedder",
]

MODEL_NAME = "all-MiniLM-L6-v2"
EMBEDDING_DIM = 384
# sentence-transformers' max_seq_length for this model (sentence_bert_config.json);
# counts the [CLS] and [SEP] tokens, like the HF tokenizer's max_length.
MAX_SEQ_LENGTH = 256
ONNX_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
OUTPUT_NAME = "sentence_embedding"

# Default intra-op threads (threads=None).  Measured on the 2-core box: 2 threads
# with spin-waiting off give ~1.8x the throughput of 1 and a lower p50 when the
# machine is idle, and are no worse than 1 thread when another process keeps a
# core busy (with spinning on, 2 threads were up to 2x slower under contention).
# Texts × tokens² per ONNX run: activation memory grows with it (32 texts of 256 tokens peaked at
# ~670 MB over the model; 4 of 256 at ~230 MB, no slower). Short texts still go 32 at a time.
ATTENTION_BUDGET = 4 * MAX_SEQ_LENGTH**2
DEFAULT_THREADS = max(1, min(2, os.cpu_count() or 1))

Int64Array = npt.NDArray[np.int64]
Float32Array = npt.NDArray[np.float32]


class EmbeddingModelMissing(RuntimeError):
    """The exported ONNX model directory is missing or incomplete."""

    def __init__(self, model_dir: Path, missing: str) -> None:
        self.model_dir = model_dir
        super().__init__(
            f"Embedding model not found: {missing} is missing in {model_dir}. "
            "Run `make install`, or export it with "
            f"`python -m bot.install.model_export --dest {model_dir}`."
        )


def _check_model_dir(model_dir: Path) -> None:
    if not model_dir.is_dir():
        raise EmbeddingModelMissing(model_dir, "the directory")
    for name in (ONNX_FILE, TOKENIZER_FILE):
        if not (model_dir / name).is_file():
            raise EmbeddingModelMissing(model_dir, name)


def load_tokenizer(tokenizer_json: Path, max_length: int = MAX_SEQ_LENGTH) -> Tokenizer:
    """Load a ``tokenizers.Tokenizer`` set up exactly as sentence-transformers uses it.

    The shipped tokenizer.json carries truncation at 128 and fixed padding to
    128; sentence-transformers instead truncates (longest_first, right side) to
    ``max_seq_length`` tokens including specials and pads to the longest
    sequence of the batch.  Padding is done here in numpy, so it is disabled.
    """
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    tok.no_padding()
    tok.enable_truncation(max_length=max_length, stride=0, strategy="longest_first", direction="right")
    return tok


def encode_texts(tokenizer: Tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Token ids per text (with [CLS]/[SEP], truncated), no padding.

    Texts are stripped first, as sentence-transformers' Transformer.tokenize does.
    """
    encodings = tokenizer.encode_batch([str(t).strip() for t in texts])
    return [e.ids for e in encodings]


def pad_batch(ids: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[Int64Array, Int64Array, Int64Array]:
    """Right-pad to the longest sequence: (input_ids, attention_mask, token_type_ids)."""
    width = max((len(s) for s in ids), default=0)
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    attention_mask = np.zeros((len(ids), width), dtype=np.int64)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)] = seq
        attention_mask[row, : len(seq)] = 1
    token_type_ids = np.zeros((len(ids), width), dtype=np.int64)
    return input_ids, attention_mask, token_type_ids


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings from an exported ONNX model.

    Loading is lazy and thread-safe; ``embed`` may be called from several
    threads (onnxruntime sessions and tokenizers are safe to share).
    """

    def __init__(
        self,
        model_dir: Path | str,
        *,
        threads: int | None = None,
        batch_size: int = 32,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if threads is not None and threads < 1:
            raise ValueError("threads must be >= 1 or None")
        self.model_dir = Path(model_dir).expanduser().resolve()
        self.threads = threads
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._session: onnxruntime.InferenceSession | None = None
        self._tokenizer: Tokenizer | None = None
        self._pad_id = 0
        self._input_names: frozenset[str] = frozenset()
        _check_model_dir(self.model_dir)

    @property
    def dimension(self) -> int:
        return EMBEDDING_DIM

    @property
    def loaded(self) -> bool:
        return self._session is not None

    def load(self) -> None:
        """Load the ONNX session and tokenizer now (otherwise done on first use)."""
        self._ensure_loaded()

    def _ensure_loaded(self) -> tuple[onnxruntime.InferenceSession, Tokenizer]:
        session, tokenizer = self._session, self._tokenizer
        if session is not None and tokenizer is not None:
            return session, tokenizer
        with self._lock:
            if self._session is None or self._tokenizer is None:
                _check_model_dir(self.model_dir)
                import onnxruntime as ort

                tokenizer = load_tokenizer(self.model_dir / TOKENIZER_FILE)
                pad_id = tokenizer.token_to_id("[PAD]")
                options = ort.SessionOptions()
                options.intra_op_num_threads = self.threads or DEFAULT_THREADS
                options.inter_op_num_threads = 1
                options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                options.log_severity_level = 3
                # Idle worker threads sleep instead of spinning: the bot shares 2 cores.
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                session = ort.InferenceSession(
                    str(self.model_dir / ONNX_FILE),
                    sess_options=options,
                    providers=["CPUExecutionProvider"],
                )
                self._input_names = frozenset(i.name for i in session.get_inputs())
                self._pad_id = 0 if pad_id is None else pad_id
                self._tokenizer = tokenizer
                self._session = session
            assert self._session is not None and self._tokenizer is not None
            return self._session, self._tokenizer

    def embed(self, texts: Sequence[str]) -> Float32Array:
        """Embed ``texts``: float32 array [len(texts), 384], rows L2-normalised.

        Texts are sorted by token length so each batch pads little, and the
        rows come back in the input order.
        """
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of strings, not a str")
        if len(texts) == 0:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        session, tokenizer = self._ensure_loaded()
        ids = encode_texts(tokenizer, texts)
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        out = np.empty((len(ids), EMBEDDING_DIM), dtype=np.float32)
        for chunk in _batches(order, [len(ids[i]) for i in order], self.batch_size):
            input_ids, attention_mask, token_type_ids = pad_batch([ids[i] for i in chunk], self._pad_id)
            feeds: dict[str, Int64Array] = {
                "input_ids": input_ids,
                "attention_mask": attention_mask,
                "token_type_ids": token_type_ids,
            }
            feeds = {k: v for k, v in feeds.items() if k in self._input_names}
            (result,) = session.run([OUTPUT_NAME], feeds)
            out[chunk] = np.asarray(result, dtype=np.float32)
        return out

    def __repr__(self) -> str:
        return (
            f"MiniLMEmbedder(model_dir={str(self.model_dir)!r}, "
            f"threads={self.threads!r}, batch_size={self.batch_size!r})"
        )


class Embedder(Protocol):
    """Anything that turns texts into L2-normalised vectors (the store and the offline grader use one)."""

    @property
    def model_id(self) -> str: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def _batches(order: list[int], lengths: list[int], most: int) -> Iterator[list[int]]:
    """``order`` (longest first; ``lengths`` in that order) cut into runs of at most ``most`` texts
    whose padded attention (texts × tokens²) stays within :data:`ATTENTION_BUDGET`."""
    chunk: list[int] = []
    longest = 0
    for index, length in zip(order, lengths, strict=True):
        longest = max(longest, length)
        if chunk and (len(chunk) == most or (len(chunk) + 1) * longest**2 > ATTENTION_BUDGET):
            yield chunk
            chunk, longest = [], length
        chunk.append(index)
    if chunk:
        yield chunk


class LocalEmbedder:
    """all-MiniLM-L6-v2 through ONNX Runtime (offline)."""

    model_id = "all-MiniLM-L6-v2"

    def __init__(self, settings: Settings) -> None:
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
