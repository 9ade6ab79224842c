"""``interview ingest``, ``cards`` and ``search``: notes into the card store, and back out."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import click

from bot.adapters.commands.common import BadInput, note_paths, progress_bar
from bot.settings import get_settings

__all__ = ["cards", "ingest", "search"]


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def ingest(paths: tuple[str, ...], as_json: bool) -> None:
    """Import notes (default: the knowledge folder) and sync them into the card store.

    PATHS: .txt/.md/.pdf files, folders of them, Obsidian vaults, Anki plain-text exports.
    """
    from bot.knowledge.ingest import IngestError, collect
    from bot.knowledge.ingest import ingest as run_ingest
    from bot.knowledge.prose import make_prose_questions
    from bot.retrieval.embeddings import EmbeddingModelMissing
    from bot.retrieval.lock import DataDirBusy, data_lock
    from bot.retrieval.store import open_store

    settings = get_settings()
    targets = note_paths(settings, paths)
    prose = make_prose_questions(settings)  # None offline: sections of prose are only listed
    try:
        started = time.perf_counter()
        with contextlib.ExitStack() as stack:
            shown = None if prose is None else stack.enter_context(progress_bar("questions from prose", "sections"))
            collected = collect(
                targets,
                settings.knowledge_dir,
                max_cards=settings.max_cards_per_file,
                prose=prose,
                prose_progress=shown,
            )  # validate before opening (and creating) the store
    except IngestError as exc:
        raise BadInput(str(exc)) from exc
    try:
        with (
            data_lock(settings, wait=settings.lock_wait, on_wait=lambda m: click.echo(m, err=True)),
            progress_bar("embedding cards", "cards") as progress,
        ):
            store = open_store(settings)
            summary = run_ingest(
                targets, store, settings.knowledge_dir, progress=progress, collected=collected, started=started
            )
    except IngestError as exc:
        raise BadInput(str(exc)) from exc
    except (EmbeddingModelMissing, DataDirBusy) as exc:
        raise click.ClickException(str(exc)) from exc
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
    if summary.reused:
        click.echo(f"Resumed: {summary.reused} card(s) kept the embeddings an interrupted ingest had made.")
    click.echo(f"Topics: {topics}")
    if summary.generated > summary.from_prose:
        click.echo(
            f"{summary.generated - summary.from_prose} question(s) generated from concepts "
            "(headings, 'Term: definition' lines)."
        )
    if summary.from_prose:
        calls = f"; {prose.calls} model call(s) this run, the rest cached" if prose is not None else ""
        click.echo(
            f"{summary.from_prose} question(s) written by the model from prose "
            f"(each answer quoted from the notes{calls})."
        )
    if summary.unquestioned:
        click.echo("Not turned into questions (text under no question or concept):")
        for where in summary.unquestioned:
            click.echo(f"  {where}")


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of cards.")
def cards(paths: tuple[str, ...], as_json: bool) -> None:
    """Parse notes and print the cards (no store needed; questions from prose as far as cached)."""
    from bot.knowledge.ingest import IngestError, collect
    from bot.knowledge.prose import make_prose_questions

    settings = get_settings()
    try:
        parsed, warnings = collect(
            note_paths(settings, paths),
            settings.knowledge_dir,
            max_cards=settings.max_cards_per_file,
            prose=make_prose_questions(settings, calls=False),  # what ingest stored; no model calls here
        )
    except IngestError as exc:
        raise BadInput(str(exc)) from exc
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    all_cards = (c for p in parsed for c in p.cards)  # a card at a time, as they were set aside
    if as_json:  # the whole array as one string would double the memory
        click.echo("[")
        for i, c in enumerate(all_cards):
            click.echo(("," if i else "") + json.dumps(c.to_public_json(), ensure_ascii=False, indent=2))
        click.echo("]")
        return
    for c in all_cards:
        flags = f" [{', '.join(c.flags)}]" if c.flags else ""
        click.echo(f"{c.id}  {c.topic:<26} {c.display_question}{flags}  ({c.source.describe()})")
    click.echo(f"{sum(len(p.cards) for p in parsed)} cards", err=True)


@click.command()
@click.argument("text")
@click.option("-k", "k", default=5, show_default=True, type=click.IntRange(1, 100), help="How many cards.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def search(text: str, k: int, as_json: bool) -> None:
    """Nearest cards to TEXT, with cosine scores."""
    from bot.retrieval.embeddings import EmbeddingModelMissing
    from bot.retrieval.store import open_store

    if not text.strip():
        raise click.BadParameter("empty search text", param_hint="TEXT")
    try:
        store = open_store(get_settings())
        if store.count() == 0:
            raise BadInput("the card store is empty: run `interview ingest` first")
        hits = store.search(text, k)
    except EmbeddingModelMissing as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        out: list[dict[str, Any]] = [
            {"score": h.score, "id": h.card.id, "question": h.card.display_question, "topic": h.card.topic}
            for h in hits
        ]
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    for h in hits:
        click.echo(f"{h.score:.3f}  {h.card.display_question}  [{h.card.topic}]  ({h.card.id})")
