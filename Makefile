# Two commands for a new machine with only Python 3.11: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
OUT ?= out/demo

.PHONY: demo test test-slow test-all bench bench-summary bench-models bench-peers lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Runtime install for the demo; dev install (tests, lint) on top of it.
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/lifevalue demo --out $(OUT)

# The fast suite. pytest exits with 5 when it collects nothing: that is a broken
# suite here, so it fails like any other error.
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m "not slow" -q

# Slow checks (large inputs, spilling); exit code 5 (none selected) is fine here.
test-slow: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m slow -q || [ $$? -eq 5 ]

test-all: test test-slow

# Both benchmarks; each script takes its own options, e.g.
# `make bench-models BENCH_MODELS_ARGS="--sizes cdnow,master --reps 1"`
# (BENCH_ARGS still reaches the summary benchmark).
bench: bench-summary bench-models

BENCH_SUMMARY_ARGS ?= $(BENCH_ARGS)

bench-summary: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/bench_summary.py $(BENCH_SUMMARY_ARGS)

bench-models: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/bench_models.py $(BENCH_MODELS_ARGS)

# Peer libraries live in their own environments (they pin old numpy/pandas).
bench-peers:
	$(PYTHON) -m venv .venv-lifetimes
	.venv-lifetimes/bin/python -m pip install --quiet lifetimes==0.11.3 numpy==1.26.4 pandas==1.5.3 scipy==1.11.4 autograd==1.9.1 dill pyarrow==20.0.0
	$(PYTHON) -m venv .venv-pymc
	.venv-pymc/bin/python -m pip install --quiet pymc-marketing pyarrow

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
