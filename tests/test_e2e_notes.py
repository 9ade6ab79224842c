"""Each user's own notes through the real app (socket.io, password sign-in on): Alice attaches notes
and drills them; Bob never gets a question from them nor sees them among the related passages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chainlit_client import AppServer, ChainlitClient, serve_seeded
from tests.conftest import REAL_NOTES

pytestmark = pytest.mark.slow

NOTES = """# Reinforcement learning

## What is a policy gradient?
A policy gradient method adjusts the parameters of a stochastic policy in the direction that increases
expected return, estimated from sampled trajectories (REINFORCE). Gradient descent on the loss of a neural
network trained with backpropagation and a learning rate.

## What is reward shaping?
Reward shaping adds intermediate rewards to guide exploration without changing the optimal policy.
"""
QUESTIONS = ("What is a policy gradient?", "What is reward shaping?")
PASSWORDS = {"alice": "wonderland", "bob": "builder"}


@pytest.fixture(scope="module")
def app(_seeded_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    from bot.history.users import hash_password

    users = ",".join(f"{u}:{hash_password(p, log2_n=4)}" for u, p in PASSWORDS.items())
    workdir = tmp_path_factory.mktemp("e2e-notes")
    yield from serve_seeded(_seeded_template, workdir, knowledge=REAL_NOTES.parent, env={"INTERVIEW_USERS": users})


async def signed_in(app: AppServer, user: str) -> ChainlitClient:
    chat = ChainlitClient(app.url)
    await chat.sign_in(user, PASSWORDS[user])
    return await chat.connect()


async def test_uploaded_notes_stay_with_their_user(app: AppServer) -> None:
    alice = await signed_in(app, "alice")
    try:
        await alice.send("", files={"rl.md": NOTES.encode()})
        summary = await alice.wait_for("Added 1 notes file")
        assert "rl.md" in summary.output and "2 questions — 2 new" in summary.output
        await alice.send("/notes hide-shipped")
        await alice.wait_for("draw from 2 questions")
        await alice.send("/drill 2")
        question = await alice.wait_for("Question 1 of 2")
        assert any(q in question.output for q in QUESTIONS)
        await alice.send("policy gradients follow the gradient of expected return")
        retrieval = await alice.wait_for("reference:", type="retrieval")
        assert "uploads/alice/rl.md" in retrieval.output
        await alice.send("/notes show-shipped")  # her notes next to the shared ones, for Bob's passages below
        await alice.wait_for("shown again")
        assert not alice.errors, alice.errors
    finally:
        await alice.close()

    bob = await signed_in(app, "bob")
    try:
        await bob.send("/notes")
        listing = await bob.wait_for("Your notes")
        assert "rl.md" not in listing.output
        await bob.send("/notes hide-shipped")
        await bob.wait_for("draw from 0 questions")
        await bob.send("/notes show-shipped")
        await bob.wait_for("shown again")
        await bob.send("/drill 3")
        for n in (1, 2, 3):
            question = await bob.wait_for(f"Question {n} of 3")
            assert not any(q in question.output for q in QUESTIONS)
            mark = bob.mark()
            # words from alice's notes: they would pull her cards into the passages if they were visible
            await bob.send("A policy gradient with reward shaping: gradient descent, backpropagation, learning rate.")
            retrieval = await bob.wait_for("reference:", type="retrieval", after=mark)
            assert "uploads/" not in retrieval.output and not any(q in retrieval.output for q in QUESTIONS)
        assert not bob.errors, bob.errors
    finally:
        await bob.close()
