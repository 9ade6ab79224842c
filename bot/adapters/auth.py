"""Web sign-in: throttling of wrong passwords, revocable tokens, the token lifetime.

Chainlit signs a JWT at ``POST /login`` carrying the user's metadata and checks it (``decode_jwt``)
on every HTTP call and socket connect. The app adds two claims to the metadata at sign-in:

* ``key``: an HMAC of the user's stored password hash. A token whose key no longer matches the
  configured hash is dead: the password changed, or the user left ``INTERVIEW_USERS``.
* ``issued``: the sign-in time (epoch seconds, sub-second). A token issued before the user's last
  sign-out (``bot.history.signouts``, in the history database, so it holds across restarts and
  processes) is dead: ``/logout`` signs the user out everywhere.

:func:`install` wraps Chainlit's ``decode_jwt`` with that check and sets the token lifetime
(``INTERVIEW_SESSION_HOURS``). :class:`OpenSockets` closes the sockets a dead token opened (at
``/logout`` here, within ``SWEEP_S`` for any other revocation). :class:`LoginThrottle` counts wrong
passwords per user name and per address; ``bot.adapters.security`` refuses sign-ins over the limit
with HTTP 429.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from bot.history.users import configured_users

if TYPE_CHECKING:
    from bot.history.signouts import SignOuts
    from bot.settings import Settings

__all__ = [
    "FailureStore",
    "LoginThrottle",
    "MemoryFailures",
    "OpenSockets",
    "TokenCheck",
    "install",
    "sign_in_metadata",
    "token_key",
    "token_user",
]

log = logging.getLogger("interview.auth")


def _secret() -> bytes:
    return os.environ.get("CHAINLIT_AUTH_SECRET", "").encode("utf-8")


def token_key(stored_hash: str) -> str:
    """What a token carries to stay bound to this password hash (an HMAC, not the hash)."""
    return hmac.new(_secret(), stored_hash.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def sign_in_metadata(settings: Settings, name: str) -> dict[str, Any]:
    """The metadata Chainlit puts in a new token for ``name`` (a configured user)."""
    return {"provider": "password", "key": token_key(configured_users(settings)[name]), "issued": time.time()}


class TokenCheck:
    """Why a decoded token is no longer valid (None: it is)."""

    def __init__(self, settings: Settings, sign_outs: SignOuts | None) -> None:
        self.settings = settings
        self.sign_outs = sign_outs
        self.decode: Callable[[str], Any] | None = None  # Chainlit's decode_jwt with this check (install)

    def problem(self, identifier: str, metadata: dict[str, Any]) -> str | None:
        stored = configured_users(self.settings).get(identifier)
        if stored is None:
            return "the user is no longer configured"
        key = str(metadata.get("key", ""))
        if not hmac.compare_digest(key, token_key(stored)):
            return "the password changed since sign-in"
        issued = metadata.get("issued")
        if not isinstance(issued, int | float):
            return "the token has no sign-in time"
        not_before = self.sign_outs.not_before(identifier) if self.sign_outs is not None else None
        if not_before is not None and issued < not_before:
            return "the user signed out"
        return None


class FailureStore(Protocol):
    """Where the throttle keeps wrong-password times (epoch seconds) per key."""

    def add(self, keys: Sequence[str], at: float, *, forget_before: float) -> None:
        """One failure at ``at`` under each key; failures before ``forget_before`` may be dropped."""
        ...

    def since(self, key: str, at: float) -> list[float]:
        """The failure times under ``key`` from ``at`` on, oldest first."""
        ...

    def clear(self, key: str) -> None: ...


class MemoryFailures:
    """A :class:`FailureStore` in this process (tests, and apps without a shared history)."""

    def __init__(self) -> None:
        self._times: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def add(self, keys: Sequence[str], at: float, *, forget_before: float) -> None:
        with self._lock:
            for key in keys:
                self._times[key] = [t for t in self._times.get(key, []) if t >= forget_before] + [at]

    def since(self, key: str, at: float) -> list[float]:
        with self._lock:
            return sorted(t for t in self._times.get(key, []) if t >= at)

    def clear(self, key: str) -> None:
        with self._lock:
            self._times.pop(key, None)


class LoginThrottle:
    """Wrong passwords per user name and per address in a sliding window; over the limit = locked.

    The counts live in ``store``: the history database in the web app
    (:class:`~bot.history.signins.FailedSignIns`), so every process on it counts together and a
    restart does not reset them; in memory by default."""

    def __init__(
        self,
        attempts: int,
        window_s: float,
        *,
        store: FailureStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self.store: FailureStore = store if store is not None else MemoryFailures()
        self.clock = clock

    @staticmethod
    def _keys(user: str, address: str) -> tuple[str, str]:
        return f"user:{user.strip().lower()}"[:300], f"address:{address}"[:300]

    def retry_after(self, user: str, address: str) -> float:
        """Seconds until a sign-in for ``user`` from ``address`` is accepted again (0 = now)."""
        now = self.clock()
        waits = []
        for key in self._keys(user, address):
            times = self.store.since(key, now - self.window_s)
            if len(times) >= self.attempts:
                # accepted again once all but attempts - 1 of them have left the window
                waits.append(times[len(times) - self.attempts] + self.window_s - now)
        return max(waits, default=0.0)

    def failed(self, user: str, address: str) -> None:
        now = self.clock()
        self.store.add(self._keys(user, address), now, forget_before=now - self.window_s)

    def succeeded(self, user: str) -> None:
        self.store.clear(self._keys(user, "")[0])


SWEEP_S = 5.0
"""How often open sockets are checked against revocations made elsewhere (another process's sign-out,
a password change, a removed user, an expired token)."""


class OpenSockets:
    """The open Chainlit sockets of signed-in users, and their closing when the user's token dies.

    ``/logout`` closes the user's sockets in this process at once (:meth:`close_user`); :meth:`sweep`
    (every ``SWEEP_S`` while the app runs) closes any socket whose token no longer decodes, whatever
    revoked it and in whichever process. A closed socket's reconnect is refused, so the page asks the
    user to sign in again."""

    def __init__(self, decode: Callable[[str], Any], disconnect: Callable[[str], Any]) -> None:
        self.decode = decode  # the checked decode_jwt: raises when the token is dead
        self.disconnect = disconnect  # an async callable: socket id → closed

    @staticmethod
    def _sessions() -> list[Any]:
        from chainlit.session import ws_sessions_sid

        return list(ws_sessions_sid.values())

    async def close_user(self, name: str) -> int:
        """Close every open socket of ``name`` here; returns how many."""
        closing = [s for s in self._sessions() if getattr(s.user, "identifier", None) == name]
        for session in closing:
            await self.disconnect(session.socket_id)
        if closing:
            log.info("closed %d open socket(s) of %r: signed out", len(closing), name)
        return len(closing)

    def _dead(self, sessions: list[Any]) -> list[tuple[Any, str]]:
        """The sessions whose token no longer decodes, with why (blocking: reads the sign-outs)."""
        dead = []
        for session in sessions:
            token = getattr(session, "token", None)
            if not token:
                continue
            try:
                self.decode(token)
            except Exception as exc:
                dead.append((session, str(exc)))
        return dead

    async def sweep(self) -> int:
        """Close the sockets whose token is dead now; returns how many. The tokens are checked off the
        event loop (a check may read the history database)."""
        dead = await asyncio.to_thread(self._dead, self._sessions())
        for session, why in dead:
            log.info("closed a socket of %r: %s", getattr(session.user, "identifier", "?"), why)
            await self.disconnect(session.socket_id)
        return len(dead)

    async def watch(self, every_s: float = SWEEP_S) -> None:
        """Sweep until cancelled (a failed sweep is logged and the next one runs)."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.sweep()
            except Exception:
                log.exception("checking open sockets for revoked tokens failed")


