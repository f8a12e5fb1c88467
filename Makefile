# `make demo` and `make test` work from a fresh clone: each creates .venv when missing and installs
# the project (editable, with its dev extras) when pyproject.toml is newer than the last install.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint typecheck layers unit unit-fast browser bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/horde demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

# the architecture, written down once (pyproject [tool.importlinter]) and checked on every run
layers: $(STAMP)
	$(BIN)/lint-imports

unit: $(STAMP) browser
	$(BIN)/python -m pytest

unit-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

# the browser tests drive Debian's chromium through Playwright (its own browser download is unreachable);
# install it when missing and we may (root with apt-get), otherwise those tests skip with the reason
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
		echo "chromium is not installed and cannot be installed here: browser tests will skip"; }

test: lint typecheck layers unit

# the quick loop: everything but real-time, subprocess, browser and namespace tests
test-fast: lint typecheck layers unit-fast

bench: $(STAMP)
	$(BIN)/python benchmarks/stats_record.py
	$(BIN)/python benchmarks/dispatch.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
