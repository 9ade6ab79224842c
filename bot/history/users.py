"""Users and passwords from configuration (``INTERVIEW_USERS``); nothing secret is stored elsewhere.

A hash is self-describing: ``scrypt$<log2 n>$<r>$<p>$<salt>$<key>`` (URL-safe base64, no padding),
so the config value ``alice:scrypt$...,bob:scrypt$...`` needs no quoting. Empty = no login: one
local user named ``local``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.settings import Settings

__all__ = [
    "LOCAL_USER",
    "auth_enabled",
    "authenticate",
    "configured_users",
    "hash_password",
    "parse_users",
    "verify_password",
]

LOCAL_USER = "local"
SCHEME = "scrypt"
LOG2_N, R, P = 14, 8, 1  # 16 MiB, ~50 ms: interactive-login parameters
_KEY_BYTES = 32
_MAX_LOG2_N = 20  # refuse hashes that would make verification a memory bomb
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, log2_n: int, r: int, p: int, dklen: int = _KEY_BYTES) -> bytes:
    n = 1 << log2_n
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=256 * n * r + (1 << 20)
    )


def hash_password(password: str, *, salt: bytes | None = None, log2_n: int = LOG2_N, r: int = R, p: int = P) -> str:
    """A salted scrypt hash in the self-describing format above (random salt unless given)."""
    if not password:
        raise ValueError("empty password")
    if not 1 <= log2_n <= _MAX_LOG2_N:
        raise ValueError(f"log2_n must be within 1..{_MAX_LOG2_N}")
    salt = salt if salt is not None else secrets.token_bytes(16)
    key = _scrypt(password, salt, log2_n, r, p)
    return f"{SCHEME}${log2_n}${r}${p}${_b64(salt)}${_b64(key)}"


def _parse_hash(stored: str) -> tuple[int, int, int, bytes, bytes]:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        raise ValueError("not a scrypt$<log2 n>$<r>$<p>$<salt>$<key> hash")
    log2_n, r, p = (int(x) for x in parts[1:4])
    if not (1 <= log2_n <= _MAX_LOG2_N and 1 <= r <= 32 and 1 <= p <= 16):
        raise ValueError("scrypt parameters out of range")
    salt, key = _unb64(parts[4]), _unb64(parts[5])
    if len(salt) < 8 or len(key) < 16:
        raise ValueError("salt or key too short")
    return log2_n, r, p, salt, key


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; compared in constant time. Malformed → False."""
    try:
        log2_n, r, p, salt, key = _parse_hash(stored)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(_scrypt(password, salt, log2_n, r, p, dklen=len(key)), key)


def parse_users(value: str) -> dict[str, str]:
    """``name:hash`` entries separated by commas or newlines → {name: hash}. Bad entries raise."""
    users: dict[str, str] = {}
    for raw in re.split(r"[,\n]", value):
        entry = raw.strip()
        if not entry:
            continue
        name, sep, stored = entry.partition(":")
        name, stored = name.strip(), stored.strip()
        if not sep or not stored:
            raise ValueError(f"INTERVIEW_USERS: entry for {name!r} has no ':<hash>' (see interview hash-password)")
        if not _NAME.match(name):
            raise ValueError(f"INTERVIEW_USERS: bad user name {name!r} (letters, digits, _ . @ -)")
        if name in users:
            raise ValueError(f"INTERVIEW_USERS: user {name!r} is listed twice")
        try:
            _parse_hash(stored)
        except ValueError as exc:
            raise ValueError(f"INTERVIEW_USERS: the hash of {name!r} is malformed: {exc}") from None
        users[name] = stored
    return users


def configured_users(settings: Settings) -> dict[str, str]:
    return parse_users(settings.users.get_secret_value())


def auth_enabled(settings: Settings) -> bool:
    return bool(configured_users(settings))


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A well-formed hash checked for unknown names, so they take as long as known ones."""
    return hash_password("not-a-user", salt=b"interview-coach!")


def authenticate(settings: Settings, username: str, password: str) -> str | None:
    """The user's name when the password is right; None otherwise (and always when auth is off)."""
    users = configured_users(settings)
    name = username.strip()
    stored = users.get(name)
    ok = verify_password(password, stored if stored is not None else _dummy_hash())
    return name if stored is not None and ok else None
