# make run   — set everything up and serve on http://127.0.0.1:8000 (SQLite under var/, with the worker)
# make test  — install and run the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export DJANGO_SETTINGS_MODULE := config.settings

.PHONY: run test bench lint typecheck check install clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "Python 3.12+ is required (found " + sys.version.split()[0] + "); see README")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

# bin/run.py writes the git-ignored env file var/.env (a generated SECRET_KEY,
# DJANGO_ENV=development, FORWARD_ALLOW_PRIVATE=true, the PORT served) that config/settings.py
# reads, so every manage.py command in the README works afterwards with nothing exported.
# It migrates quietly, starts granian (one process) and the task worker in process groups of
# their own, and stops both on one Ctrl+C.
run: export PORT := $(PORT)
run: install
	@$(PY) bin/run.py

test: export DJANGO_ENV ?= test
test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy inbox config bin/run.py
	$(PY) -m pytest $(PYTEST_ARGS)

# Benchmarks (not part of `make test`): ingest against reference views, and the dashboard,
# export and purge on BENCH_MESSAGES seeded messages. Needs wrk, PostgreSQL and Redis.
BENCH_MESSAGES ?= 1000000
bench: install
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq wrk >/dev/null; } \
		|| { echo "wrk is missing: apt-get install -y wrk"; exit 1; }
	$(PY) tests/bench/run.py --messages $(BENCH_MESSAGES) $(BENCH_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: export DJANGO_ENV ?= test
typecheck: install
	$(VENV)/bin/mypy inbox config bin/run.py

clean:
	rm -rf $(VENV) var/static
