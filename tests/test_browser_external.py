"""External content never loads (issue 14, defect 5): notes, an answer and a model's reply carrying
Markdown images and links to another host, shown in headless Chromium. A counting HTTP server on
another port stands for that host: it must get zero requests, every request the page makes goes to
the app, and no script from that content runs.

Skipped like ``tests/test_browser.py`` when /usr/bin/chromium is missing.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.chainlit_client import AppServer, serve_seeded
from tests.conftest import REAL_NOTES
from tests.fake_openai import FakeOpenAI, Reply, rubric_size
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, _require_browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]


class Probe:
    """An HTTP server that counts every request it gets (the "other host")."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        probe = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                probe.hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def probe() -> Iterator[Probe]:
    p = Probe()
    yield p
    p.close()


def _carrying(probe: Probe, where: str) -> str:
    """Markdown with an image, a reference-style image and links, all to the probe."""
    return (
        f"![{where}]({probe.url(where + '.png')}) and ![r-{where}][ref-{where}] "
        f"see [{where} docs]({probe.url(where + '-link')}) or [js](javascript:alert(1)) "
        f"<img src={probe.url(where + '-html.png')} onerror=alert(2)>\n\n"
        f"[ref-{where}]: {probe.url(where + '-ref.png')}"
    )


@pytest.fixture(scope="module")
def model(probe: Probe) -> Iterator[FakeOpenAI]:
    def respond(req: dict[str, Any]) -> Reply:
        return Reply.json(
            {
                "reasoning": "checked",
                "key_points": [{"point": "drops neurons " + _carrying(probe, "point"), "status": "hit", "evidence": ""}]
                * rubric_size(req, 1),
                "correctness": 3,
                "depth": 1,
                "misconceptions": [],
                "feedback": "Good. " + _carrying(probe, "feedback"),
                "model_answer": "Dropout. " + _carrying(probe, "model"),
                "reference_issue": "",
            }
        )

    with FakeOpenAI() as fake:
        fake.chat.default = respond
        yield fake


@pytest.fixture(scope="module")
def app(
    probe: Probe, model: FakeOpenAI, local_embedder: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppServer]:
    _require_browser()
    from bot.knowledge.ingest import ingest
    from bot.retrieval.store import open_store
    from bot.settings import Settings

    root = tmp_path_factory.mktemp("external")
    knowledge, data, cwd = root / "knowledge", root / "data", root / "cwd"
    knowledge.mkdir()
    cwd.mkdir()
    notes = knowledge / "notes.txt"
    question = f"what is dropout ![q]({probe.url('question.png')}) [q link]({probe.url('question-link')})?"
    notes.write_text(f"{question}\ndropout randomly drops neurons during training. {_carrying(probe, 'note')}\n")
    store = open_store(Settings(data_dir=data), local_embedder)
    ingest([notes], store, knowledge)
    del store
    env = {
        **model.env(),
        "INTERVIEW_KNOWLEDGE_DIR": str(knowledge),
        "INTERVIEW_GRADER": "llm",
        "INTERVIEW_LLM_MODEL": "gpt-4o-mini",
    }
    server = AppServer(data_dir=data, env=env, cwd=cwd)
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server
    server.cleanup()


