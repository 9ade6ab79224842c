"""Store benchmarks (printed figures, not timed tests).

1. Cold ingest of the shipped notes: a fresh process and a fresh data dir, model load included.
2. Query latency over 10,000 synthetic cards: ``store.search`` end to end (embed the query,
   HNSW query, decode cards), p50/p95 over 300 queries after 20 warm-up queries.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTES = ROOT / "knowledge" / "ml-interview-notes.txt"


def cold_ingest() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "INTERVIEW_DATA_DIR": tmp, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "bot", "ingest", str(NOTES), "--json"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        wall = time.perf_counter() - started
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        print(
            f"cold ingest (shipped notes, {summary['cards']} cards): ingest {summary['seconds']:.2f} s "
            f"(model load + parse + embed + write), whole process {wall:.2f} s   target <= 10 s"
        )


def synthetic_cards(n: int, rng: random.Random) -> list[object]:
    from bot.knowledge.notes import parse_file

    base = parse_file(NOTES, "notes")
    words = " ".join(c.answer for c in base if c.answer).split()
    from bot.knowledge.cards import Card, Source

    cards = []
    for i in range(n):
        src = base[i % len(base)]
        answer = " ".join(rng.choice(words) for _ in range(rng.randint(12, 40)))
        cards.append(
            Card(
                id=f"syn{i:05d}",
                question=f"{src.question} ({i})",
                display_question=f"{src.display_question} ({i})",
                answer=answer,
                topic=src.topic,
                source=Source(path="synthetic.txt", line_start=i + 1, line_end=i + 1),
            )
        )
    return cards


def query_latency(n_cards: int = 10_000) -> None:
    from bot.retrieval.embeddings import LocalEmbedder
    from bot.retrieval.store import open_store
    from bot.settings import Settings

    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        embedder = LocalEmbedder(settings)
        store = open_store(settings, embedder)
        cards = synthetic_cards(n_cards, rng)
        started = time.perf_counter()
        store.sync({"synthetic.txt": (str(Path(tmp) / "synthetic.txt"), cards)})  # type: ignore[dict-item]
        build = time.perf_counter() - started
        print(f"index build: {store.count()} synthetic cards embedded and written in {build:.1f} s")
        queries = [
            "why does the gradient vanish in deep networks",
            "difference between bagging and a single decision tree",
            "how does self attention weigh tokens",
            "what is tf-idf used for",
            "how to prevent overfitting with dropout",
            "what do the gates of an lstm do",
        ]
        for q in queries * 4:
            store.search(q, k=5)
        times = []
        for i in range(300):
            q = queries[i % len(queries)] + f" {rng.choice(['please', 'exactly', 'briefly', ''])}"
            t0 = time.perf_counter()
            store.search(q, k=5)
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        p50 = statistics.median(times)
        p95 = times[int(len(times) * 0.95) - 1]
        print(
            f"query over {n_cards} cards (embed + search + decode, k=5): p50 {p50:.1f} ms, p95 {p95:.1f} ms"
            "   target p95 <= 20 ms"
        )


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    sys.path.insert(0, str(ROOT))
    cold_ingest()
    query_latency()
