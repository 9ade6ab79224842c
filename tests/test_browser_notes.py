"""Notes in a real headless Chromium, with sign-in on: the welcome screen, the attach button, isolation.

Alice signs in, sees the welcome screen (screenshot: ``INTERVIEW_SCREENSHOTS=DIR`` keeps it), attaches
a ``.md`` file with the chat box's 📎 input, and her next drill asks its questions; Bob, signed in
next, never sees them. Skipped like tests/test_browser.py when Chromium is missing.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chainlit_client import AppServer, serve_seeded
from tests.conftest import REAL_NOTES
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, _require_browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTES = """# Reinforcement learning

## What is a policy gradient?
A policy gradient method adjusts the parameters of a stochastic policy in the direction that increases
expected return, estimated from sampled trajectories (REINFORCE).

## Explain reward shaping?
Reward shaping adds intermediate rewards to guide exploration without changing the optimal policy.
"""
QUESTIONS = ("What is a policy gradient?", "Explain reward shaping?")
PASSWORDS = {"alice": "wonderland", "bob": "builder"}


@pytest.fixture(scope="module")
def app(_seeded_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    _require_browser()
    from bot.history.users import hash_password

    users = ",".join(f"{u}:{hash_password(p, log2_n=4)}" for u, p in PASSWORDS.items())
    workdir = tmp_path_factory.mktemp("browser-notes")
    yield from serve_seeded(_seeded_template, workdir, knowledge=REAL_NOTES.parent, env={"INTERVIEW_USERS": users})


@pytest.fixture(scope="module")
def browser(app: AppServer) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def signed_in(browser: Any, app: AppServer, user: str) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.page_errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda exc: page.page_errors.append(str(exc)))  # type: ignore[attr-defined]
    page.goto(app.url + "/", wait_until="domcontentloaded")
    page.locator("#email").fill(user)
    page.locator("#password").fill(PASSWORDS[user])
    page.locator('button[type="submit"]').click()
    page.locator("#welcome-screen").filter(has_text="Your knowledge base").wait_for()
    return page


def keep(page: Any, tmp_path: Path, name: str) -> None:
    """A screenshot; copied to ``$INTERVIEW_SCREENSHOTS`` when set (to look at what a user sees)."""
    shot = tmp_path / name
    page.screenshot(path=str(shot))
    if os.environ.get("INTERVIEW_SCREENSHOTS"):
        shutil.copy(shot, Path(os.environ["INTERVIEW_SCREENSHOTS"]) / name)


def assistant(page: Any) -> Any:
    return page.locator('[data-step-type="assistant_message"]')


def attach(page: Any, path: Path) -> None:
    """Attach a file with the chat box's 📎 input and wait until the upload has registered (the send
    button stays disabled until then). Right after the welcome screen renders, the composer may not have
    wired its input yet (seen in CI: the file was dropped): once, after 20 s without it, attach again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.locator("#chat-input").wait_for()
    for attempt in range(2):
        page.locator('input[type="file"]').first.set_input_files(str(path))
        try:
            page.locator("#attachments").wait_for(timeout=20_000 if attempt == 0 else 60_000)
            return
        except PlaywrightTimeout:
            if attempt:
                raise


def send(page: Any, text: str) -> None:
    """Type and send once the chat box can send (the socket is connected)."""
    from playwright.sync_api import expect

    box = page.locator("#chat-input")
    box.click()
    box.fill(text)
    expect(page.locator("#chat-submit")).to_be_enabled()
    page.locator("#chat-submit").click()
    page.locator("[data-step-type=user_message]").filter(has_text=text).last.wait_for()


def test_attach_notes_then_drill_them_and_another_user_never_sees_them(
    browser: Any, app: AppServer, tmp_path: Path
) -> None:
    alice = signed_in(browser, app, "alice")
    welcome = alice.locator("#welcome-screen")
    assert "Interview Coach" in (alice.title() or "") or "Interview Coach" in welcome.inner_text()
    assert re.search(r"\d+ questions from 1 notes file", welcome.inner_text())
    assert alice.locator('[id^="starter-add-notes"]').count() == 1
    keep(alice, tmp_path, "welcome.png")

    notes = tmp_path / "rl-notes.md"
    notes.write_text(NOTES)
    attach(alice, notes)
    send(alice, "my RL notes")
    summary = assistant(alice).filter(has_text="Added 1 notes file").first
    summary.wait_for()
    assert "rl-notes.md" in summary.inner_text() and "2 questions" in summary.inner_text()

    send(alice, "/notes hide-shipped")
    assistant(alice).filter(has_text="draw from 2 questions").first.wait_for()
    send(alice, "/drill 2")
    question = assistant(alice).filter(has_text="Question 1 of 2").first
    question.wait_for()
    assert any(q in question.inner_text() for q in QUESTIONS), question.inner_text()
    keep(alice, tmp_path, "drill-from-upload.png")
    assert alice.page_errors == [], alice.page_errors  # type: ignore[attr-defined]

    bob = signed_in(browser, app, "bob")
    assert "rl-notes.md" not in bob.locator("#welcome-screen").inner_text()
    send(bob, "/notes hide-shipped")  # without the shared notes, bob has nothing: alice's stay hers
    assistant(bob).filter(has_text="draw from 0 questions").first.wait_for()
    send(bob, "/drill 2")
    assistant(bob).filter(has_text="No questions found in your notes").first.wait_for()
    send(bob, "/notes show-shipped")
    assistant(bob).filter(has_text="shown again").first.wait_for()
    send(bob, "/drill 50")
    assistant(bob).filter(has_text="Question 1 of 50").first.wait_for()
    text = " ".join(assistant(bob).all_inner_texts())
    assert not any(q in text for q in QUESTIONS)
    assert bob.page_errors == [], bob.page_errors  # type: ignore[attr-defined]
