# fedsec — the two commands of the README are `make demo` and `make test`.
# Each (re)creates the project virtual environment when pyproject.toml changed,
# then runs. With nothing changed, they start at once.

SHELL := /bin/bash
PY_SYS ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH_SPEC := torch==2.13.0

# Flower: no telemetry, no update check, no runtime `uv sync` of the app,
# no Ray usage stats, and its home folder inside the project's ignored folders.
export FLWR_TELEMETRY_ENABLED := 0
export FLWR_DISABLE_UPDATE_CHECK := 1
export FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION := 1
export RAY_USAGE_STATS_ENABLED := 0
export RAY_DEDUP_LOGS := 0
export FLWR_HOME := $(CURDIR)/.flwr
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: venv demo test test-fast test-deployment lint format typecheck keys clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PY_SYS) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, the local CPU build: nothing later may pull a CUDA torch.
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## The demo: 10 simulated hospitals, 5 rounds of FedAvg, through `flwr run .`.
demo: $(STAMP)
	$(PY) -m experiments.demo

## The whole test suite, deployment tests included.
test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not deployment"

test-deployment: $(STAMP)
	$(PY) -m pytest -q -m deployment

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .flwr outputs multirun .pytest_cache .mypy_cache .ruff_cache

## Site signing keys + public registry for the active secure-aggregation variant,
## and the node configs of the 10 simulated sites of `flwr run .` (.flwr/sim-sites).
keys: $(STAMP)
	$(PY) -m experiments.site_keys --sites 10 --out .flwr/secagg-keys --sim-sites .flwr/sim-sites
