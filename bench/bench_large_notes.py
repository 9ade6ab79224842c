"""Large notes (issue 14, defect 8): peak memory and time of `interview cards` and `interview ingest`
on a generated notes file (default 50 MB, ~6,400 questions with 8 KB answers, words drawn from the
shipped notes, astral characters included). Each command runs in a fresh process; its peak RSS
comes from ``resource.getrusage(RUSAGE_CHILDREN)``. Printed figures, not a test.

    python bench/bench_large_notes.py [MEGABYTES] [--no-ingest]
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTES = ROOT / "knowledge" / "ml-interview-notes.txt"
TARGET_MB = 600


def write_notes(path: Path, megabytes: float) -> int:
    rng = random.Random(1)
    words = [w for w in NOTES.read_text(encoding="utf-8").split() if "?" not in w]
    size, n = 0, 0
    with path.open("w", encoding="utf-8") as out:
        while size < megabytes * 1_000_000:
            answer = "\n".join(" ".join(rng.choice(words) for _ in range(150)) for _ in range(8))
            block = f"What is concept number {n} in {rng.choice(words)} 𝐰?\n{answer}\n\n"
            out.write(block)
            size += len(block.encode())
            n += 1
    return n


def run(args: list[str], env: dict[str, str]) -> tuple[float, float, str, str]:
    """Wall seconds, peak RSS (MB) of the child, stdout, last stderr lines."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, env=env, check=True)
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak <= before:
        print("  (peak RSS not above an earlier child's: the figure below is an upper bound)")
    return wall, peak / 1024, proc.stdout, "\n".join(proc.stderr.splitlines()[-4:])


def main() -> None:
    megabytes = float(sys.argv[1]) if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else 50.0
    with tempfile.TemporaryDirectory() as tmp:
        notes = Path(tmp) / "big.md"
        questions = write_notes(notes, megabytes)
        env = {**os.environ, "INTERVIEW_DATA_DIR": str(Path(tmp) / "data"), "ANONYMIZED_TELEMETRY": "False"}
        print(f"notes: {notes.stat().st_size / 1e6:.1f} MB, {questions:,} questions")
        wall, peak, out, _ = run(["cards", str(notes), "--json"], env)
        cards = len(json.loads(out))
        print(f"interview cards:  {wall:7.1f} s, peak RSS {peak:6.0f} MB ({cards:,} cards)   target <= {TARGET_MB} MB")
        if "--no-ingest" in sys.argv:
            return
        wall, peak, out, err = run(["ingest", str(notes), "--json"], env)
        summary = json.loads(out)
        print(
            f"interview ingest: {wall:7.1f} s, peak RSS {peak:6.0f} MB ({summary['cards']:,} cards, "
            f"{summary['cards'] / wall:.1f} cards/s)   target <= {TARGET_MB} MB"
        )
        print(f"  last progress lines:\n{err}")


if __name__ == "__main__":
    main()
