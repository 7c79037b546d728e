"""CPU per accepted delivery, in one thread, in-process (steadier than req/s on a shared machine).

    .venv/bin/python tests/bench/cpu.py [--rounds 5] [--requests 2000] [--sqlite]

Sets the production settings up in this process (DJANGO_ENV=production, PostgreSQL and Redis
by default, tests/bench/settings.py's reference views), creates the database afresh, and calls
the project's WSGI application (tests/bench/wsgi.py: the receiver's lean path in front of
Django) directly, without a server or sockets, one request after another. For each round and
target it reports the process's CPU time (every thread of it: a background thread the
receiver starts counts too) divided by the requests, in µs:

- insert   one raw durable INSERT per request (the floor in docs/architecture.md)
- lean     the same INSERT, served with only the security and common middleware
- token    the real receiver, shared-token endpoint (rate limit + verify + dedupe + store)

Rounds interleave the targets, so a neighbour's load spreads over both. The database server's
own CPU is not counted. Environment: BENCH_PG_ADMIN_URL (a database to connect to for
CREATE DATABASE), BENCH_PG_DATABASE (dropped and created; default inbox_bench_cpu),
BENCH_REDIS_URL (default redis://127.0.0.1:6379/14; the db is flushed).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import django
import psycopg
import redis
from django.core.management import call_command
from django.db import connections

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
PG_DATABASE = os.environ.get("BENCH_PG_DATABASE", "inbox_bench_cpu")
# The same body and Redis database as the ingest benchmark, so their figures compare.
from tests.bench.ingest import BODY as BODY_TEXT  # noqa: E402 - once the project is on the path
from tests.bench.ingest import REDIS_URL  # noqa: E402

BODY = BODY_TEXT.encode()


def configure(sqlite: bool, var_dir: Path) -> None:
    for key in ("DATABASE_URL", "REDIS_URL", "SQLITE_PATH"):
        os.environ.pop(key, None)
    os.environ.update(
        {
            "DJANGO_ENV": "production",
            "DJANGO_SETTINGS_MODULE": "tests.bench.settings",
            "SECRET_KEY": "bench-" + "k" * 60,
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "VAR_DIR": str(var_dir),
            "INBOX_LOG_LEVEL": "WARNING",
        }
    )
    if sqlite:
        os.environ["SQLITE_PATH"] = str(var_dir / "bench.sqlite3")
        return
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    redis.Redis.from_url(REDIS_URL).flushdb()
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    os.environ["DATABASE_URL"] = f"{base}/{PG_DATABASE}"
    os.environ["REDIS_URL"] = REDIS_URL


def environ_for(path: str, headers: dict[str, str]) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(BODY)),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(BODY),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    for name, value in headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


def measure(app: Callable[..., Any], path: str, headers: dict[str, str], requests: int) -> float:
    """µs of process CPU per request, every answer checked to be 2xx."""
    statuses: list[str] = []

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        statuses.append(status)

    started = time.process_time()
    for _ in range(requests):
        body = app(environ_for(path, headers), start_response)
        b"".join(body)
        if hasattr(body, "close"):
            body.close()
    elapsed = time.process_time() - started
    bad = [s for s in statuses if not s.startswith("2")]
    if bad:
        raise SystemExit(f"{path}: {len(bad)} answers were not 2xx, e.g. {bad[0]}")
    return elapsed / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--sqlite", action="store_true", help="the embedded default instead of PostgreSQL + Redis")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="inbox-cpu-") as tmp:
        configure(args.sqlite, Path(tmp))
        django.setup()
        # Only once Django is set up with the environment above: they import the models.
        from tests.bench.views import create_raw_table  # noqa: PLC0415
        from tests.bench.wsgi import application  # noqa: PLC0415

        call_command("migrate", verbosity=0)
        create_raw_table()
        out = io.StringIO()
        call_command("create_endpoint", "bench-token", "--rate", "100000000/m", "--json", stdout=out)
        token = json.loads(out.getvalue())
        receiver = "/hooks/" + token["slug"] + "/"
        targets = {
            "insert": ("/bench/insert/", {}),
            "lean": ("/bench/lean/insert/", {}),
            "token": (receiver, {token["token_header"]: token["token"]}),
        }
        for path, headers in targets.values():
            measure(application, path, headers, 200)  # warm-up: caches, connections, imports
        results: dict[str, list[float]] = {name: [] for name in targets}
        for round_ in range(args.rounds):
            for name, (path, headers) in targets.items():
                results[name].append(measure(application, path, headers, args.requests))
            print(
                f"round {round_ + 1}: " + ", ".join(f"{n} {v[-1]:,.0f} µs" for n, v in results.items()),
                file=sys.stderr,
                flush=True,
            )
        setup = "sqlite" if args.sqlite else "postgresql+redis"
        print(f"CPU µs per accepted delivery ({setup}, {args.rounds} rounds of {args.requests}):")
        for name, values in results.items():
            print(
                f"  {name:7} median {statistics.median(values):7,.0f}  min {min(values):7,.0f}  max {max(values):7,.0f}"
            )
        ratios = [t / i for t, i in zip(results["token"], results["insert"], strict=True)]
        low, mid, high = min(ratios), statistics.median(ratios), max(ratios)
        print(f"  token / insert per round: median {mid:.2f} (min {low:.2f}, max {high:.2f})")
        # The receiver's counts, written now: the process's exit would try after the
        # database below is dropped, and log a failed write.
        from inbox import counters  # noqa: PLC0415 - only once Django is set up

        counters.flush()
        with contextlib.suppress(Exception):
            connections.close_all()
    if not args.sqlite:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')


if __name__ == "__main__":
    main()
