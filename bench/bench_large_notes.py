"""Large notes (issue 14, defect 8): peak memory and time of `interview cards` and `interview ingest`
on a generated notes file (default 50 MB, ~6,400 questions with 8 KB answers, words drawn from the
shipped notes, astral characters included). Each command runs in a fresh process; its own peak
RSS comes from ``os.wait4`` (that child's rusage, not the largest of all children). The load
average is printed before and after: on a shared box the seconds depend on it, the memory does
not. Printed figures, not a test.

    python bench/bench_large_notes.py [MEGABYTES] [--no-ingest]
"""

from __future__ import annotations

import json
import os
import random
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


def run(args: list[str], env: dict[str, str], out: Path) -> tuple[float, float, str]:
    """Wall seconds and peak RSS (MB) of one child; its stdout goes to ``out``; its last stderr lines."""
    err = out.with_suffix(".err")
    started = time.perf_counter()
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "bot", *args], stdout=stdout, stderr=stderr, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    lines = err.read_text().splitlines()
    if proc.returncode:
        raise SystemExit(f"interview {args[0]} failed ({proc.returncode}):\n" + "\n".join(lines[-20:]))
    return wall, usage.ru_maxrss / 1024, "\n".join(lines[-4:])


def load_average() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    megabytes = float(sys.argv[1]) if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else 50.0
    with tempfile.TemporaryDirectory() as tmp:
        notes = Path(tmp) / "big.md"
        questions = write_notes(notes, megabytes)
        env = {**os.environ, "INTERVIEW_DATA_DIR": str(Path(tmp) / "data"), "ANONYMIZED_TELEMETRY": "False"}
        print(f"notes: {notes.stat().st_size / 1e6:.1f} MB, {questions:,} questions; {load_average()}")
        out = Path(tmp) / "cards.json"
        wall, peak, _ = run(["cards", str(notes), "--json"], env, out)
        with out.open(encoding="utf-8") as fh:
            cards = len(json.load(fh))
        out.unlink()
        print(f"interview cards:  {wall:7.1f} s, peak RSS {peak:6.0f} MB ({cards:,} cards)   target <= {TARGET_MB} MB")
        print(f"  {load_average()}")
        if "--no-ingest" in sys.argv:
            return
        out = Path(tmp) / "ingest.json"
        wall, peak, err = run(["ingest", str(notes), "--json"], env, out)
        summary = json.loads(out.read_text(encoding="utf-8"))
        print(
            f"interview ingest: {wall:7.1f} s, peak RSS {peak:6.0f} MB ({summary['cards']:,} cards, "
            f"{summary['cards'] / wall:.1f} cards/s)   target <= {TARGET_MB} MB"
        )
        print(f"  {load_average()}; last progress lines:\n{err}")


if __name__ == "__main__":
    main()
