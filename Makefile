# CellSeg Dashboard: `make run` starts the dashboard, `make test` runs every test.
# Both create the project-local virtualenv .venv on first use.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: run lint test test-fast bench clean-venv chromium slurm

# The project itself is installed in editable mode (pyproject.toml), so `core` and `dashboard` import from anywhere.
$(VENV)/.runtime: requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

$(VENV)/.test: $(VENV)/.runtime requirements-test.txt
	$(PY) -m pip install --quiet -r requirements-test.txt
	@touch $@

## run: install (first time) and start the dashboard on http://localhost:8501 with the shipped sample
run: $(VENV)/.runtime
	$(PY) -m streamlit run dashboard/serve.py --server.address 127.0.0.1 --server.port $(PORT)

## lint: ruff (lint and format), then import-linter (pyproject.toml): the engine never imports the UI, the dashboard
## never TensorFlow. `$(VENV)/bin/ruff format .` puts the layout right.
lint: $(VENV)/.test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

## test: install test dependencies (first time), lint, and run the whole suite, browser and Slurm tests included
test: $(VENV)/.test lint chromium slurm
	$(PY) -m pytest

# Browser tests drive Debian's chromium; install it when we may (root with apt), otherwise they skip and say so.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: chromium not installed (sudo apt-get install chromium); browser tests will be skipped"; fi; }

# The Slurm tests start a one-node cluster of Debian's Slurm daemons; install them when we may (root with apt).
slurm:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then bash .ci/install-slurm.sh; \
	  else command -v slurmctld >/dev/null 2>&1 || echo "note: Slurm not installed (.ci/install-slurm.sh); Slurm tests will be skipped"; fi

## test-fast: lint, then everything except the slow, browser and Slurm tests
test-fast: $(VENV)/.test lint
	$(PY) -m pytest -m "not slow and not e2e and not slurm"

$(VENV)/.bench: $(VENV)/.test requirements-bench.txt
	$(PY) -m pip install --quiet -r requirements-bench.txt
	@touch $@

## bench: run the benchmarks; figures are printed and written to bench-results/
bench: $(VENV)/.bench chromium
	$(PY) -m tests.bench $(ARGS)

clean-venv:
	rm -rf $(VENV)
