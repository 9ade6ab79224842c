"""The web app's HTTP guard: one ASGI middleware in front of Chainlit's FastAPI app.

* A Content-Security-Policy on every response: scripts, styles, images, fonts and connections from
  this origin only (``img-src 'self' data: blob:``), Chainlit's own inline bootstrap scripts allowed
  by hash, no framing. Nothing the app renders can make the browser contact another host.
* ``POST /login``: wrong passwords are counted per user name and per address
  (:class:`~bot.adapters.auth.LoginThrottle`); over the limit the answer is HTTP 429 with a clear
  message and a ``Retry-After``. Failed sign-ins are logged with the name and address, never the
  password.
* ``POST /logout``: the signed-in user's tokens are revoked (``bot.history.signouts``).
* ``POST /project/action`` naming a session that does not exist: HTTP 404 with a message, where
  Chainlit would fail with a 500.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from bot.adapters.auth import LoginThrottle

__all__ = ["SecurityMiddleware", "content_security_policy", "inline_script_hashes"]

log = logging.getLogger("interview.auth")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE)


def inline_script_hashes(html: str) -> list[str]:
    """CSP source expressions (``'sha256-...'``) for each inline ``<script>`` in ``html``."""
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii") + "'"
        for body in _INLINE_SCRIPT.findall(html)
    ]


def content_security_policy(script_hashes: list[str]) -> str:
    """The policy sent with every response (``'self'`` covers ws:// to this host as well)."""
    directives = {
        "default-src": "'self'",
        "script-src": " ".join(["'self'", *script_hashes]),
        # inline style attributes are how the React UI lays itself out; url() in a style still
        # has to pass img-src and font-src
        "style-src": "'self' 'unsafe-inline'",
        "img-src": "'self' data: blob:",
        "font-src": "'self' data:",
        "media-src": "'self' blob:",
        "connect-src": "'self'",
        "worker-src": "'self' blob:",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{k} {v}" for k, v in directives.items())


async def _read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += bytes(message.get("body", b""))
        if not message.get("more_body"):
            return body


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # like a client that sent everything and waits for the answer
        raise AssertionError("unreachable")  # pragma: no cover

    return receive


async def _json_response(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"detail": detail}).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SecurityMiddleware:
    """See the module docstring. ``session_exists(id)`` and ``sign_out(token)`` come from the app."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        policy: str,
        throttle: LoginThrottle | None = None,
        sign_out: Callable[[str], Awaitable[None]] | None = None,
        session_exists: Callable[[str], bool] | None = None,
    ) -> None:
        self.app = app
        self.policy = policy.encode("ascii")
        self.throttle = throttle
        self.sign_out = sign_out
        self.session_exists = session_exists

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: list[int] = []

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"content-security-policy"]
                headers += [(b"content-security-policy", self.policy), (b"x-content-type-options", b"nosniff")]
                message = {**message, "headers": headers}
            await send(message)

        path, method = scope.get("path", ""), scope.get("method", "")
        if method == "POST" and path.endswith("/login") and self.throttle is not None:
            await self._login(scope, receive, send_with_policy, status)
        elif method == "POST" and path.endswith("/logout") and self.sign_out is not None:
            token = _token(scope)
            await self.app(scope, receive, send_with_policy)
            if token:
                await self.sign_out(token)
        elif method == "POST" and path.endswith("/project/action") and self.session_exists is not None:
            body = await _read_body(receive)
            session_id = _json_field(body, "sessionId")
            if session_id is None or not self.session_exists(session_id):
                detail = "That chat session is not open (it ended or never existed): reload the page."
                await _json_response(send_with_policy, 404, detail, [])
                return
            await self.app(scope, _replay(body), send_with_policy)
        else:
            await self.app(scope, receive, send_with_policy)

    async def _login(self, scope: Scope, receive: Receive, send: Send, status: list[int]) -> None:
        assert self.throttle is not None
        body = await _read_body(receive)
        user = (parse_qs(body.decode("utf-8", "replace")).get("username") or [""])[0][:200]
        address = str((scope.get("client") or ("?", 0))[0])
        wait = await asyncio.to_thread(self.throttle.retry_after, user, address)  # a database read
        if wait > 0:
            log.warning("sign-in refused for %r from %s: too many wrong passwords", user, address)
            minutes = max(1, round(wait / 60))
            await _json_response(
                send,
                429,
                f"Too many wrong passwords for this user or from this address. Try again in about {minutes} minute"
                + ("s." if minutes != 1 else "."),
                [(b"retry-after", str(int(wait) + 1).encode())],
            )
            return
        await self.app(scope, _replay(body), send)
        if status and status[0] == 401:
            log.warning("failed sign-in for %r from %s", user, address)
            await asyncio.to_thread(self.throttle.failed, user, address)
        elif status and status[0] == 200:
            await asyncio.to_thread(self.throttle.succeeded, user)


def _json_field(body: bytes, name: str) -> str | None:
    try:
        value = json.loads(body).get(name)
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _token(scope: Scope) -> str | None:
    """The sign-in token of a request: Chainlit's cookie, else a bearer header."""
    from chainlit.auth import get_token_from_cookies
    from starlette.requests import Request

    request = Request(scope)
    token = get_token_from_cookies(request.cookies)
    if not token:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        token = value if scheme.lower() == "bearer" else None
    return token or None
