"""The running web app against a careful user and an attacker (issue 14): huge answers, unknown
sessions, sign-in throttling and token revocation, the Content-Security-Policy."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.chainlit_client import AppServer, ChainlitClient, serve_seeded
from tests.conftest import REAL_NOTES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app(_seeded_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    yield from serve_seeded(_seeded_template, tmp_path_factory.mktemp("app"), knowledge=REAL_NOTES.parent)


async def test_a_1_1_mb_answer_is_graded_with_the_notice_and_the_socket_stays(app: AppServer) -> None:
    async with ChainlitClient(app.url) as chat:
        await chat.send("/drill 2")
        await chat.wait_for("Question 1 of", actions=("hint",))
        mark = chat.mark()
        await chat.send(("Dropout randomly zeroes activations during training. " * 21_000)[:1_100_000])
        notice = await chat.wait_for("only the first 20,000 are graded", after=mark, timeout=120)
        assert "1,100,000 characters" in notice.output
        await chat.wait_for(re.compile(r"Score: \d+(\.\d+)?/10|Ungraded"), after=mark, timeout=120)
        assert not any(event == "disconnect" for event, _, _ in chat.events), app.output()[-2000:]
        assert chat.sio.connected


async def test_a_message_over_the_configured_limit_is_refused_with_a_message(
    _seeded_template: Path, tmp_path: Path
) -> None:
    served = serve_seeded(
        _seeded_template, tmp_path, knowledge=REAL_NOTES.parent, env={"INTERVIEW_MAX_MESSAGE_MB": "0.5"}
    )
    small = next(served)
    try:
        async with ChainlitClient(small.url) as chat:
            await chat.send("/drill 1")
            await chat.wait_for("Question 1 of")
            mark = chat.mark()
            await chat.send("x" * 700_000)
            refusal = await chat.wait_for("limit is 0.5 MB", after=mark)
            assert "0.7 MB" in refusal.output and "shorten it" in refusal.output
            assert chat.sio.connected
    finally:
        next(served, None)  # runs the generator's cleanup (close() would skip it)


async def test_an_action_for_an_unknown_session_is_a_clear_404(app: AppServer) -> None:
    async with httpx.AsyncClient(base_url=app.url) as http:
        action = {"id": "x", "name": "reveal", "payload": {"card_id": "nope"}, "forId": "y"}
        r = await http.post("/project/action", json={"sessionId": "no-such-session", "action": action})
    assert r.status_code == 404
    assert "not open" in r.json()["detail"]
    assert "Traceback" not in app.output()


async def test_every_response_carries_the_content_security_policy(app: AppServer) -> None:
    async with httpx.AsyncClient(base_url=app.url) as http:
        for path in ("/", "/project/settings?language=en-US", "/favicon", "/nowhere"):
            policy = (await http.get(path)).headers.get("content-security-policy", "")
            assert "img-src 'self' data: blob:" in policy, path
            assert "frame-ancestors 'none'" in policy and "connect-src 'self'" in policy, path
            script_src = re.search(r"script-src ([^;]*)", policy)
            assert script_src is not None and "unsafe-inline" not in script_src.group(1), policy


# ------------------------------------------------------------------------------------------- sign-in


def _users(**passwords: str) -> str:
    from bot.history.users import hash_password

    return ",".join(f"{name}:{hash_password(pw, log2_n=4)}" for name, pw in passwords.items())


def _signed_in_app(template: Path, workdir: Path, users: str) -> AppServer:
    data, cwd = workdir / "data", workdir / "cwd"
    cwd.mkdir(parents=True, exist_ok=True)
    if not data.exists():
        shutil.copytree(template, data)
    env = {
        "INTERVIEW_KNOWLEDGE_DIR": str(REAL_NOTES.parent),
        "INTERVIEW_GRADER": "offline",
        "INTERVIEW_USERS": users,
        "INTERVIEW_SESSION_HOURS": "2",
    }
    return AppServer(data_dir=data, env=env, cwd=cwd).start()


async def _login(http: httpx.AsyncClient, user: str, password: str) -> httpx.Response:
    return await http.post("/login", data={"username": user, "password": password})


async def _token_works(url: str, token: str) -> bool:
    async with httpx.AsyncClient(base_url=url, cookies={"access_token": token}) as http:
        r = await http.get("/user")
    return r.status_code == 200


async def test_sign_in_throttling_logout_removal_and_password_change(_seeded_template: Path, tmp_path: Path) -> None:
    app = _signed_in_app(_seeded_template, tmp_path, _users(alice="alice-pw", bob="bob-pw", carol="carol-pw"))
    try:
        async with httpx.AsyncClient(base_url=app.url) as http:
            ok = await _login(http, "bob", "bob-pw")
            assert ok.status_code == 200, ok.text
            bob = ok.cookies["access_token"]
            claims = jwt.decode(bob, options={"verify_signature": False})
            assert claims["exp"] - claims["iat"] == 2 * 3600  # INTERVIEW_SESSION_HOURS, not 15 days
            carol = (await _login(http, "carol", "carol-pw")).cookies["access_token"]
            assert await _token_works(app.url, bob)

            # logout kills the token (the browser drops the cookie; a copy of it must be dead too)
            # and closes the sockets it opened (another tab of bob's); carol's stays
            bobs_tab, carols_tab = await _open_socket(app.url, bob), await _open_socket(app.url, carol)
            async with httpx.AsyncClient(base_url=app.url, cookies={"access_token": bob}) as bobs:
                assert (await bobs.post("/logout")).status_code == 200
            assert not await _token_works(app.url, bob)
            for _ in range(50):
                if not bobs_tab.connected:
                    break
                await asyncio.sleep(0.1)
            assert not bobs_tab.connected, "a socket outlived its user's sign-out"
            assert carols_tab.connected
            await carols_tab.disconnect()
            assert await _token_works(app.url, carol), "carol did not sign out"
            bob_again = (await _login(http, "bob", "bob-pw")).cookies["access_token"]
            assert await _token_works(app.url, bob_again), "a sign-in after a sign-out works"

            statuses = [(await _login(http, "alice", f"wrong-{i}")).status_code for i in range(30)]
            assert statuses.count(401) == 5 and statuses[5:] == [429] * 25, statuses
            refused = await _login(http, "alice", "alice-pw")
            assert refused.status_code == 429 and "Too many wrong passwords" in refused.json()["detail"]
            assert int(refused.headers["retry-after"]) > 0
        log = app.output()
        assert "failed sign-in for 'alice' from 127.0.0.1" in log
        assert "wrong-3" not in log and "alice-pw" not in log
    finally:
        app.stop()

    # restart: bob's password changed, carol removed: both tokens dead; the sign-out held
    app = _signed_in_app(_seeded_template, tmp_path, _users(alice="alice-pw", bob="new-bob-pw"))
    try:
        assert not await _token_works(app.url, bob_again), "a token outlived a password change"
        assert not await _token_works(app.url, carol), "a token outlived its user's removal"
        assert not await _token_works(app.url, bob), "a signed-out token came back after a restart"
        async with httpx.AsyncClient(base_url=app.url) as http:
            # the wrong passwords are counted in the history: a restart does not unlock alice (or the address)
            assert (await _login(http, "alice", "alice-pw")).status_code == 429
            from bot.history.signins import FailedSignIns

            counts = FailedSignIns(f"sqlite:///{tmp_path / 'data' / 'history.sqlite3'}")
            for key in ("user:alice", "address:127.0.0.1"):  # as if the window had passed
                counts.clear(key)
            counts.close()
            alice = (await _login(http, "alice", "alice-pw")).cookies["access_token"]
        await _socket_with(app.url, alice)  # a live token connects...
        with pytest.raises(Exception, match="failed to connect"):
            await _socket_with(app.url, carol)  # ...a dead one does not
        # signed out by another process on the same history (a second app, the CLI): her open
        # socket here is closed at the next check
        from bot.history.signouts import SignOuts

        alices_tab = await _open_socket(app.url, alice)
        elsewhere = SignOuts(f"sqlite:///{tmp_path / 'data' / 'history.sqlite3'}")
        elsewhere.sign_out("alice")
        elsewhere.close()
        for _ in range(150):
            if not alices_tab.connected:
                break
            await asyncio.sleep(0.1)
        assert not alices_tab.connected, "a socket outlived a sign-out made by another process"
    finally:
        app.cleanup()
    mode = (tmp_path / "data" / "history.sqlite3").stat().st_mode & 0o777
    assert mode == 0o600, oct(mode)


async def _open_socket(url: str, token: str, session_id: str | None = None) -> Any:
    import uuid

    import socketio

    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(
        url,
        socketio_path="/ws/socket.io",
        transports=["websocket"],
        headers={"Cookie": f"access_token={token}"},
        auth={"clientType": "webapp", "sessionId": session_id or uuid.uuid4().hex, "userEnv": "{}"},
        wait_timeout=10,
    )
    return sio


async def _socket_with(url: str, token: str) -> None:
    sio = await _open_socket(url, token, "s")
    await sio.disconnect()
