"""``interview stats``, ``export`` and ``hash-password``: the practice history and its users."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from bot.adapters.commands.common import NOW_OPTION, BadInput, history_user, known_cards, parse_now
from bot.settings import Settings, get_settings

__all__ = ["export", "hash_password_command", "stats"]


def _compute_stats(settings: Settings, user: str, history: Any, now: Any, cards: list[Any]) -> Any:
    from datetime import datetime

    from bot.history.progress import stats_with_settings

    return stats_with_settings(history, user, cards, settings, now, tz=datetime.now().astimezone().tzinfo or now.tzinfo)


@click.command()
@click.option("--user", "user_name", help="Whose progress (default: the only or the local user).")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as one JSON object.")
@NOW_OPTION
def stats(user_name: str | None, as_json: bool, now_iso: str | None) -> None:
    """Progress: readiness per topic, answers and scores per day, streak, weakest cards, leeches."""
    from bot.history.repository import History

    settings = get_settings()
    user = history_user(settings, user_name)
    with History.from_settings(settings) as history:
        result = _compute_stats(settings, user, history, parse_now(now_iso), known_cards(settings))
    if as_json:
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False))
        return
    from rich.console import Console

    from bot.history.progress import print_stats

    print_stats(result, Console(width=120, highlight=False))


@click.command()
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "anki"]), required=True, help="What to write.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Output file (md/csv default: stdout).")
@click.option("--user", "user_name", help="Whose history (default: the only or the local user).")
@NOW_OPTION
def export(fmt: str, output: str | None, user_name: str | None, now_iso: str | None) -> None:
    """Export your history: a Markdown report, a CSV of every attempt, or an Anki deck of weak cards."""
    from bot.history.export import export_anki, export_csv, export_markdown, weak_cards
    from bot.history.repository import History

    settings = get_settings()
    user = history_user(settings, user_name)
    now = parse_now(now_iso)
    with History.from_settings(settings) as history:
        uid = history.user_id(user)
        attempts = history.attempts(uid) if uid is not None else []
        sessions = history.sessions(uid) if uid is not None else []
        cards = known_cards(settings) if fmt in ("md", "anki") else []
        result = _compute_stats(settings, user, history, now, cards) if fmt in ("md", "anki") else None
    if fmt == "anki":
        assert result is not None
        chosen = weak_cards(result, cards)
        if not chosen:
            click.echo("no weak cards yet: nothing to export", err=True)
            return
        path = Path(output or f"interview-{user}-weak-cards.apkg")
        leeches = frozenset(leech.card_id for leech in result.leeches)
        n = export_anki(chosen, path, user=user, now=now, leeches=leeches)
        click.echo(f"wrote {n} weak card(s) to {path}", err=True)
        return
    if fmt == "md":
        assert result is not None
        report = export_markdown(result, sessions, attempts)
        if output:
            Path(output).write_text(report, encoding="utf-8")
            click.echo(f"wrote the report ({len(attempts)} attempts) to {output}", err=True)
        else:
            click.echo(report, nl=False)
        return
    if output:
        with open(output, "w", encoding="utf-8", newline="") as handle:
            n = export_csv(attempts, handle, user=user)
        click.echo(f"wrote {n} attempt(s) to {output}", err=True)
    else:
        export_csv(attempts, sys.stdout, user=user)


@click.command(name="hash-password")
@click.option("--user", "user_name", help="Print NAME:HASH, ready to paste into INTERVIEW_USERS.")
def hash_password_command(user_name: str | None) -> None:
    """Hash a password for INTERVIEW_USERS (prompts twice, or reads one line from standard input)."""
    from bot.history.users import hash_password, parse_users

    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise BadInput("empty password")
    hashed = hash_password(password)
    if user_name is None:
        click.echo(hashed)
        return
    try:
        parse_users(f"{user_name}:{hashed}")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--user") from exc
    click.echo(f"{user_name}:{hashed}")
