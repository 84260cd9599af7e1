# `make run` and `make test` do all set-up on a fresh machine: they create .venv if missing and
# (re)install the project whenever pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PRESET ?= ppo-inverted-pendulum
ARGS ?=

.PHONY: run test bench bench-depth lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m experiments.run $(PRESET) $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

bench: $(STAMP)
	$(BIN)/python -m experiments.bench_ppo $(ARGS)

bench-depth: $(STAMP)
	$(BIN)/python -m experiments.bench_depth $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .bench-venv runs .pytest_cache
