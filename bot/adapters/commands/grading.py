"""``interview grade`` and ``interview eval``: one answer, or a grader measured against a data set."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import click

from bot.adapters.commands.common import BadInput, ServiceUnavailable, progress_bar
from bot.settings import get_settings

__all__ = ["eval_command", "grade"]


@click.command()
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
        raise click.UsageError("give exactly one of --question or --card")
    store = None
    if card_id:
        store = open_store(settings)
        card = store.get(card_id)
        if card is None:
            raise click.BadParameter(f"no card with id {card_id!r} (see `interview cards`)", param_hint="--card")
        retrieval = store.related(card, settings.related_k)
        request = retrieval.request(answer)
        if card.has_answer:  # the same key points a practice session grades against
            from bot.grading.pipeline import make_rubric_book
            from bot.history.users import LOCAL_USER

            rubric = make_rubric_book(settings).for_user(card, LOCAL_USER)
            request = request.model_copy(update={"rubric": rubric})
    else:
        request = GradeRequest(question=question or "", reference=reference, answer=answer)
    grader = build_grader(settings, store.embedder if store else None, kind=kind)
    result = grade_sync(grader, request)
    if as_json:
        click.echo(result.model_dump_json(indent=2))
    else:
        click.echo(grade_md(result))


@click.command(name="eval")
@click.argument("dataset", required=False, type=click.Path(dir_okay=False))
@click.option("--grader", "kind", type=click.Choice(["offline", "llm"]), help="Default: from settings.")
@click.option("--split", help="Only rows of this split (SemEval: 'sciEntsBank:test-unseen-answers').")
@click.option("--limit", type=click.IntRange(1), help="A seeded random sample of N rows.")
@click.option("--seed", default=0, show_default=True, help="Sampling seed.")
@click.option("--train-limit", default=400, show_default=True, help="Training rows graded to pick a threshold.")
@click.option(
    "--few-shot",
    "few_shot",
    type=click.IntRange(0, 10),
    default=0,
    show_default=True,
    help="Graded examples per answer for the LLM grader, from the training split by question (0 = none).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object (last line).")
@click.option("--report", type=click.Path(dir_okay=False), help="Write a Markdown report (+ scatter SVG).")
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
    few_shot: int,
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
        raise click.UsageError("give a DATASET.jsonl or --simulate (not both)")
    grader = build_grader(settings, kind=kind, mode="eval")
    if few_shot and (simulate or use_langsmith):
        raise click.UsageError("--few-shot goes with a DATASET.jsonl (not --simulate or --langsmith)")
    if few_shot and not grader.name.startswith("llm"):
        click.echo("warning: --few-shot only changes what the LLM grader sees; the offline grader ignores it", err=True)
    if simulate:
        from bot.evaluation.simulate import simulate as run_simulation
        from bot.knowledge.ingest import IngestError, collect

        try:
            parsed, _ = collect([settings.knowledge_dir], settings.knowledge_dir)
        except IngestError as exc:
            raise BadInput(str(exc)) from exc
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
        with progress_bar("grading", "answers") as progress:
            run = evaluate(
                Path(dataset or ""),
                grader,
                split=split,
                limit=limit,
                seed=seed,
                train_limit=train_limit,
                progress=progress,
                few_shot=few_shot,
            )
    except (OSError, ValueError) as exc:
        raise BadInput(str(exc)) from exc
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
        raise BadInput(str(exc)) from exc
    for line in bad:
        click.echo(f"warning: {path}: {line}", err=True)
    dataset_name = name or (path.stem + (f"-{split}" if split else ""))
    try:
        with contextlib.redirect_stdout(sys.stderr):  # langsmith prints its own progress
            summary = run_langsmith_experiment(
                examples, grader, dataset_name=dataset_name, experiment_prefix=prefix or grader.name
            )
    except LangSmithUnavailable as exc:
        raise ServiceUnavailable(str(exc)) from exc
    click.echo(json.dumps(summary.as_dict(), ensure_ascii=False))