def install(settings: Settings, sign_outs: SignOuts | None) -> TokenCheck:
    """Set Chainlit's token lifetime and make its token decoding apply :class:`TokenCheck`."""
    import chainlit.auth
    import chainlit.auth.jwt
    import chainlit.server
    import jwt
    from chainlit.config import config

    config.project.user_session_timeout = int(settings.session_hours * 3600)
    check = TokenCheck(settings, sign_outs)
    original = chainlit.auth.jwt.decode_jwt

    def decode_checked(token: str) -> Any:
        user = original(token)  # verifies the signature and the expiry
        problem = check.problem(user.identifier, dict(user.metadata or {}))
        if problem is not None:
            log.info("refused a sign-in token of %r: %s", user.identifier, problem)
            raise jwt.InvalidTokenError(problem)
        return user

    # authenticate_user (every HTTP call and socket connect) and POST /auth/jwt call it by these names
    for module in (chainlit.auth, chainlit.server):
        setattr(module, "decode_jwt", decode_checked)  # noqa: B010
    check.decode = decode_checked
    return check


def token_user(token: str) -> str | None:
    """The user a correctly signed token names, expired or not (None: not ours)."""
    import jwt

    try:
        claims = jwt.decode(token, _secret(), algorithms=["HS256"], options={"verify_exp": False})
    except jwt.InvalidTokenError:
        return None
    name = claims.get("identifier")
    return name if isinstance(name, str) else None
