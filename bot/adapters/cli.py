"""The ``interview`` command line (also ``python -m bot``). An adapter: it only wires the core."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from bot.settings import Settings, get_settings

__all__ = ["cli", "main"]

EXIT_USAGE = 2


def _err(message: str) -> None:
    click.echo(f"error: {message}", err=True)


@contextlib.contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A transient progress bar on stderr (hidden when stderr is not a terminal)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _paths(settings: Settings, paths: Sequence[str]) -> list[Path]:
    return [Path(p) for p in paths] if paths else [settings.knowledge_dir]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Mock-interview coach: drills you on questions from your own notes."""


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def ingest(paths: tuple[str, ...], as_json: bool) -> None:
    """Parse notes (default: the knowledge folder) and sync them into the card store."""
    from bot.knowledge.ingest import IngestError, collect
    from bot.knowledge.ingest import ingest as run_ingest
    from bot.retrieval.embeddings import EmbeddingModelMissing
    from bot.retrieval.store import open_store

    settings = get_settings()
    targets = _paths(settings, paths)
    try:
        started = time.perf_counter()
        collected = collect(targets, settings.knowledge_dir)  # validate before opening (and creating) the store
    except IngestError as exc:
        _err(str(exc))
        sys.exit(EXIT_USAGE)
    try:
        store = open_store(settings)
        with _progress("embedding cards") as progress:
            summary = run_ingest(
                targets, store, settings.knowledge_dir, progress=progress, collected=collected, started=started
            )
    except IngestError as exc:
        _err(str(exc))
        sys.exit(EXIT_USAGE)
    except EmbeddingModelMissing as exc:
        _err(str(exc))
        sys.exit(1)
    for warning in summary.warnings:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        click.echo(json.dumps(summary.as_dict(), ensure_ascii=False))
        return
    topics = ", ".join(f"{t} {n}" for t, n in summary.topics.items())
    click.echo(
        f"Ingested {summary.files} file(s): {summary.cards} cards, {len(summary.topics)} topics, "
        f"{summary.no_answer} without an answer in {summary.seconds:.2f}s "
        f"(added {summary.added}, updated {summary.updated}, removed {summary.removed}, "
        f"unchanged {summary.unchanged}; store '{store.name}' now holds {store.count()})."
    )
    click.echo(f"Topics: {topics}")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of cards.")
def cards(paths: tuple[str, ...], as_json: bool) -> None:
    """Parse notes and print the cards (no store needed)."""
    from bot.knowledge.ingest import IngestError, collect

    settings = get_settings()
    try:
        parsed, warnings = collect(_paths(settings, paths), settings.knowledge_dir)
    except IngestError as exc:
        _err(str(exc))
        sys.exit(EXIT_USAGE)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    all_cards = [c for p in parsed for c in p.cards]
    if as_json:
        click.echo(json.dumps([c.to_public_json() for c in all_cards], ensure_ascii=False, indent=2))
        return
    for c in all_cards:
        flags = f" [{', '.join(c.flags)}]" if c.flags else ""
        click.echo(f"{c.id}  {c.topic:<26} {c.display_question}{flags}  ({c.source.path}:{c.source.line_start})")
    click.echo(f"{len(all_cards)} cards", err=True)


