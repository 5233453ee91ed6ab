# AlphaLoom: `make demo` runs the whole pipeline on the embedded default; `make test` runs the test suite.
# Both build .venv and install everything first (torch's CPU build before transformers, so no CUDA build is pulled).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PIP    := $(BIN)/pip --disable-pip-version-check -q

.PHONY: install demo test lint bench clean browser

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -U pip wheel setuptools
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/alphaloom demo

# mypy over what is clean so far: the kernel, agents/, execution/ and of alphaloom/ fx, progress, the task runners,
# features/, quality/, the ccxt venue modules and most of ingest/, ops/ and backtest/ (all strict, see [tool.mypy] in
# pyproject.toml), and flows/. Imported modules outside that set are read for their types, their own errors not
# reported. `mypy` alone checks every package and shows what remains (the rest of alphaloom/): each joins MYPY_CLEAN
# (and the strict list) once it passes.
MYPY_CLEAN := -p agents -p alphaloom.db -m alphaloom.settings -m alphaloom.errors -m alphaloom.domain -m alphaloom.audit \
              -m alphaloom.guards -m alphaloom.markets -m alphaloom.ops.kill_switch -p execution -p flows \
              -p alphaloom.records -m alphaloom.console.app -m alphaloom.console.web -m alphaloom.console.pages \
              -m alphaloom.console.login -m alphaloom.console.action_routes -m alphaloom.reporting.report \
              -m alphaloom.reporting.explain -m alphaloom.reporting.explain_html -m alphaloom.reporting.decision_summary \
              -m alphaloom.fx -m alphaloom.progress -m alphaloom.garbage -m alphaloom.task_runner -m alphaloom.dask_runner \
              -p alphaloom.features -p alphaloom.quality -m alphaloom.venues.ccxt_errors -m alphaloom.venues.ccxt_exchange \
              -m alphaloom.ingest -m alphaloom.ingest.calendars -m alphaloom.ingest.ccxt_prices -m alphaloom.ingest.price_jumps \
              -m alphaloom.ingest.price_sources -m alphaloom.ingest.prices -m alphaloom.ingest.quarantine \
              -m alphaloom.ingest.sampledata -m alphaloom.ingest.stream -m alphaloom.ops -m alphaloom.ops.alerts \
              -m alphaloom.ops.backup -m alphaloom.ops.config_reference -m alphaloom.ops.drawdown_alerts -m alphaloom.ops.locks \
              -m alphaloom.ops.prefect_server -m alphaloom.ops.serve -m alphaloom.backtest -m alphaloom.backtest.bar_frames \
              -m alphaloom.backtest.equity_curve -m alphaloom.backtest.exposure -m alphaloom.backtest.team_grid \
              -m alphaloom.backtest.vectorized

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy --follow-imports=silent $(MYPY_CLEAN)

# The console's browser test drives Debian's headless chromium through chromedriver: installed once, quietly, when
# missing (root or sudo needed); if it cannot be, the test skips and says why.
browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || \
	  { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    ( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium \
	      chromium-driver ) >/dev/null 2>&1 || echo "chromium could not be installed: the console browser test will skip"; }

test: lint browser
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
