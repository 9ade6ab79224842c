"""Grader benchmarks (printed figures, not timed tests).

* LLM-path overhead: everything but the model call (sanitising, prompt rendering, token budget,
  binding, parsing, validation, scoring), with a fake chat model that answers instantly.
* Median / max prompt tokens at default settings over the shipped notes' cards.
* Offline grader: warm p50/p95 per answer, and 2,000 answers with ``grade_many``.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # appended: a PYTHONPATH checkout (e.g. main, for a before/after) wins
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from bot.grading.base import GradeRequest  # noqa: E402
from bot.knowledge.notes import parse_file  # noqa: E402
from bot.settings import Settings  # noqa: E402

NOTES = ROOT / "knowledge" / "ml-interview-notes.txt"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def requests() -> list[GradeRequest]:
    """One request per answered card, with the card's compiled rubric when this checkout has rubrics
    (so the same script measures main, without them, and a branch with them)."""
    cards = [c for c in parse_file(NOTES, "notes") if c.has_answer]
    with_rubric = "rubric" in GradeRequest.model_fields
    out = []
    for i, card in enumerate(cards):
        extra: dict[str, object] = {}
        if with_rubric:
            from bot.grading.rubric import compile_rubric

            extra["rubric"] = compile_rubric(card)
        out.append(
            GradeRequest(
                question=card.display_question,
                reference=card.answer,
                answer="I think " + " ".join(card.answer.split()[:60]),
                passages=[c.answer for c in cards[i + 1 : i + 4]],
                **extra,  # type: ignore[arg-type]
            )
        )
    print(f"{len(out)} requests, rubric: {'yes' if with_rubric else 'no'}")
    return out


def llm_overhead(reqs: list[GradeRequest]) -> None:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    from bot.grading.budget import TokenCounter
    from bot.grading.llm import LLMGrader

    settings = Settings()
    reply = json.dumps(
        {
            "reasoning": "Covers most points.",
            "key_points": [{"point": f"p{i}", "status": "hit", "evidence": "x"} for i in range(5)],
            "correctness": 3,
            "depth": 1,
            "misconceptions": [],
            "feedback": "Solid answer; mention the mechanism.",
            "model_answer": "A concise answer.",
            "reference_issue": "",
        }
    )
    n = 300
    chat = GenericFakeChatModel(messages=iter([AIMessage(content=reply)] * (n + 50)))
    counter = TokenCounter(settings.tiktoken_dir)
    grader = LLMGrader(chat, model_name="gpt-4o-mini", counter=counter)
    sizes = []
    for r in reqs:
        messages, _, _ = grader.build_messages(r, r.answer)
        sizes.append(counter.count("\n".join(str(m.content) for m in messages)))

    # The fake model's reply marks 5 points: time the path without a rubric (a rubric of another size
    # would be rejected as a mismatch); the prompt sizes above include the rubric block.
    if "rubric" in GradeRequest.model_fields:
        reqs = [r.model_copy(update={"rubric": None}) for r in reqs]

    async def run() -> list[float]:
        for r in reqs[:20]:
            await grader.agrade(r)
        times = []
        for i in range(n):
            t0 = time.perf_counter()
            g = await grader.agrade(reqs[i % len(reqs)])
            times.append((time.perf_counter() - t0) * 1000)
            assert g.graded
        return times

    times = asyncio.run(run())
    print(
        f"LLM-path overhead (fake model, {n} grades): p50 {statistics.median(times):.1f} ms, "
        f"p95 {pct(times, 0.95):.1f} ms   target p95 <= 30 ms"
    )
    print(
        f"prompt tokens at default settings over {len(sizes)} cards: median {statistics.median(sizes):.0f}, "
        f"max {max(sizes)}   target median <= 1200"
    )


def offline(reqs: list[GradeRequest]) -> None:
    try:
        from bot.grading.offline.grader import OfflineGrader
    except ImportError:
        print("offline grader: not available")
        return
    from bot.retrieval.embeddings import LocalEmbedder

    grader = OfflineGrader(LocalEmbedder(Settings()))
    cold = []
    for r in reqs:  # first sight of each reference: key points extracted and embedded
        t0 = time.perf_counter()
        grader.grade(r)
        cold.append((time.perf_counter() - t0) * 1000)
    print(
        f"offline grade, new reference (key points computed): p50 {statistics.median(cold):.1f} ms, "
        f"p95 {pct(cold, 0.95):.1f} ms"
    )
    times = []
    for i in range(300):
        r = reqs[i % len(reqs)]
        t0 = time.perf_counter()
        grader.grade(r.model_copy(update={"answer": r.answer + f" ({i})"}))
        times.append((time.perf_counter() - t0) * 1000)
    print(
        f"offline grade, warm (reference cached): p50 {statistics.median(times):.1f} ms, p95 {pct(times, 0.95):.1f} ms"
        "   target p95 <= 50 ms"
    )
    batch = [
        reqs[i % len(reqs)].model_copy(update={"answer": f"answer number {i} " + reqs[i % len(reqs)].answer[:200]})
        for i in range(2000)
    ]
    t0 = time.perf_counter()
    grades = grader.grade_many(batch)
    print(
        f"offline grade_many: 2000 answers in {time.perf_counter() - t0:.1f} s "
        f"({sum(g.graded for g in grades)} graded)   target <= 30 s"
    )


if __name__ == "__main__":
    reqs = requests()
    llm_overhead(reqs)
    offline(reqs)
