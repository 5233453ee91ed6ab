# AlphaLoom: `make demo` runs the whole pipeline on the embedded default; `make test` runs the test suite.
# Both build .venv and install everything first (torch's CPU build before transformers, so no CUDA build is pulled).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PIP    := $(BIN)/pip --disable-pip-version-check -q

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -U pip wheel setuptools
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/alphaloom demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest

# Full-size benchmarks (minutes each); `make test` runs them at toy size only. bench/backtest.py needs the bench extra.
bench: install
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/news.py
	$(BIN)/python bench/features.py
	$(BIN)/python bench/decision.py
	$(BIN)/python bench/sentiment.py
	$(BIN)/pip install -q -e '.[bench]' && $(BIN)/python bench/backtest.py

clean:
	rm -rf $(VENV) dbt/target dbt/logs
