# Two commands (see README): `make run` sets up and runs; `make test` sets up and runs every check.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# glibc keeps durable_rules' per-evaluation state at the heap top; see ENGINE-NOTES §1.2.
export MALLOC_TRIM_THRESHOLD_ ?= 268435456
# ...and with the trim threshold set, glibc stops adapting its mmap threshold: every ~250 KB session
# would be mmapped and unmapped per call (4x slower, measured in bench/rules.py). Pin it too.
export MALLOC_MMAP_THRESHOLD_ ?= 1048576

# Where `make run` and `make demo` serve: `PORT=8080 make run`, `HOST=0.0.0.0 make run`.
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test setup bench demo chromium

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 or 3.12 is required (durable-rules does not import on 3.13)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Set up, check the bundled cases (pack editions' cases each under the pack they name, without
# coverage: they show an edition's edits, not every rule), load the demo county into an empty store (once), then serve the API,
# the scheduler and the workbench on the embedded SQLite database.
run: $(STAMP)
	$(BIN)/pathway packs
	$(BIN)/pathway evaluate --check --coverage tests/rules/cases/golden/*.json tests/rules/cases/spec/*.json
	$(BIN)/pathway evaluate --check tests/rules/editions/*/*.json
	$(BIN)/pathway demo --if-empty --base-url http://$(HOST):$(PORT)
	$(BIN)/pathway serve --host $(HOST) --port $(PORT)

# The browser tests (tests/web) drive Debian's headless Chromium; installed here when missing (CI runs
# as root on a fresh machine), with a CJK font so the pages' Chinese renders in screenshots.
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei; }

test: $(STAMP) chromium
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench

# A synthetic county in the database of PATHWAY_DATABASE_URL (default pathway.db): 5 GP teams,
# 2,000 patients, 18 months of care, a day of scheduling; prints keys and URLs, then serves the API.
demo: $(STAMP)
	$(BIN)/pathway demo --base-url http://$(HOST):$(PORT)
	$(BIN)/pathway serve --host $(HOST) --port $(PORT)
