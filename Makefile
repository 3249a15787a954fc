# One target per habit. `make run` and `make test` are the README's quick start: both install what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8080

.PHONY: install run test lint format typecheck bench chaos mirror-pacing screenshots clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python examples/quickstart.py
	$(BIN)/octoqueue serve --host 127.0.0.1 --port $(PORT) --worker --handler examples.handlers:word_count --concurrency 2

test: $(STAMP) lint typecheck
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check octoqueue tests bench examples
	$(BIN)/ruff format --check octoqueue tests bench examples
	$(BIN)/shellcheck deploy.sh

format: $(STAMP)
	$(BIN)/ruff check --fix octoqueue tests bench examples
	$(BIN)/ruff format octoqueue tests bench examples

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

# A 2,000-job mirror into the GitHub emulator under its secondary limits, killed once and resumed (docs/mirror.md).
mirror-pacing: $(STAMP)
	OCTOQUEUE_MIRROR_PACING_JOBS=2000 $(BIN)/pytest tests/mirror/test_github_pacing.py -q -s

# Real server and worker processes, SIGKILLs, restarts and emulator faults: 0 lost, 0 completed twice (docs/reliability.md).
chaos: $(STAMP)
	$(BIN)/python -m octoqueue.testing.chaos

# The dashboard screenshots in docs/img (README, docs/dashboard.md), taken by Debian's chromium through Playwright.
screenshots: $(STAMP)
	$(BIN)/python docs/screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache octoqueue.db octoqueue.db-wal octoqueue.db-shm
