"""Notes in the browser: attach files, /notes, each signed-in user's own notes, the welcome screen.

Chainlit handlers run in a real ChainlitContext with a mocked session (tests/test_chainlit_app.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.test_chainlit_app import app, chat, say  # noqa: F401 - app is a fixture

ALICE_NOTES = """# Reinforcement learning

## What is a policy gradient?
A policy gradient method adjusts the parameters of a stochastic policy in the direction that increases
expected return, estimated from sampled trajectories (REINFORCE).

## What is reward shaping?
Reward shaping adds intermediate rewards to guide exploration without changing the optimal policy.
"""
ALICE_QUESTIONS = {"What is a policy gradient?", "What is reward shaping?"}


async def attach(app: Any, tmp_path: Path, files: dict[str, str | bytes], text: str = "") -> None:  # noqa: F811
    """What the chat box sends when files are attached with the 📎 button."""
    import chainlit as cl

    elements = []
    for name, content in files.items():
        path = tmp_path / f"upload-{len(list(tmp_path.iterdir()))}"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        elements.append(cl.File(name=name, path=str(path), mime="text/markdown"))
    await app.on_message(cl.Message(content=text, elements=elements))


def asked_after(sent: Any, mark: int = 0) -> set[str]:
    texts = sent.texts()[mark:]
    return {line.removeprefix("### ") for t in texts for line in t.splitlines() if line.startswith("### ")}


async def test_attach_notes_then_drill_them_and_nobody_else_sees_them(app: Any, tmp_path: Path) -> None:  # noqa: F811
    async with chat("a1", user="alice") as sent:
        await app.start()
        await say(app, "/drill 1")  # the coach has cached alice's cards before the upload
        coach = await app.get_coach()
        shared = len(coach.cards("alice"))
        await attach(app, tmp_path, {"rl.md": ALICE_NOTES})
        summary = sent.texts()[-1]
        assert "Added 1 notes file" in summary and "rl.md" in summary and "2 questions — 2 new" in summary
        assert "Topics:" in summary
        assert len(coach.cards("alice")) == shared + 2  # in the very next drill: the cache was invalidated
        await say(app, "/notes")
        listing = sent.texts()[-1]
        assert "`rl.md` — 2 questions" in listing and "Shipped notes" in listing
        await say(app, "/notes hide-shipped")
        assert "draw from 2 questions" in sent.texts()[-1]
        mark = len(sent.texts())
        await say(app, "/drill 2")
        await say(app, "It follows the gradient of expected return.")
        assert asked_after(sent, mark) == ALICE_QUESTIONS  # both questions of the session are alice's
        retrieval = next(s for s in sent.steps if s.get("name") == "Retrieve reference")
        assert "uploads/alice/rl.md" in retrieval["output"]

    async with chat("b1", user="bob") as sent:
        await app.start()
        bob_cards = coach.cards("bob")
        assert not ALICE_QUESTIONS & {c.display_question for c in bob_cards}
        assert all(not c.source.path.startswith("uploads/") for c in bob_cards)
        await say(app, "/drill 50")
        assert not ALICE_QUESTIONS & asked_after(sent)
        for card in bob_cards[:10]:  # related passages (what the grader reads) never come from alice's notes
            retrieval = await coach.retrieve(card, owners=coach.owners("bob"))
            assert all(not h.card.source.path.startswith("uploads/") for h in retrieval.passages)
        await say(app, "/end")
        await say(app, "/notes remove rl.md")
        assert "no uploaded notes file named" in sent.texts()[-1]
        assert "What is a policy gradient?" not in app.uploads.welcome_md(coach, "bob")


async def test_bad_files_are_refused_and_notes_can_be_removed(app: Any, tmp_path: Path) -> None:  # noqa: F811
    async with chat("c1", user="carol") as sent:
        await app.start()
        coach = await app.get_coach()
        before = coach.store.count()
        await attach(
            app,
            tmp_path,
            {"slides.pptx": b"PK\x03\x04", "broken.pdf": b"%PDF-1.4 \x00\x01", "empty.md": "", "rl.md": ALICE_NOTES},
        )
        summary = sent.texts()[-1]
        assert "Added 1 notes file" in summary and "Not added" in summary
        assert "slides.pptx: not a notes file" in summary and "empty.md: the file is empty" in summary
        assert "broken.pdf: not a readable PDF" in summary
        assert str(tmp_path) not in summary
        assert coach.store.count() == before + 2
        await say(app, "/notes remove rl.md")
        assert sent.texts()[-1] == "Removed `rl.md` and its 2 questions."
        assert coach.store.count() == before
        assert not ALICE_QUESTIONS & {c.display_question for c in coach.cards("carol")}
        await attach(app, tmp_path, {"photo.png": b"\x89PNG"})
        assert "Not added" in sent.texts()[-1] and "Added" not in sent.texts()[-1].split("Not added")[0]
        await say(app, "/notes frobnicate")
        assert "`/notes remove NAME`" in sent.texts()[-1]


async def test_welcome_screen_and_add_notes_starter(app: Any, tmp_path: Path) -> None:  # noqa: F811
    from chainlit.user import User

    coach = await app.get_coach()
    (profile,) = await app.profiles(User(identifier="dave"))
    assert profile.icon == "/public/icon.svg" and profile.default
    text = profile.markdown_description
    n = len(coach.cards("dave"))
    assert f"{n} questions from 1 notes file" in text and "ml-interview-notes.txt" in text
    assert "Topics:" in text and "Add notes" in text and "Quick drill" in text
    starters = await app.starters(User(identifier="dave"))
    assert "/notes add" in [s.message for s in starters]
    root = Path(__file__).resolve().parents[1]
    for name in ("icon.svg", "favicon.svg", "logo_light.svg", "logo_dark.svg"):
        assert (root / "public" / name).read_text().lstrip().startswith("<svg"), name


async def test_the_add_notes_starter_opens_a_file_picker(
    app: Any,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import chainlit as cl

    picked = tmp_path / "picked.md"
    picked.write_text(ALICE_NOTES)
    asks: list[Any] = []

    async def fake_send(self: Any) -> list[Any]:
        asks.append(self)
        return [cl.File(name="rl.md", path=str(picked))] if len(asks) == 1 else []

    monkeypatch.setattr(cl.AskFileMessage, "send", fake_send)
    async with chat("e1", user="erin") as sent:
        await app.start()
        await say(app, "/notes add")
        assert ".md" in str(asks[0].accept) and "Accepted:" in asks[0].content
        assert "Added 1 notes file" in sent.texts()[-1]
        await say(app, "/notes add")  # the picker timed out or was closed
        assert sent.texts()[-1].startswith("No files picked.")


def test_the_upload_summary_counts_generated_questions_and_refusals() -> None:
    from bot.adapters.uploads import summary_md
    from bot.knowledge.ingest import IngestSummary
    from bot.knowledge.library import UploadResult

    summary = IngestSummary(files=2, cards=5, topics={"NLP": 3, "RL": 2}, no_answer=1, added=4, updated=1)
    text = summary_md(
        UploadResult(summary=summary, rejected=["a.png: not a notes file"], names=["x.md", "y.md"], generated=3)
    )
    assert "**Added 2 notes files** (x.md, y.md): 5 questions — 4 new, 1 updated" in text
    assert "3 of them are generated" in text and "Topics: NLP (3), RL (2)." in text
    assert "1 of them have no answer" in text and "- a.png: not a notes file" in text
    assert summary_md(UploadResult(summary=None)).startswith("No files arrived.")