def test_images_and_links_from_notes_answers_and_models_never_leave_the_app(
    app: AppServer, probe: Probe, model: FakeOpenAI
) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            requests: list[str] = []
            dialogs: list[str] = []
            errors: list[str] = []
            failures: dict[str, str] = {}
            page.on("request", lambda r: requests.append(r.url))
            page.on("requestfailed", lambda r: failures.setdefault(r.url, str(r.failure)))
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(app.url + "/", wait_until="domcontentloaded")

            assistant = page.locator('[data-step-type="assistant_message"]')
            page.locator('[id^="starter-quick-drill"]').first.click()  # one card: "Question 1 of 1"
            assistant.filter(has_text="Question 1 of 1").first.wait_for()
            box = page.locator("#chat-input")
            box.click()
            box.fill("Dropout drops neurons. " + _carrying(probe, "answer"))
            page.keyboard.press("Enter")
            grade = assistant.filter(has_text=re.compile(r"Score: \d+(\.\d+)?/10")).first
            grade.wait_for()
            assistant.filter(has_text="Session report").first.wait_for()
            page.wait_for_timeout(1500)  # time for any image to be fetched and any handler to fire

            shown = grade.inner_text()
            assert "From your notes" in shown and "feedback docs" in shown, shown  # the content is there
            assert "![feedback]" in shown, "the model's image is shown as text"
            # every probe image in the page is in the user's own message, which Chainlit's UI renders
            # as Markdown in the browser before the app sees it: the policy blocks its fetch
            places = page.eval_on_selector_all(
                f"img[src*='127.0.0.1:{probe.port}']",
                "els => els.map(e => e.closest('[data-step-type]')?.getAttribute('data-step-type') || 'page')",
            )
            assert set(places) <= {"user_message"}, places
            links = page.eval_on_selector_all(
                f"a[href*='127.0.0.1:{probe.port}'], a[href^='javascript']",
                "els => els.map(e => e.closest('[data-step-type]')?.getAttribute('data-step-type') || 'page')",
            )
            assert set(links) <= {"user_message"}, links
            assert len(model.requests("chat")) >= 1, "the model graded the answer"
            context.close()
        finally:
            browser.close()
    assert probe.hits == [], f"the other host was contacted: {probe.hits}"
    # the browser may start a request to another host (Chainlit's page links Google Fonts and a
    # CDN stylesheet; the user's own message is Markdown): the policy must stop every one
    others = [u for u in requests if not u.startswith((app.url, "data:", "blob:"))]
    assert others, "nothing tried another host: the test shows nothing"
    unblocked = [u for u in others if failures.get(u) != "csp"]  # Playwright: blocked by the policy
    assert unblocked == [], f"requests left for other hosts: {unblocked} ({failures})"
    assert dialogs == [], f"a script ran: {dialogs}"
    assert errors == [], errors


@pytest.fixture(scope="module")
def small_limit_app(_seeded_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    _require_browser()
    env = {"INTERVIEW_MAX_MESSAGE_MB": "0.2"}
    workdir = tmp_path_factory.mktemp("small-limit")
    yield from serve_seeded(_seeded_template, workdir, knowledge=REAL_NOTES.parent, env=env)


def test_a_message_over_the_limit_is_refused_in_the_chat_and_its_text_stays(small_limit_app: AppServer) -> None:
    from playwright.sync_api import sync_playwright

    text = "Dropout zeroes activations at random. " * 8000  # 304,000 characters, over 0.2 MB
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(small_limit_app.url + "/", wait_until="domcontentloaded")
            assistant = page.locator('[data-step-type="assistant_message"]')
            page.locator('[id^="starter-quick-drill"]').first.click()
            assistant.filter(has_text="Question 1 of 5").first.wait_for()
            box = page.locator("#chat-input")
            box.click()
            box.fill(text)
            page.keyboard.press("Enter")
            refusal = assistant.filter(has_text="the limit is 0.2 MB").first
            refusal.wait_for()
            assert "0.3 MB" in refusal.inner_text() and "shorten it" in refusal.inner_text()
            mine = page.locator("[data-step-type=user_message]").filter(has_text="Dropout zeroes activations").first
            assert len(mine.inner_text()) > 250_000, "the text was not kept in the chat"
            # the connection survived: the next answer is graded
            box.click()
            box.fill("Dropout randomly drops neurons during training to reduce overfitting.")
            page.keyboard.press("Enter")
            assistant.filter(has_text=re.compile(r"Score: \d+(\.\d+)?/10|Ungraded")).first.wait_for()
        finally:
            browser.close()
