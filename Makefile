# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
# `make test` and `make test-fast` run pytest in TEST_WORKERS processes (pytest-xdist; each has its own test
# database); a test module stays on one worker, so module and session fixtures are built once.
# TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 2
XDIST := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder)

.PHONY: install run dev test test-fast test-faults lint format bench migrations-check clean-data

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (found %s)" % sys.version.split()[0])'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## Web server (gunicorn), Celery worker and beat, on the embedded PostgreSQL unless DATABASE_URL is set.
## Generates this installation's keys under .data/ on first start; SIGTERM or Ctrl-C stops everything.
run: install
	$(PY) manage.py runstack

## Django's development server with auto-reload (no worker; tasks run when a worker is started separately).
dev: install
	$(PY) manage.py migrate
	$(PY) manage.py demo_load
	DEBUG=true $(PY) manage.py runserver $${PORT:-8000}

## The whole suite (browser tests included), on the embedded PostgreSQL unless DATABASE_URL is set.
test: install
	@scripts/ensure-chromium
	MET_ALLOW_INSECURE_SECRET=true $(PY) manage.py makemigrations --check --dry-run > /dev/null || (echo "Missing migrations: run manage.py makemigrations" && exit 1)
	$(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

## Everything but browser tests and the tests that start whole stacks of real processes.
test-fast: install
	$(PY) -m pytest $(XDIST) -m "not browser and not processes" $(PYTEST_ARGS)

## The fault-injection suite alone (tests/faults/: database and broker killed under load; `make test` runs it too).
test-faults: install
	$(PY) -m pytest -m faults $(PYTEST_ARGS)

## ruff, ruff format, mypy and import-linter (apps and layers depend downwards only; no cycles).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
# mypy's Django plugin imports the settings: a DATABASE_URL keeps it from starting (or racing a test run
# for) the embedded PostgreSQL; it never connects.
	MET_ALLOW_INSECURE_SECRET=true DATABASE_URL=$${DATABASE_URL:-postgresql://localhost/mypy-connects-to-no-database} $(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports    # the layering contracts in pyproject.toml ([tool.importlinter])

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## Benchmarks (not tests): prints a table of measured figures.
bench: install
	$(PY) bench/run.py

clean-data:
	rm -rf .data
