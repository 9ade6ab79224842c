"""Notes → cards recall on the team-written development notes (tests/data/dev_notes/).

* ``mixed.md``: questions in Markdown / Q:–A: / numbered / bold formats with imperative headings:
  share of the listed questions that become a card whose answer starts right.
* ``lecture.md``: lecture-style notes with no question marks: share of the listed concepts that
  become a card whose answer is the text under the concept.

Run: ``python bench/notes_recall.py`` (also used by tests/test_concepts.py).
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEV_NOTES = ROOT / "tests" / "data" / "dev_notes"


def _norm(text: str) -> str:
    return " ".join(text.casefold().replace("*", "").split()).rstrip("?.:")


def recall(notes: Path, expected_key: str) -> tuple[int, int, list[str]]:
    """(found, expected, missing) for one development notes file and its ``.expected.json``."""
    from bot.knowledge.notes import parse_file

    expected = json.loads(notes.with_suffix(".expected.json").read_text(encoding="utf-8"))[expected_key]
    cards = parse_file(notes, notes.name)
    missing = []
    for question, start in expected:
        if not any(_norm(c.question) == _norm(question) and _norm(c.answer).startswith(_norm(start)) for c in cards):
            missing.append(question)
    return len(expected) - len(missing), len(expected), missing


def main() -> None:
    for name, key, what in (
        ("mixed.md", "questions", "questions recalled with the right answer start"),
        ("lecture.md", "concepts", "concepts turned into cards with the text under them"),
    ):
        found, total, missing = recall(DEV_NOTES / name, key)
        print(
            f"{name}: {found}/{total} {what} ({100 * found / total:.0f} %)"
            + (f"; missing: {missing}" if missing else "")
        )


if __name__ == "__main__":
    main()
