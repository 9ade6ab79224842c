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
from typing import TextIO

from rich.console import Console
from rich.markdown import Markdown
from rich.panel import Panel
from rich.rule import Rule

from bot.adapters.views import (
    SessionRenderer,
    follow_up_md,
    graded_md,
    hint_md,
    question_md,
    reference_md,
    schedule_md,
)
from bot.history.users import LOCAL_USER
from bot.practice.coach import Coach
from bot.practice.commands import Command
from bot.practice.events import (
    AppealRequested,
    Asked,
    Closed,
    Event,
    Feedback,
    Finished,
    FollowUpAsked,
    Graded,
    Grading,
    Hint,
    Notice,
    Reference,
    Retrieved,
    Skipped,
)
from bot.practice.report import build_report, report_md
from bot.practice.session import InterviewSession, Mode, SessionConfig

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


class TerminalRenderer(SessionRenderer[None]):
    def __init__(self, console: Console, session: InterviewSession, clock: Callable[[], datetime]) -> None:
        self.console = console
        self.session = session
        self.clock = clock
        self._streaming = False

    def md(self, text: str) -> None:
        self.console.print(Markdown(text))

    async def render(self, events: AsyncIterator[Event]) -> None:
        async for event in events:
            self.show(event)

    def asked(self, event: Asked) -> None:
        self.console.print(Rule())
        self.md(
            question_md(
                event.card, event.number, event.total, retry=event.retry, resumed=event.resumed, leech=event.leech
            )
        )
        self.console.print(f"[dim]{PROMPT_HELP}[/dim]")

    def follow_up_asked(self, event: FollowUpAsked) -> None:
        self.md(follow_up_md(event.text, event.number, event.of))

    def retrieved(self, event: Retrieved) -> None:
        pass  # the terminal shows no retrieval step

    def grading(self, event: Grading) -> None:
        self.console.print("[dim]grading…[/dim]")

    def feedback(self, event: Feedback) -> None:
        if self.session.config.mode is Mode.STUDY:
            self.console.print(event.text, end="", markup=False, highlight=False)
            self._streaming = True

    def graded(self, event: Graded) -> None:
        if self._streaming:
            self.console.print()
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
        self.console.print(Panel(Markdown(body), title="grade", expand=True))

    def closed(self, event: Closed) -> None:
        line = schedule_md(event.receipt, self.clock())
        if line:
            self.md(line)

    def hint(self, event: Hint) -> None:
        self.md(hint_md(event.point, event.used))

    def reference(self, event: Reference) -> None:
        self.md(reference_md(event.card))

    def skipped(self, event: Skipped) -> None:
        self.console.print(f"[yellow]Skipped:[/yellow] {event.card.display_question}", markup=True, highlight=False)

    def appeal_requested(self, event: AppealRequested) -> None:
        self.console.print("Why do you think you were right? Your next answer is your argument.")

    def notice(self, event: Notice) -> None:
        self.console.print(event.text, style="yellow" if event.level == "warning" else None, markup=False)

    def finished(self, event: Finished) -> None:
        self.console.print(Rule("report"))
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
