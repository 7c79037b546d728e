# make run   — set everything up and serve on http://127.0.0.1:8000 (SQLite under var/, with the worker)
# make test  — install and run the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
WEB_THREADS ?= 8
export DJANGO_SETTINGS_MODULE := config.settings

.PHONY: run test bench lint typecheck check install clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "Python 3.12+ is required (found " + sys.version.split()[0] + "); see README")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

# One web process (threads share it) and one task worker; the process-local rate-limit
# cache is correct exactly because there is one web process (check inbox.E001).
run: export DJANGO_ENV ?= development
run: export WEB_CONCURRENCY = 1
# Local development forwards to local catchers (127.0.0.1); production leaves this off.
run: export FORWARD_ALLOW_PRIVATE ?= true
run: export PORT := $(PORT)
run: install
	$(PY) manage.py migrate --no-input
	$(PY) manage.py collectstatic --no-input --verbosity 0
	$(PY) manage.py ensure_staff
	$(PY) manage.py schedule_tasks
	@echo "Serving http://127.0.0.1:$(PORT)/ — log in at http://127.0.0.1:$(PORT)/accounts/login/ (Ctrl+C stops)"
	@trap 'kill 0' EXIT INT TERM; \
	$(PY) manage.py db_worker --no-reload --interval 0.2 & \
	$(VENV)/bin/granian --interface wsgi --host 127.0.0.1 --port $(PORT) --workers 1 \
		--blocking-threads $(WEB_THREADS) --static-path-route /static --static-path-mount var/static \
		config.wsgi:application

test: export DJANGO_ENV ?= test
test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy inbox config
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
	$(VENV)/bin/mypy inbox config

clean:
	rm -rf $(VENV) var/static
