"""``interview db``: the history database's schema revision and its upgrade."""

from __future__ import annotations

import click

from bot.settings import get_settings

__all__ = ["db"]


@click.group()
def db() -> None:
    """The history database's schema (the app and the CLI also upgrade it whenever they open it)."""


@db.command(name="upgrade")
def db_upgrade() -> None:
    """Bring the history database to the newest schema; one from an older release keeps its rows."""
    from sqlalchemy.engine import make_url

    from bot.history.migrate import SchemaTooNew, upgrade_database

    url = get_settings().history_url
    try:
        before, after = upgrade_database(url)
    except SchemaTooNew as exc:
        raise click.ClickException(str(exc)) from exc
    change = "already at" if before == after else f"upgraded from {before or 'no'} revision to"
    click.echo(f"{make_url(url).render_as_string(hide_password=True)}: {change} revision {after} (the newest)")


@db.command(name="current")
def db_current() -> None:
    """Show the history database's schema revision, and the newest this version knows."""
    from sqlalchemy.engine import make_url

    from bot.history.migrate import database_revision, head_revision

    url = get_settings().history_url
    revision, head = database_revision(url), head_revision()
    state = "the newest" if revision == head else f"the newest is {head}: `interview db upgrade`"
    click.echo(f"{make_url(url).render_as_string(hide_password=True)}: revision {revision or 'none'} ({state})")