@cli.command()
@click.argument("text")
@click.option("-k", "k", default=5, show_default=True, type=click.IntRange(1, 100), help="How many cards.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def search(text: str, k: int, as_json: bool) -> None:
    """Nearest cards to TEXT, with cosine scores."""
    from bot.retrieval.embeddings import EmbeddingModelMissing
    from bot.retrieval.store import open_store

    if not text.strip():
        _err("empty search text")
        sys.exit(EXIT_USAGE)
    try:
        store = open_store(get_settings())
        if store.count() == 0:
            _err("the card store is empty: run `interview ingest` first")
            sys.exit(EXIT_USAGE)
        hits = store.search(text, k)
    except EmbeddingModelMissing as exc:
        _err(str(exc))
        sys.exit(1)
    if as_json:
        out: list[dict[str, Any]] = [
            {"score": h.score, "id": h.card.id, "question": h.card.display_question, "topic": h.card.topic}
            for h in hits
        ]
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    for h in hits:
        click.echo(f"{h.score:.3f}  {h.card.display_question}  [{h.card.topic}]  ({h.card.id})")


@cli.command()
@click.option("--question", help="The question (or use --card).")
@click.option("--reference", default="", help="The reference answer (empty = none).")
@click.option("--card", "card_id", help="Grade against a card from the store (its question, answer, passages).")
@click.option("--answer", required=True, help="The answer to grade ('-' reads it from standard input).")
@click.option("--grader", "kind", type=click.Choice(["offline", "llm"]), help="Default: from settings.")
@click.option("--json", "as_json", is_flag=True, help="Print the Grade as JSON.")
def grade(
    question: str | None, reference: str, card_id: str | None, answer: str, kind: str | None, as_json: bool
) -> None:
    """Grade one answer. Exit 0 on a grade (ungraded included), 2 on bad usage."""
    from bot.adapters.views import grade_md
    from bot.grading.base import GradeRequest, grade_sync
    from bot.grading.pipeline import build_grader
    from bot.retrieval.store import open_store

    settings = get_settings()
    if answer == "-":
        answer = sys.stdin.read()
    if bool(question) == bool(card_id):
        _err("give exactly one of --question or --card")
        sys.exit(EXIT_USAGE)
    store = None
    if card_id:
        store = open_store(settings)
        card = store.get(card_id)
        if card is None:
            _err(f"no card with id {card_id!r} (see `interview cards`)")
            sys.exit(EXIT_USAGE)
        retrieval = store.related(card, settings.related_k)
        request = retrieval.request(answer)
    else:
        request = GradeRequest(question=question or "", reference=reference, answer=answer)
    grader = build_grader(settings, store.embedder if store else None, kind=kind)
    result = grade_sync(grader, request)
    if as_json:
        click.echo(result.model_dump_json(indent=2))
    else:
        click.echo(grade_md(result))


@cli.command(name="eval")
@click.argument("dataset", required=False, type=click.Path(dir_okay=False))
@click.option("--grader", "kind", type=click.Choice(["offline", "llm"]), help="Default: from settings.")
@click.option("--split", help="Only rows of this split (SemEval: 'sciEntsBank:test-unseen-answers').")
@click.option("--limit", type=click.IntRange(1), help="A seeded random sample of N rows.")
@click.option("--seed", default=0, show_default=True, help="Sampling seed.")
@click.option("--train-limit", default=400, show_default=True, help="Training rows graded to pick a threshold.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object (last line).")
@click.option("--report", type=click.Path(dir_okay=False), help="Write a Markdown report (+ a scatter plot page).")
@click.option("--langsmith", "use_langsmith", is_flag=True, help="Run as a LangSmith experiment (needs a key).")
@click.option("--experiment-prefix", help="LangSmith experiment prefix (default: the grader's name).")
@click.option("--dataset-name", help="LangSmith dataset name (default: file stem and split).")
@click.option("--simulate", is_flag=True, help="Grade simulated candidates for the notes' cards instead.")
@click.option("--cards", "n_cards", type=click.IntRange(1), help="With --simulate: how many cards.")
@click.option(
    "--candidates",
    type=click.Choice(["auto", "llm", "template"]),
    default="auto",
    show_default=True,
    help="With --simulate: who writes the answers ('auto' = the LLM when one is configured).",
)
def eval_command(
    dataset: str | None,
    kind: str | None,
    split: str | None,
    limit: int | None,
    seed: int,
    train_limit: int,
    as_json: bool,
    report: str | None,
    use_langsmith: bool,
    experiment_prefix: str | None,
    dataset_name: str | None,
    simulate: bool,
    n_cards: int | None,
    candidates: str,
) -> None:
    """Measure a grader against human grades (DATASET.jsonl) or simulated candidates (--simulate)."""
    from bot.grading.pipeline import build_grader

    settings = get_settings()
    if simulate == bool(dataset):
        _err("give a DATASET.jsonl or --simulate (not both)")
        sys.exit(EXIT_USAGE)
    grader = build_grader(settings, kind=kind, mode="eval")
    if simulate:
        from bot.evaluation.simulate import simulate as run_simulation
        from bot.knowledge.ingest import IngestError, collect

        try:
            parsed, _ = collect([settings.knowledge_dir], settings.knowledge_dir)
        except IngestError as exc:
            _err(str(exc))
            sys.exit(EXIT_USAGE)
        cards = [c for p in parsed for c in p.cards]
        writer = None
        if candidates == "llm" or (candidates == "auto" and settings.llm_configured):
            from bot.evaluation.simulate import LLMCandidateWriter
            from bot.grading.pipeline import make_chat_model

            writer = LLMCandidateWriter(make_chat_model(settings), prompts_dir=settings.prompts_dir)
        sim = run_simulation(cards, grader, n_cards=n_cards, seed=seed, writer=writer)
        click.echo(json.dumps(sim.as_dict(), ensure_ascii=False) if as_json else sim.format_text())
        return
    if use_langsmith:
        _langsmith_experiment(Path(dataset or ""), grader, split, limit, seed, experiment_prefix, dataset_name)
        return
    from bot.evaluation.metrics import format_summary
    from bot.evaluation.report import write_report
    from bot.evaluation.runner import evaluate

    try:
        with _progress("grading") as progress:
            run = evaluate(
                Path(dataset or ""),
                grader,
                split=split,
                limit=limit,
                seed=seed,
                train_limit=train_limit,
                progress=progress,
            )
    except (OSError, ValueError) as exc:
        _err(str(exc))
        sys.exit(EXIT_USAGE)
    for bad in run.bad_lines:
        click.echo(f"warning: {dataset}: {bad}", err=True)
    if report:
        path = write_report(report, run.examples, run.grades, run.metrics)
        click.echo(f"report written to {path}", err=True)
    if as_json:
        click.echo(json.dumps(run.metrics.as_dict(), ensure_ascii=False))
    else:
        click.echo(format_summary(run.metrics))


def _langsmith_experiment(
    path: Path, grader: Any, split: str | None, limit: int | None, seed: int, prefix: str | None, name: str | None
) -> None:

    from bot.evaluation.datasets import load_dataset
    from bot.evaluation.langsmith import LangSmithUnavailable, run_langsmith_experiment

    try:
        examples, bad = load_dataset(path, split=split, limit=limit, seed=seed)
    except (OSError, ValueError) as exc:
        _err(str(exc))
        sys.exit(EXIT_USAGE)
    for line in bad:
        click.echo(f"warning: {path}: {line}", err=True)
    dataset_name = name or (path.stem + (f"-{split}" if split else ""))
    try:
        with contextlib.redirect_stdout(sys.stderr):  # langsmith prints its own progress
            summary = run_langsmith_experiment(
                examples, grader, dataset_name=dataset_name, experiment_prefix=prefix or grader.name
            )
    except LangSmithUnavailable as exc:
        _err(str(exc))
        sys.exit(3)
    click.echo(json.dumps(summary.as_dict(), ensure_ascii=False))


@cli.command()
@click.option("--force", is_flag=True, help="Re-export even if the files are up to date.")
def setup(force: bool) -> None:
    """Prepare offline model files: ONNX embedding model (needs torch, install time) and tiktoken files."""
    from bot.grading.budget import prepare_tiktoken_cache

    settings = get_settings()
    prepare_tiktoken_cache(settings.tiktoken_dir)
    click.echo(f"tiktoken files ready in {settings.tiktoken_dir}")
    if settings.embeddings == "local":
        from bot.install.model_export import export_minilm

        path = export_minilm(settings.embedding_model_dir, force=force)
        click.echo(f"embedding model ready in {path}")


@cli.command()
@click.option("--host", default=None, help="Listen address (default: HOST or 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default: PORT or 8000).")
def web(host: str | None, port: int | None) -> None:
    """Start the Chainlit web app (http://localhost:8000 by default)."""
    import os

    from bot.adapters.web import serve
    from bot.history.users import auth_enabled

    settings = get_settings()
    if auth_enabled(settings) and not os.environ.get("CHAINLIT_AUTH_SECRET"):
        os.environ["CHAINLIT_AUTH_SECRET"] = _auth_secret(settings)
    click.echo(f"Starting the app on http://{host or settings.host}:{port or settings.port}", err=True)
    serve(host or settings.host, port or settings.port)


def _auth_secret(settings: Settings) -> str:
    """Chainlit signs sign-in tokens with CHAINLIT_AUTH_SECRET; keep a random one in the data dir."""
    import os
    import secrets

    path = settings.data_dir / "chainlit-auth-secret"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secret)
    return secret


