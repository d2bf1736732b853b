# zapflow: one gate (`make check`) and the README's two commands (`make demo`, `make test`).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.8
# Use uv from PATH when present; otherwise bootstrap the pinned version from PyPI into .tools/.
UV := $(or $(shell command -v uv 2>/dev/null),.tools/bin/uv)
VENV := .venv
BIN := $(VENV)/bin
# Never let uv download an interpreter: the machine's python3 (>= 3.11) is the one we use.
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy
# Trust the machine's certificate store (where a site's TLS proxy CA lives), not only uv's bundle.
export UV_SYSTEM_CERTS := 1

PYTEST_COV := --cov --cov-report=term

.PHONY: help install demo test test-fast check fmt lint typecheck contracts bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.installed: pyproject.toml uv.lock | $(if $(shell command -v uv 2>/dev/null),,.tools/bin/uv)
	$(UV) sync --locked --all-groups
	@touch $@

install: $(VENV)/.installed ## Install the locked dependencies into .venv

demo: install ## Run the main job on the embedded default (no account needed)
	$(BIN)/zapflow demo

test: install ## Run every test tier with branch coverage (the README's test command)
	$(BIN)/pytest $(PYTEST_COV)

test-fast: install ## Unit tests only, no coverage: for iteration
	$(BIN)/pytest -m unit -q

fmt: install ## Format the code
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy zapflow

contracts: install
	$(BIN)/lint-imports

check: lint typecheck contracts test ## The one gate: format, lint, types, import contracts, tests

bench: install ## Benchmarks, reported as ratios measured in one run
	$(BIN)/python -m bench

clean: ## Remove the venv, tool venv and caches
	rm -rf $(VENV) .tools .mypy_cache .ruff_cache .coverage htmlcov
