# `make demo` and `make test` work from a fresh clone: each creates .venv when missing and installs
# the project (editable, with its dev extras) when pyproject.toml is newer than the last install.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint typecheck layers unit unit-fast sysdeps bench clean

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

unit: $(STAMP) sysdeps
	$(BIN)/python -m pytest

unit-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

# System packages some tests need: Debian's chromium for the browser tests (Playwright's own browser
# download is unreachable), iproute2 and nftables for the multi-host tests in network namespaces. Installed
# when missing and we may (root with apt-get); otherwise those tests skip and say why.
SYSTEM_PACKAGES := chromium:chromium ip:iproute2 nft:nftables

sysdeps:
	@missing=""; for pair in $(SYSTEM_PACKAGES); do cmd=$${pair%%:*}; pkg=$${pair#*:}; \
		command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing:$$missing"; \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) || \
				echo "could not install$$missing: the tests that need them will skip"; \
		else echo "missing$$missing and not root with apt-get: the tests that need them will skip"; fi; fi

test: lint typecheck layers unit

# the quick loop: everything but real-time, subprocess, browser and namespace tests
test-fast: lint typecheck layers unit-fast

bench: $(STAMP)
	$(BIN)/python benchmarks/stats_record.py
	$(BIN)/python benchmarks/dispatch.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