# --------------------------------------------------------------------------- history


def _history_user(settings: Settings, user: str | None) -> str:
    """The user whose history to read: --user, the only configured user, or the local user."""
    from bot.history.users import LOCAL_USER, configured_users

    try:
        users = configured_users(settings)
    except ValueError as exc:
        _err(str(exc))
        sys.exit(EXIT_USAGE)
    if not users:
        if user not in (None, LOCAL_USER):
            _err(f"no users are configured (INTERVIEW_USERS is empty): the only user is {LOCAL_USER!r}")
            sys.exit(EXIT_USAGE)
        return LOCAL_USER
    if user is None:
        if len(users) == 1:
            return next(iter(users))
        _err("several users are configured: choose one with --user")
        sys.exit(EXIT_USAGE)
    if user not in users:
        _err(f"no user {user!r} in INTERVIEW_USERS")
        sys.exit(EXIT_USAGE)
    return user


def _known_cards(settings: Settings) -> list[Any]:
    """The store's cards (the notes folder's when there is no store): topics, questions, notes."""
    if settings.chroma_host or settings.chroma_path.exists():
        try:
            from bot.retrieval.store import open_store

            found = open_store(settings).all_cards()
            if found:
                return found
        except Exception as exc:  # the store is optional here: fall back to the notes
            click.echo(f"warning: card store unavailable ({type(exc).__name__}); reading the notes", err=True)
    from bot.knowledge.ingest import IngestError, collect

    try:
        parsed, _ = collect([settings.knowledge_dir], settings.knowledge_dir)
    except IngestError:
        return []
    return [c for p in parsed for c in p.cards]


