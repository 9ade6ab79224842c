"""``interview practice``: a session in the terminal."""

from __future__ import annotations

import click

from bot.adapters.commands.common import history_user
from bot.settings import get_settings

__all__ = ["practice"]


@click.command()
@click.option("--topic", "topics", multiple=True, help="Only this topic (repeatable; a unique part of the name works).")
@click.option("-n", "n", default=10, show_default=True, type=click.IntRange(1, 50), help="How many questions.")
@click.option("--mode", type=click.Choice(["study", "interview"]), default="study", show_default=True)
@click.option("--review", is_flag=True, help="Cards due for review first, then new ones (important first).")
@click.option("--resume", is_flag=True, help="Continue your unfinished session at its next question.")
@click.option("--no-follow-ups", is_flag=True, help="Interview mode without follow-up questions.")
@click.option("--all-in-order", is_flag=True, help="Don't put important questions first.")
@click.option("--user", "user_name", help="Whose history (default: the only or the local user).")
@click.option("--seed", type=int, help="Seed for the question order (reproducible sessions).")
def practice(
    topics: tuple[str, ...],
    n: int,
    mode: str,
    review: bool,
    resume: bool,
    no_follow_ups: bool,
    all_in_order: bool,
    user_name: str | None,
    seed: int | None,
) -> None:
    """Practise in the terminal: the web app's sessions, history and schedule.

    End an answer with an empty line. Commands: /hint /skip /reveal /retry /appeal <why> /next /end.
    Answers can come from a pipe: printf 'first answer\n\n/skip\n' | interview practice -n 2
    """
    import asyncio
    import random

    from bot.adapters.terminal import run_practice
    from bot.knowledge.topics import match_topics
    from bot.practice.coach import Coach
    from bot.practice.session import Mode, SessionConfig

    settings = get_settings()
    user = history_user(settings, user_name)
    coach = Coach.open(settings)
    known = coach.topics(user)
    chosen: list[str] = []
    for wanted in topics:
        match = match_topics(wanted, known)
        if len(match) != 1:
            raise click.BadParameter(
                f"{wanted!r} matches {len(match)} topics; choose from: {', '.join(known)}", param_hint="--topic"
            )
        chosen.append(match[0])
    config = SessionConfig(
        mode=Mode(mode),
        n_questions=n,
        topics=tuple(chosen),
        important_first=not all_in_order,
        follow_ups=not no_follow_ups,
    )
    rng = random.Random(seed) if seed is not None else None
    try:
        session = asyncio.run(run_practice(coach, config, review=review, resume=resume, user=user, rng=rng))
    except KeyboardInterrupt:
        click.echo("stopped: every graded answer so far is saved; `interview practice --resume` continues", err=True)
        click.get_current_context().exit(130)
    finally:
        if coach.history is not None:
            coach.history.close()
    if session is None:
        click.get_current_context().exit(1)  # nothing to ask: run_practice said why
