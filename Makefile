# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= data
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint bench bench-safety clean chromium

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "logwarden needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/logwarden init --data-dir $(DATA_DIR)
	$(BIN)/logwarden serve --data-dir $(DATA_DIR) --host $(HOST) --port $(PORT)

# Debian's Chromium drives the browser tests; Playwright cannot download browsers here.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null; \
	  else echo "chromium is not installed and we are not root: browser tests will skip"; fi; }

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

test: $(VENV)/.installed-test chromium lint
	$(BIN)/pytest

bench: $(VENV)/.installed-test
	$(BIN)/python bench/relay.py

# The safety benchmark compares our detector with Microsoft Presidio, which is installed only
# here, in a virtual environment of its own: never in .venv, never a dependency of logwarden.
# `make bench-safety SAFETY_BENCH_ARGS=--quick` for a check that it runs.
BENCH_VENV := .venv-bench
SAFETY_BENCH_ARGS ?=

$(BENCH_VENV)/.installed: pyproject.toml bench/requirements-presidio.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "logwarden needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet -e . -r bench/requirements-presidio.txt
	touch $@

bench-safety: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python bench/safety.py $(SAFETY_BENCH_ARGS)

clean:
	rm -rf $(VENV) $(BENCH_VENV) build src/*.egg-info
