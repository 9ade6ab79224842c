"""The ``interview`` command line (also ``python -m bot``). An adapter: it only wires the core.

This module is the root group; the commands live in ``bot/adapters/commands/``, one module per
group. A new command or group is one ``cli.add_command`` line below.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from bot.adapters.commands.app import setup, web
from bot.adapters.commands.db import db
from bot.adapters.commands.grading import eval_command, grade
from bot.adapters.commands.history import export, hash_password_command, stats
from bot.adapters.commands.notes import cards, ingest, search
from bot.adapters.commands.practice import practice
from bot.adapters.commands.rubric import rubric

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Mock-interview coach: drills you on questions from your own notes."""


for _command in (
    ingest,
    cards,
    search,
    grade,
    eval_command,
    stats,
    export,
    hash_password_command,
    practice,
    setup,
    web,
    db,
    rubric,
):
    cli.add_command(_command)


def main(argv: Sequence[str] | None = None) -> None:
    cli.main(args=list(argv) if argv is not None else None, prog_name="interview")
