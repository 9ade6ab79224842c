"""The real app in a real headless Chromium (Playwright, Debian's /usr/bin/chromium; no browser download).

Starts `interview web` on a free loopback port (offline grader, the notes pre-ingested), opens the
page, starts a session from a starter, answers in the chat box, clicks buttons, sees the grade, and
checks that HTML in an answer is shown as text: no element built from it, no alert dialog.

Skipped when /usr/bin/chromium is missing, unless INTERVIEW_REQUIRE_BROWSER=1 (CI), where that fails.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chainlit_client import AppServer, serve_seeded
from tests.conftest import REAL_NOTES

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
XSS = "<img src=x onerror=alert(1)><b>bold</b>"
ANSWER = "Dropout randomly drops neurons during training so the network cannot co-adapt; it reduces overfitting."
TIMEOUT_MS = 60_000


def _require_browser() -> None:
    required = os.environ.get("INTERVIEW_REQUIRE_BROWSER") == "1"
    problem = None
    if not CHROMIUM.exists():
        problem = f"{CHROMIUM} is missing (apt-get install -y chromium; .ci/browser.sh does it in CI)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError as exc:
            problem = f"playwright is not importable: {exc}"
    if problem:
        if required:
            pytest.fail(f"INTERVIEW_REQUIRE_BROWSER=1 but {problem}")
        pytest.skip(f"browser tests skipped: {problem}")


@pytest.fixture(scope="module")
def app(_seeded_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    _require_browser()
    yield from serve_seeded(_seeded_template, tmp_path_factory.mktemp("browser"), knowledge=REAL_NOTES.parent)


@pytest.fixture(scope="module")
def browser(app: AppServer) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any, app: AppServer) -> Iterator[Any]:
    """A fresh page (own context, so its own Chainlit session) with dialogs and page errors recorded."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    pg.dialogs = []  # type: ignore[attr-defined]
    pg.page_errors = []  # type: ignore[attr-defined]

    def on_dialog(dialog: Any) -> None:
        pg.dialogs.append(f"{dialog.type}: {dialog.message}")  # type: ignore[attr-defined]
        dialog.dismiss()

    pg.on("dialog", on_dialog)
    pg.on("pageerror", lambda exc: pg.page_errors.append(str(exc)))  # type: ignore[attr-defined]
    pg.goto(app.url + "/", wait_until="domcontentloaded")
    try:
        yield pg
    finally:
        context.close()


def _assistant(page: Any) -> Any:
    return page.locator('[data-step-type="assistant_message"]')


def _send(page: Any, text: str) -> None:
    box = page.locator("#chat-input")
    box.click()
    box.fill(text)
    page.keyboard.press("Enter")


def _start_drill(page: Any) -> Any:
    """Click the "Quick drill" starter; return the locator of the first question."""
    page.locator('[id^="starter-quick-drill"]').first.click()  # the id is built from the label
    question = _assistant(page).filter(has_text="Question 1 of 5")
    question.first.wait_for()
    return question.first


def test_starter_answer_grade_and_buttons_in_chromium(page: Any, app: AppServer) -> None:
    q1 = _start_drill(page)
    assert _assistant(page).filter(has_text=re.compile(r"Grading: offline grader")).count() == 1
    for label in ("💡 Hint", "Skip", "Reveal reference", "End session"):
        assert q1.get_by_role("button", name=label, exact=True).count() == 1, f"no {label!r} button on the question"

    _send(page, ANSWER)
    page.locator("[data-step-type=user_message]").filter(has_text="Dropout randomly drops neurons").first.wait_for()
    grade = _assistant(page).filter(has_text=re.compile(r"Score: \d+(\.\d+)?/10|Ungraded")).first
    grade.wait_for()
    assert grade.get_by_role("button", name="I think I was right", exact=True).count() == 1

    q2 = _assistant(page).filter(has_text="Question 2 of 5").first
    q2.wait_for()
    q2.get_by_role("button", name="💡 Hint", exact=True).click()
    _assistant(page).filter(has_text=re.compile(r"^\s*💡 Hint")).first.wait_for()

    q2_skip = _assistant(page).filter(has_text="Question 2 of 5").first.get_by_role("button", name="Skip", exact=True)
    q2_skip.click()
    _assistant(page).filter(has_text="Question 3 of 5").first.wait_for()

    assert page.dialogs == [], page.dialogs  # type: ignore[attr-defined]
    assert page.page_errors == [], page.page_errors  # type: ignore[attr-defined]


def test_html_in_an_answer_is_shown_as_text(page: Any, app: AppServer) -> None:
    _start_drill(page)
    images_before = page.locator('img[src="x"]').count()
    _send(page, XSS)
    mine = page.locator("[data-step-type=user_message]").filter(has_text="onerror=alert(1)").first
    mine.wait_for()
    assert "<img src=x onerror=alert(1)>" in mine.inner_text()
    assert "<b>bold</b>" in mine.inner_text()
    _assistant(page).filter(has_text=re.compile(r"Score: \d+(\.\d+)?/10|Ungraded")).first.wait_for()
    _assistant(page).filter(has_text="Question 2 of 5").first.wait_for()
    page.wait_for_timeout(500)  # an onerror handler would have fired by now

    assert page.locator('img[src="x"]').count() == images_before == 0
    bolds = page.locator("b, strong").filter(has_text=re.compile(r"^bold$"))
    assert bolds.count() == 0, "the <b> from the answer was rendered as bold"
    assert page.dialogs == [], f"an alert ran: {page.dialogs}"  # type: ignore[attr-defined]
    assert page.page_errors == [], page.page_errors  # type: ignore[attr-defined]


def test_edit_a_key_point_and_see_the_new_grade(page: Any, app: AppServer) -> None:
    """A graded answer offers "Edit key points": the points come back in chat, an edited point is sent,
    and the same answer is graded again against it."""
    _start_drill(page)
    graded = re.compile(r"Score: \d+(\.\d+)?/10|Ungraded")
    button = None
    for n in range(1, 6):  # a question the notes don't answer has no key points: answer the next one
        _send(page, ANSWER)
        grade = _assistant(page).filter(has_text=graded).nth(n - 1)
        grade.wait_for()
        grade.get_by_role("button", name="I think I was right", exact=True).wait_for()
        edit = grade.get_by_role("button", name="Edit key points", exact=True)
        if edit.count() == 1:
            button = edit
            break
        _assistant(page).filter(has_text=f"Question {n + 1} of 5").first.wait_for()
    assert button is not None, "no graded answer offered to edit its key points"
    button.click()
    _assistant(page).filter(has_text="Key points for").first.wait_for()
    _send(page, "core | dropout | Dropout randomly drops neurons during training so the network cannot co-adapt.")
    _assistant(page).filter(has_text="Key points saved").first.wait_for()
    again = _assistant(page).filter(has_text="With your key points:").first
    again.wait_for()
    assert graded.search(again.inner_text())
    assert page.dialogs == [], page.dialogs  # type: ignore[attr-defined]
    assert page.page_errors == [], page.page_errors  # type: ignore[attr-defined]