def _now(value: str | None) -> Any:
    from datetime import UTC, datetime

    if value is None:
        return datetime.now(UTC)
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _compute_stats(settings: Settings, user: str, history: Any, now: Any, cards: list[Any]) -> Any:
    from datetime import datetime

    from bot.history.progress import stats_with_settings

    return stats_with_settings(history, user, cards, settings, now, tz=datetime.now().astimezone().tzinfo or now.tzinfo)


_NOW_OPTION = click.option("--now", "now_iso", hidden=True, help="Pretend it is this ISO time (tests).")


@cli.command()
@click.option("--user", "user_name", help="Whose progress (default: the only or the local user).")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as one JSON object.")
@_NOW_OPTION
def stats(user_name: str | None, as_json: bool, now_iso: str | None) -> None:
    """Progress: readiness per topic, answers and scores per day, streak, weakest cards, leeches."""
    from bot.history.repository import History

    settings = get_settings()
    user = _history_user(settings, user_name)
    with History.from_settings(settings) as history:
        result = _compute_stats(settings, user, history, _now(now_iso), _known_cards(settings))
    if as_json:
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False))
        return
    from rich.console import Console

    from bot.history.progress import print_stats

    print_stats(result, Console(width=120, highlight=False))


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "anki"]), required=True, help="What to write.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Output file (md/csv default: stdout).")
@click.option("--user", "user_name", help="Whose history (default: the only or the local user).")
@_NOW_OPTION
def export(fmt: str, output: str | None, user_name: str | None, now_iso: str | None) -> None:
    """Export your history: a Markdown report, a CSV of every attempt, or an Anki deck of weak cards."""
    from bot.history.export import export_anki, export_csv, export_markdown, weak_cards
    from bot.history.repository import History

    settings = get_settings()
    user = _history_user(settings, user_name)
    now = _now(now_iso)
    with History.from_settings(settings) as history:
        uid = history.user_id(user)
        attempts = history.attempts(uid) if uid is not None else []
        sessions = history.sessions(uid) if uid is not None else []
        cards = _known_cards(settings) if fmt in ("md", "anki") else []
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


@cli.command(name="hash-password")
@click.option("--user", "user_name", help="Print NAME:HASH, ready to paste into INTERVIEW_USERS.")
def hash_password_command(user_name: str | None) -> None:
    """Hash a password for INTERVIEW_USERS (prompts twice, or reads one line from standard input)."""
    from bot.history.users import hash_password, parse_users

    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        _err("empty password")
        sys.exit(EXIT_USAGE)
    hashed = hash_password(password)
    if user_name is None:
        click.echo(hashed)
        return
    try:
        parse_users(f"{user_name}:{hashed}")
    except ValueError as exc:
        _err(str(exc))
        sys.exit(EXIT_USAGE)
    click.echo(f"{user_name}:{hashed}")


# --------------------------------------------------------------------------- practice


@cli.command()
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
    from bot.practice.coach import Coach
    from bot.practice.session import Mode, SessionConfig

    settings = get_settings()
    user = _history_user(settings, user_name)
    coach = Coach.open(settings)
    known = coach.topics()
    chosen: list[str] = []
    for wanted in topics:
        low = wanted.lower()
        match = [t for t in known if t.lower() == low] or [t for t in known if low in t.lower()]
        if len(match) != 1:
            _err(f"topic {wanted!r} matches {len(match)} topics; choose from: {', '.join(known)}")
            sys.exit(EXIT_USAGE)
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
        _err("stopped: every graded answer so far is saved; `interview practice --resume` continues")
        sys.exit(130)
    finally:
        if coach.history is not None:
            coach.history.close()
    if session is None:
        sys.exit(1)


@cli.group()
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


def main(argv: Sequence[str] | None = None) -> None:
    cli.main(args=list(argv) if argv is not None else None, prog_name="interview")
