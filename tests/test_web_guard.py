"""The web guard's parts without a server: inert Markdown, sign-in throttling, token checks, the
security middleware on a stand-in app, the history database's file mode."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.auth import LoginThrottle, OpenSockets, TokenCheck, token_key
from bot.adapters.inert import inert
from bot.adapters.security import SecurityMiddleware, content_security_policy, inline_script_hashes

# --------------------------------------------------------------------------------------- inert text


@pytest.mark.parametrize(
    ("text", "absent"),
    [
        ("a ![x](http://h/p.png) b", "](http"),
        ("![r][ref]\n\n[ref]: http://h/p.png", "[ref]:"),
        ("> [ref]: http://h/p.png", "[ref]:"),
        ("[click](http://h/x 'title')", "](http"),
        ("<http://h/x>", "<http"),
        ("see http://h/x.", " http://"),
        ("see www.example.com", " www."),
    ],
)
def test_inert_leaves_no_image_link_or_bare_address(text: str, absent: str) -> None:
    out = inert(text)
    assert absent not in out, out
    assert inert(out) == out  # applying it twice changes nothing


def test_inert_keeps_the_words_and_code() -> None:
    assert inert("[the docs](http://h/d)") == "the docs (`http://h/d`)"
    assert inert("use `x[0](y)` and ```\n![a](b)\n```") == "use `x[0](y)` and ```\n![a](b)\n```"
    assert inert("a plain answer, no markup") == "a plain answer, no markup"


def test_views_render_notes_and_model_text_inert() -> None:
    from bot.adapters.views import grade_md, hint_md, question_md, reference_md
    from bot.grading.base import Grade
    from bot.knowledge.cards import Card, Source

    card = Card(
        id="c1",
        question="What is ![q](http://h/q.png)?",
        display_question="What is ![q](http://h/q.png)?",
        answer="Dropout [docs](http://h/d) ![a](http://h/a.png)",
        topic="T",
        source=Source(path="n.md", line_start=1, line_end=2),
    )
    grade = Grade(score=5.0, grader="llm", feedback="ok ![f](http://h/f.png)", model_answer="[m](http://h/m)")
    for md in (question_md(card, 1, 1), reference_md(card), hint_md("![h](http://h/h.png)", 1), grade_md(grade)):
        assert "](http" not in md and " http://" not in md, md


# ------------------------------------------------------------------------------------------ sign-in


def test_throttle_locks_a_user_and_an_address_after_the_limit_then_the_window_passes() -> None:
    now = [0.0]
    throttle = LoginThrottle(3, 60, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.retry_after("alice", "10.0.0.1") == 0
        throttle.failed("alice", "10.0.0.1")
    assert throttle.retry_after("alice", "10.0.0.1") == 60
    assert throttle.retry_after("ALICE ", "10.0.0.2") == 60  # the user, from anywhere
    assert throttle.retry_after("bob", "10.0.0.1") == 60  # the address, for anyone
    assert throttle.retry_after("bob", "10.0.0.2") == 0
    now[0] = 61
    assert throttle.retry_after("alice", "10.0.0.1") == 0


def test_a_right_password_clears_the_user_count() -> None:
    throttle = LoginThrottle(3, 60, clock=lambda: 0.0)
    throttle.failed("alice", "a")
    throttle.failed("alice", "b")
    throttle.succeeded("alice")
    throttle.failed("alice", "c")
    assert throttle.retry_after("alice", "d") == 0


def test_the_wait_is_until_enough_failures_left_the_window() -> None:
    now = [0.0]
    throttle = LoginThrottle(2, 60, clock=lambda: now[0])
    for t in (0.0, 10.0, 20.0):  # three failures (two processes raced past the limit)
        now[0] = t
        throttle.failed("alice", f"10.0.0.{t:.0f}")
    now[0] = 30.0
    assert throttle.retry_after("alice", "x") == 40.0  # at 70 only the one at 20 is left: 1 < 2


def test_failed_sign_ins_in_the_history_are_counted_by_every_process(tmp_path: Path) -> None:
    from bot.history.signins import FailedSignIns

    url = f"sqlite:///{tmp_path / 'h.sqlite3'}"
    now = [1000.0]
    one, two = FailedSignIns(url), FailedSignIns(url)  # two app processes on one history
    first = LoginThrottle(3, 60, store=one, clock=lambda: now[0])
    second = LoginThrottle(3, 60, store=two, clock=lambda: now[0])
    first.failed("alice", "10.0.0.1")
    second.failed("alice", "10.0.0.2")
    assert first.retry_after("alice", "10.0.0.9") == 0
    first.failed("alice", "10.0.0.3")
    assert second.retry_after("alice", "10.0.0.9") == 60  # locked in the other process too
    assert second.retry_after("bob", "10.0.0.1") == 0
    one.close()
    again = LoginThrottle(3, 60, store=FailedSignIns(url), clock=lambda: now[0])  # after a restart
    assert again.retry_after("ALICE", "x") == 60
    now[0] = 1061.0
    assert again.retry_after("alice", "x") == 0
    again.failed("bob", "10.0.0.4")  # a new failure forgets the ones older than the window
    from sqlalchemy import func, select

    from bot.history.schema import FailedSignInRow

    with two.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(FailedSignInRow)).scalar() == 2  # bob's two keys
    again.succeeded("bob")
    assert two.since("user:bob", 0) == [] and two.since("address:10.0.0.4", 0) == [1061.0]
    two.close()


class _SignOuts:
    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    def not_before(self, name: str) -> float | None:
        return self.at.get(name)


def test_token_check_password_change_removal_and_sign_out(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.history.users import hash_password
    from bot.settings import Settings

    monkeypatch.setenv("CHAINLIT_AUTH_SECRET", "s" * 40)
    old = hash_password("pw", log2_n=4)
    sign_outs = _SignOuts()
    meta = {"key": token_key(old), "issued": 100.0}
    check = TokenCheck(Settings(users=f"alice:{old}"), sign_outs)  # type: ignore[arg-type]
    assert check.problem("alice", meta) is None
    assert check.problem("alice", {"key": token_key(old)}) == "the token has no sign-in time"
    sign_outs.at["alice"] = 100.5
    assert check.problem("alice", meta) == "the user signed out"
    assert check.problem("alice", {**meta, "issued": 101.0}) is None
    changed = TokenCheck(Settings(users=f"alice:{hash_password('new', log2_n=4)}"), sign_outs)  # type: ignore[arg-type]
    assert changed.problem("alice", {**meta, "issued": 101.0}) == "the password changed since sign-in"
    removed = TokenCheck(Settings(users=f"bob:{old}"), sign_outs)  # type: ignore[arg-type]
    assert removed.problem("alice", {**meta, "issued": 101.0}) == "the user is no longer configured"


class _Socket:
    def __init__(self, sid: str, user: str, token: str | None) -> None:
        self.socket_id, self.token = sid, token
        self.user = type("U", (), {"identifier": user})()


async def test_open_sockets_of_a_dead_token_are_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    dead: set[str] = {"t-carol"}

    def decode(token: str) -> str:
        if token in dead:
            raise ValueError("the user signed out")
        return token

    closed: list[str] = []

    async def disconnect(sid: str) -> None:
        closed.append(sid)

    sockets = OpenSockets(decode, disconnect)
    open_now = [
        _Socket("s1", "alice", "t-alice"),
        _Socket("s2", "bob", "t-bob"),
        _Socket("s3", "bob", "t-bob2"),
        _Socket("s4", "carol", "t-carol"),
        _Socket("s5", "local", None),
    ]
    monkeypatch.setattr(OpenSockets, "_sessions", staticmethod(lambda: open_now))
    assert await sockets.close_user("bob") == 2 and closed == ["s2", "s3"]  # /logout here: at once
    assert await sockets.sweep() == 1 and closed[-1] == "s4"  # revoked elsewhere: at the next sweep
    dead.add("t-alice")  # e.g. her password changed, or the token expired
    assert await sockets.sweep() == 2 and closed[-2:] == ["s1", "s4"]  # (s4 is still listed here)
    assert "s5" not in closed  # no token (sign-in off): never closed


def test_sign_outs_are_stored_in_the_history_database(tmp_path: Path) -> None:
    from bot.history.signouts import SignOuts

    url = f"sqlite:///{tmp_path / 'h.sqlite3'}"
    first = SignOuts(url)
    assert first.not_before("alice") is None
    first.sign_out("alice", at=5.0)
    first.sign_out("alice", at=7.0)
    first.close()
    again = SignOuts(url)  # another process, or after a restart
    assert again.not_before("alice") == 7.0 and again.not_before("bob") is None
    again.close()


def test_a_new_history_database_file_is_private(tmp_path: Path) -> None:
    from bot.history.repository import History

    path = tmp_path / "new" / "history.sqlite3"
    with History(f"sqlite:///{path}"):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# ---------------------------------------------------------------------------------------- middleware


def test_the_policy_allows_the_pages_inline_scripts_by_hash_only() -> None:
    html = "<script>const global = globalThis;</script><script src='/a.js'></script>"
    hashes = inline_script_hashes(html)
    assert len(hashes) == 1 and hashes[0].startswith("'sha256-")
    policy = content_security_policy(hashes)
    assert f"script-src 'self' {hashes[0]};" in policy
    assert "img-src 'self' data: blob:" in policy and "frame-ancestors 'none'" in policy


async def _call(
    app: Any, method: str, path: str, body: bytes = b"", client: str = "1.2.3.4"
) -> tuple[int, dict[str, str], bytes]:
    sent: list[dict[str, Any]] = []
    chunks = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": [], "client": (client, 1)}
    await app(scope, receive, send)
    start = sent[0]
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, b"".join(m.get("body", b"") for m in sent[1:])


def _inner(status: int) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        request = await receive()
        body = json.dumps({"got": request.get("body", b"").decode()}).encode()
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/html")]})
        await send({"type": "http.response.body", "body": body})

    return app


async def test_the_middleware_adds_the_policy_and_throttles_login(caplog: pytest.LogCaptureFixture) -> None:
    throttle = LoginThrottle(2, 300)
    guard = SecurityMiddleware(_inner(401), policy="default-src 'self'", throttle=throttle)
    caplog.set_level(logging.WARNING, "interview.auth")
    for _ in range(2):
        status, headers, body = await _call(guard, "POST", "/login", b"username=alice&password=hunter2")
        assert status == 401 and headers["content-security-policy"] == "default-src 'self'"
        assert b"hunter2" in body  # the app behind got the form unchanged
    status, headers, body = await _call(guard, "POST", "/login", b"username=alice&password=hunter3")
    assert status == 429 and int(headers["retry-after"]) > 0
    assert "Too many wrong passwords" in json.loads(body)["detail"]
    assert "failed sign-in for 'alice' from 1.2.3.4" in caplog.text
    assert "hunter" not in caplog.text


async def test_the_middleware_answers_an_unknown_action_session_with_404() -> None:
    guard = SecurityMiddleware(_inner(200), policy="p", session_exists=lambda sid: sid == "known")
    payload = {"sessionId": "gone", "action": {"name": "reveal"}}
    status, _, body = await _call(guard, "POST", "/project/action", json.dumps(payload).encode())
    assert status == 404 and "not open" in json.loads(body)["detail"]
    payload["sessionId"] = "known"
    status, _, body = await _call(guard, "POST", "/project/action", json.dumps(payload).encode())
    assert status == 200 and "known" in json.loads(body)["got"]  # the body reaches the app intact
