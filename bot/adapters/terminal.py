"""Terminal adapter: the same session core as the web app, rendered with rich, answers from stdin.

An answer is one or more lines ended by an empty line (or the end of input), so it works both at a
prompt and in a pipe (``printf 'my answer\\n\\n/skip\\n' | interview practice``). A line starting
with ``/`` is a command on its own.
"""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from rich.console import Console
from rich.markdown import Markdown
from rich.panel import Panel
from rich.rule import Rule

from bot.adapters.views import follow_up_md, graded_md, hint_md, question_md, reference_md, schedule_md
from bot.history.users import LOCAL_USER
from bot.practice.coach import Coach
from bot.practice.report import build_report, report_md
from bot.practice.session import (
    AppealRequested,
    Asked,
    Closed,
    Command,
    Feedback,
    Finished,
    FollowUpAsked,
    Graded,
    Grading,
    Hint,
    InterviewSession,
    Mode,
    Notice,
    Reference,
    SessionConfig,
    Skipped,
)

__all__ = ["read_answer", "run_practice"]

PROMPT_HELP = "answer, then an empty line · /hint /skip /reveal /retry /appeal <why> /next /end"


def read_answer(stream: TextIO) -> str | None:
    """Lines up to an empty line (or a single ``/command`` line). None at the end of input."""
    lines: list[str] = []
    while True:
        line = stream.readline()
        if not line:  # end of input
            return "\n".join(lines) if lines else None
        text = line.rstrip("\r\n")
        if not lines and text.strip().startswith("/"):
            return text.strip()
        if not text.strip():
            if lines:
                return "\n".join(lines)
            continue  # leading blank lines
        lines.append(text)


class TerminalRenderer:
    def __init__(self, console: Console, session: InterviewSession, clock: Callable[[], datetime]) -> None:
        self.console = console
        self.session = session
        self.clock = clock
        self._streaming = False

    def md(self, text: str) -> None:
        self.console.print(Markdown(text))

    async def render(self, events: AsyncIterator[Any]) -> None:
        async for event in events:
            self.show(event)

    def show(self, event: Any) -> None:
        c = self.console
        if isinstance(event, Asked):
            c.print(Rule())
            self.md(
                question_md(
                    event.card, event.number, event.total, retry=event.retry, resumed=event.resumed, leech=event.leech
                )
            )
            c.print(f"[dim]{PROMPT_HELP}[/dim]")
        elif isinstance(event, FollowUpAsked):
            self.md(follow_up_md(event.text, event.number, event.of))
        elif isinstance(event, Grading):
            c.print("[dim]grading…[/dim]")
        elif isinstance(event, Feedback):
            if self.session.config.mode is Mode.STUDY:
                c.print(event.text, end="", markup=False, highlight=False)
                self._streaming = True
        elif isinstance(event, Graded):
            if self._streaming:
                c.print()
                self._streaming = False
            if event.follow_up_next:
                return
            body = graded_md(
                event.grade,
                event.card,
                show_reference=event.show_reference,
                previous=event.previous,
                kind=event.attempt.kind.value,
            )
            c.print(Panel(Markdown(body), title="grade", expand=True))
        elif isinstance(event, Closed):
            line = schedule_md(event.receipt, self.clock())
            if line:
                self.md(line)
        elif isinstance(event, Hint):
            self.md(hint_md(event.point, event.used))
        elif isinstance(event, Reference):
            self.md(reference_md(event.card))
        elif isinstance(event, Skipped):
            c.print(f"[yellow]Skipped:[/yellow] {event.card.display_question}", markup=True, highlight=False)
        elif isinstance(event, AppealRequested):
            c.print("Why do you think you were right? Your next answer is your argument.")
        elif isinstance(event, Notice):
            c.print(event.text, style="yellow" if event.level == "warning" else None, markup=False)
        elif isinstance(event, Finished):
            c.print(Rule("report"))
            self.md(report_md(build_report(self.session)))


async def run_practice(
    coach: Coach,
    config: SessionConfig,
    *,
    review: bool = False,
    resume: bool = False,
    user: str = LOCAL_USER,
    stream: TextIO | None = None,
    console: Console | None = None,
    clock: Callable[[], datetime] | None = None,
    rng: random.Random | None = None,
) -> InterviewSession | None:
    """Run one session in the terminal. Returns it (finished) or None when there was nothing to ask."""
    stream = stream or sys.stdin
    console = console or Console()
    now = clock or (lambda: datetime.now(UTC))
    resume_at = 0
    restored = await coach.resume(user, clock=clock) if resume else None
    if restored is not None:
        session, resume_at = restored
        console.print(f"Resuming your session at question {resume_at + 1} of {session.total}.")
    else:
        if resume:
            console.print("No unfinished session to resume; starting a new one.")
        elif await coach.resumable(user) is not None:
            console.print("[dim]You have an unfinished session: `interview practice --resume` continues it.[/dim]")
        session = await coach.start(config, user=user, review=review, clock=clock, rng=rng)
    if session.total == 0:
        console.print("No questions match (check --topic, or add notes to knowledge/ and run `interview ingest`).")
        return None
    renderer = TerminalRenderer(console, session, now)
    console.print(
        Markdown(
            f"**{session.config.mode.value.capitalize()} session: {session.total} questions.** {coach.grader_line()}"
        )
    )
    await renderer.render(session.begin(resume_at=resume_at))
    while not session.finished:
        text = await asyncio.to_thread(read_answer, stream)
        if text is None:  # end of input: finish with a report, nothing is lost
            await renderer.render(session.command(Command.END))
            break
        await renderer.render(session.handle(text))
    return session
