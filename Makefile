# adclick: every target installs what it needs first, idempotently.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
STAMP := $(VENV)/.installed

.PHONY: lock install browser demo test test-unit test-integration up down status bench lint format jars clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml query_api/web/package-lock.json
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (adclick needs Python 3.11)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/pip install -q "uv==$(UV_VERSION)"
	$(BIN)/uv pip sync --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	@command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq npm; }
	$(BIN)/python -m query_api.web_assets
	@touch $(STAMP)

# Re-resolve the pinned versions after changing pyproject.toml (never implicit: installs stay reproducible).
lock:
	@test -x $(BIN)/uv || { test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); $(BIN)/pip install -q "uv==$(UV_VERSION)"; }
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

jars: install
	$(BIN)/adclick install

up: install
	$(BIN)/adclick up

down: install
	$(BIN)/adclick down

status: install
	$(BIN)/adclick status

demo: install
	$(BIN)/adclick demo

# The dashboard's browser tests drive Debian's Chromium (never a downloaded browser).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }

test: lint browser
	$(BIN)/adclick install
	$(BIN)/pytest tests --durations=25

test-unit: install browser
	$(BIN)/adclick install
	$(BIN)/pytest tests/unit

test-integration: install browser
	$(BIN)/adclick install
	$(BIN)/pytest tests/integration

bench: install
	$(BIN)/adclick install
	$(BIN)/python -m bench

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
