"""A 5 MB PDF of notes → cards available (printed figures, not a timed test).

The PDFs are generated here with pypdf's own writer (tests/pdfgen.py): pages of lecture-style
notes — a heading, ``Term: definition`` lines, an explicit question, an imperative — in two
shapes of 5 MB:

* ``typical``: 120 pages of notes with a figure (≈ 40 KB of image) on every page, as exported
  notes with slides or screenshots are;
* ``dense``: 1,200 pages of text only (uncompressed content streams, so the 5 MB are nearly
  all text: the worst case for extraction, parsing and embedding).

For each: **import** (pypdf text extraction + parsing into cards, in process) and **cards
available** (``interview ingest notes.pdf --json`` in a fresh process with a fresh data dir:
model load, import, embedding and writing every card — after it a drill can ask them).
``--import-only`` skips the ingest of the dense PDF (it embeds ~8,500 cards).

Run: ``python bench/bench_notes_pdf.py [--import-only]`` (target: ≤ 30 s for cards available).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_BYTES = 5 * 1024 * 1024
TARGET_SECONDS = 30.0

_TERMS = [
    ("Dropout", "randomly zeroing activations during training so that units cannot co-adapt."),
    ("Teacher forcing", "feeding the ground-truth previous token to the decoder during training."),
    ("Perplexity", "the exponential of the average negative log-likelihood per token."),
    ("Beam search", "a decoder that keeps the k most probable partial sequences at every step."),
    ("Layer normalization", "normalising each example's activations across its features."),
]


def _page(n: int) -> list[str]:
    lines = [f"## Lecture {n // 10 + 1} topic {n}: attention variant {n}"]
    lines += [
        f"Variant {n} of attention computes a weighted average of the values, with weights from the match",
        "between the query and each key, scaled by the square root of the key dimension and normalised",
        "with a softmax over the sequence; masking hides future positions in a decoder.",
        "",
    ]
    for i, (term, definition) in enumerate(_TERMS):
        lines.append(f"{term} {n}.{i}: {definition}")
        lines.append("In practice this matters for stability and for how the model generalises to new data.")
    lines += [
        f"What is the purpose of residual connection {n}?",
        "Adding a layer's input to its output gives gradients a direct path and makes deep stacks trainable,",
        "which is why every transformer block wraps attention and the feed-forward network in one.",
        f"Explain warmup schedule {n}",
        "The learning rate rises linearly for the first steps before decaying, which avoids unstable updates",
        "while the optimiser's running statistics are still noisy at the start of training.",
    ]
    lines += ["Further reading and scratch notes: " + "lorem ipsum dolor sit amet " * 3] * 18
    return lines


def make_pdf(path: Path, *, figures: bool) -> int:
    """Write a 5 MB notes PDF; returns its page count."""
    sys.path.insert(0, str(ROOT))
    from tests.pdfgen import write_pdf

    text = len("\n".join(_page(0)).encode()) + 600  # text plus PDF operators and objects
    pages = 120 if figures else TARGET_BYTES // text
    image = max(0, TARGET_BYTES // pages - text) if figures else 0
    write_pdf(path, [_page(n) for n in range(pages)], image_bytes=image)
    return pages


def cards_available(pdf: Path, data_dir: Path) -> tuple[float, int]:
    env = {**os.environ, "INTERVIEW_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "ingest", str(pdf), "--json"], capture_output=True, text=True, env=env, check=True
    )
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    return time.perf_counter() - started, int(summary["cards"])


def main() -> None:
    from bot.knowledge.importers import load

    import_only = "--import-only" in sys.argv
    for shape, figures in (("typical", True), ("dense", False)):
        with tempfile.TemporaryDirectory() as tmp:
            pdf = Path(tmp) / "notes.pdf"
            pages = make_pdf(pdf, figures=figures)
            started = time.perf_counter()
            cards = load(pdf, "notes.pdf").cards
            imported = time.perf_counter() - started
            print(
                f"{shape}: {pdf.stat().st_size / 1024 / 1024:.1f} MB, {pages} pages -> {len(cards)} cards; "
                f"import (pypdf extraction + parsing) {imported:.1f} s"
            )
            if import_only and shape == "dense":
                continue
            wall, count = cards_available(pdf, Path(tmp) / "data")
            print(
                f"{shape}: cards available (fresh process: model load + import + embed + write {count} cards) "
                f"{wall:.1f} s ({count / wall:.0f} cards/s)   target <= {TARGET_SECONDS:.0f} s"
            )


if __name__ == "__main__":
    main()
