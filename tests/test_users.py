"""Users from configuration (bot/history/users.py) and ``interview hash-password``."""

from __future__ import annotations

import base64
import hashlib

import pytest
from click.testing import CliRunner

from bot.adapters.cli import cli
from bot.history.users import (
    LOCAL_USER,
    auth_enabled,
    authenticate,
    configured_users,
    hash_password,
    parse_users,
    verify_password,
)
from bot.settings import Settings

FAST = {"log2_n": 4}  # cheap parameters where the cost is not under test


def test_hash_format_roundtrip_and_random_salt() -> None:
    stored = hash_password("s3cret pass")
    scheme, log2_n, r, p, salt, key = stored.split("$")
    assert (scheme, log2_n, r, p) == ("scrypt", "14", "8", "1")
    assert len(salt) == 22 and len(key) == 43  # 16 and 32 bytes, base64url without padding
    assert ":" not in stored and "," not in stored  # safe inside INTERVIEW_USERS
    assert verify_password("s3cret pass", stored)
    assert not verify_password("s3cret pass ", stored) and not verify_password("", stored)
    assert hash_password("s3cret pass") != stored  # a fresh salt every time


def test_known_vector_and_parameters_are_read_from_the_hash() -> None:
    stored = hash_password("pw", salt=b"0123456789abcdef", **FAST)
    assert stored == hash_password("pw", salt=b"0123456789abcdef", **FAST)
    key = hashlib.scrypt(b"pw", salt=b"0123456789abcdef", n=16, r=8, p=1, dklen=32)
    assert stored == "scrypt$4$8$1$MDEyMzQ1Njc4OWFiY2RlZg$" + base64.urlsafe_b64encode(key).decode().rstrip("=")
    assert verify_password("pw", stored)  # verified with n=2**4, not the default


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "plain",
        "bcrypt$4$8$1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAA",
        "scrypt$4$8$1$MDEy$AAAAAAAAAAAAAAAAAAAAAA",  # salt too short
        "scrypt$30$8$1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAA",  # n too large: refused, not computed
        "scrypt$x$8$1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAA",
    ],
)
def test_malformed_hashes_never_verify(bad: str) -> None:
    assert verify_password("pw", bad) is False


def test_empty_password_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        hash_password("")


def test_parse_users() -> None:
    a, b = hash_password("a", **FAST), hash_password("b", **FAST)
    assert parse_users("") == {} and parse_users(" , \n") == {}
    assert parse_users(f"alice:{a}, bob:{b}\n") == {"alice": a, "bob": b}
    assert parse_users(f"alice:{a}\nbob:{b}") == {"alice": a, "bob": b}
    with pytest.raises(ValueError, match="twice"):
        parse_users(f"alice:{a},alice:{b}")
    with pytest.raises(ValueError, match="no ':<hash>'"):
        parse_users("alice")
    with pytest.raises(ValueError, match="malformed"):
        parse_users("alice:scrypt$nope")
    with pytest.raises(ValueError, match="bad user name"):
        parse_users(f"al ice:{a}")


def test_authenticate(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not auth_enabled(Settings()) and authenticate(Settings(), LOCAL_USER, "") is None
    monkeypatch.setenv(
        "INTERVIEW_USERS", f"alice:{hash_password('wonderland', **FAST)},bob:{hash_password('b', **FAST)}"
    )
    settings = Settings()
    assert auth_enabled(settings) and set(configured_users(settings)) == {"alice", "bob"}
    assert authenticate(settings, "alice", "wonderland") == "alice"
    assert authenticate(settings, " alice ", "wonderland") == "alice"
    assert authenticate(settings, "alice", "b") is None  # bob's password
    assert authenticate(settings, "carol", "wonderland") is None
    assert "wonderland" not in repr(settings) and "scrypt$" not in repr(settings)


def test_hash_password_cli_reads_stdin_and_prints_a_usable_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(cli, ["hash-password", "--user", "alice"], input="tea for two\n")
    assert result.exit_code == 0, result.stderr
    entry = result.stdout.strip()
    assert "tea for two" not in result.output
    monkeypatch.setenv("INTERVIEW_USERS", entry)
    assert authenticate(Settings(), "alice", "tea for two") == "alice"
    bare = CliRunner().invoke(cli, ["hash-password"], input="x\n")
    assert bare.exit_code == 0 and verify_password("x", bare.stdout.strip())
    assert CliRunner().invoke(cli, ["hash-password"], input="\n").exit_code == 2
    assert CliRunner().invoke(cli, ["hash-password", "--user", "a b"], input="x\n").exit_code == 2
