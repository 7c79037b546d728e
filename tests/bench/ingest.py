"""Ingest benchmark: the real receiver against reference views, on one server, in one run.

    .venv/bin/python tests/bench/ingest.py [--duration 10] [--connections 32] [--json var/bench/ingest.json]

Starts the production setup (DJANGO_ENV=production, PostgreSQL, Redis, granian with
WEB_CONCURRENCY=2 web processes of 16 threads (the README's production command; --threads
to change it), and a task worker), loads each target with
`wrk` on 127.0.0.1, then does the same on the embedded SQLite default (one web process).
Targets, on the same server:

- bare       a Django view that reads the body and answers 200 (the server's own cost)
- insert     one raw durable INSERT per request (one round trip; the floor in docs/architecture.md)
- lean       the same INSERT served by Django with only the security and common middleware
- tutorial   the typical tutorial receiver: ORM lookup, ORM create, delete old rows
- token      the real receiver, shared-token endpoint (rate limit + verify + dedupe + store)
- hmac       the real receiver, GitHub preset (HMAC-SHA256 over the body, X-GitHub-Delivery dedupe)

After each run it counts the stored rows: every 2xx must be stored (missing == 0); a few
more rows than 2xx answers can exist when wrk stops with requests in flight (it closes the
connection; the server still stores and answers), at most one per connection.
"""

# ruff: noqa: S603 - the benchmark runs its own fixed commands (granian, manage.py, wrk)

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import hmac
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import redis

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests import servers  # noqa: E402 - once the project is on the path
from tests.servers import free_port  # noqa: E402

VENV = ROOT / ".venv" / "bin"
LUA = Path(__file__).with_name("post.lua")
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/test")
PG_DATABASE = os.environ.get("BENCH_PG_DATABASE", "inbox_bench_ingest")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
BODY = json.dumps(
    {
        "id": "evt_1Nbench",
        "type": "invoice.paid",
        "created": 1700000000,
        "data": {"object": {"id": "in_1Nbench", "amount_paid": 4200, "currency": "eur", "status": "paid"}},
    }
)
GITHUB_SECRET = "bench-github-secret-0123456789"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass
class Setup:
    """One running server (web processes + task worker) and how to count what it stored."""

    name: str
    env: dict[str, str]
    port: int
    workers: int
    threads: int
    count_sql: Any  # callable(sql, params) -> int
    services: list[servers.Service] = dataclasses.field(default_factory=list)  # web, worker while serving

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def manage(self, *args: str) -> str:
        return servers.manage(self.env, *args, timeout=600)

    @contextlib.contextmanager
    def serving(self, logdir: Path) -> Iterator[None]:
        web = servers.start_web(
            self.env,
            self.port,
            logdir / f"{self.name}-web.log",
            self.workers,
            self.threads,
            app="tests.bench.wsgi:application",
        )
        worker = servers.start_worker(self.env, logdir / f"{self.name}-worker.log")
        self.services = [web, worker]
        try:
            servers.wait_healthy(self.port, web, timeout=30)
            yield
        finally:
            web.stop()
            worker.stop()


def run_wrk(url: str, duration: int, connections: int, **lua_env: str) -> dict[str, Any]:
    # A fresh run id per wrk run keeps delivery ids unique across runs (a repeat would be
    # answered 200 as a duplicate and not stored, which would look like a loss).
    env = {**os.environ, "BENCH_BODY": BODY, "BENCH_RUN_ID": uuid.uuid4().hex, **lua_env}
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--timeout", "5s", "-s", str(LUA), url]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"wrk failed on {url}: {result.stdout}{result.stderr}")
    line = next(line for line in result.stdout.splitlines() if line.startswith("BENCH "))
    figures: dict[str, Any] = json.loads(line[len("BENCH ") :])
    figures["rps"] = figures["requests"] / figures["duration_s"]
    return figures


def github_signature() -> str:
    return "sha256=" + hmac.new(GITHUB_SECRET.encode(), BODY.encode(), hashlib.sha256).hexdigest()


Target = tuple[str, str, dict[str, str], str, list[Any]]


def create_targets(setup: Setup) -> list[Target]:
    """Migrate, create the endpoints and queue the periodic tasks (as `make run` does: the
    worker's background work runs under the load too); each target's path, wrk environment
    and how to count its rows."""
    setup.manage("migrate", "--no-input", "--verbosity", "0")
    setup.manage("schedule_tasks")
    setup.manage("shell", "-c", "from tests.bench.views import create_raw_table; create_raw_table()")
    rate = "100000000/m"  # the limiter runs on every request; it must not refuse the load
    token = json.loads(setup.manage("create_endpoint", "bench-token", "--rate", rate, "--json"))
    hmac_endpoint = json.loads(
        setup.manage(
            "create_endpoint", "bench-github", "--auth", "github", "--secret", GITHUB_SECRET, "--rate", rate, "--json"
        )
    )
    tutorial = json.loads(setup.manage("create_endpoint", "bench-tutorial", "--auth", "none", "--json"))

    targets: list[Target] = [
        ("bare", "/bench/bare/", {}, "", []),
        ("insert", "/bench/insert/", {}, "SELECT count(*) FROM bench_raw_insert", []),
        ("lean", "/bench/lean/insert/", {}, "SELECT count(*) FROM bench_raw_insert", []),
        (
            "tutorial",
            f"/bench/tutorial/{tutorial['slug']}/",
            {},
            "SELECT count(*) FROM inbox_message WHERE endpoint_id = %s",
            [tutorial["id"]],
        ),
        (
            "token",
            f"/hooks/{token['slug']}/",
            {"BENCH_AUTH_HEADER": token["token_header"], "BENCH_AUTH_VALUE": token["token"]},
            "SELECT count(*) FROM inbox_message WHERE endpoint_id = %s",
            [token["id"]],
        ),
    ]
    targets.append(
        (
            "hmac",
            f"/hooks/{hmac_endpoint['slug']}/",
            {
                "BENCH_AUTH_HEADER": "X-Hub-Signature-256",
                "BENCH_AUTH_VALUE": github_signature(),
                "BENCH_ID_HEADER": "X-GitHub-Delivery",
            },
            "SELECT count(*) FROM inbox_message WHERE endpoint_id = %s",
            [hmac_endpoint["id"]],
        )
    )
    return targets


def bench_setup(setup: Setup, args: argparse.Namespace, logdir: Path) -> list[dict[str, Any]]:
    """Create the endpoints, serve, load every target in turn; one result row per target."""
    targets = create_targets(setup)
    rows = []
    with setup.serving(logdir):
        # Rounds interleave the targets on one server, so a neighbour's load on the shared
        # machine falls on all of them alike; the report takes each target's median.
        for round_number, (name, path, lua_env, count_sql, params) in (
            (r, t) for r in range(args.rounds) for t in targets
        ):
            url = setup.base + path
            if round_number == 0:
                run_wrk(url, args.warmup, args.connections, **lua_env)
            time.sleep(1)  # let the warm-up's last requests land before counting
            before = setup.count_sql(count_sql, params) if count_sql else 0
            figures = run_wrk(url, args.duration, args.connections, **lua_env)
            if count_sql:
                time.sleep(1)  # requests wrk cut off may still be finishing on the server
                stored = setup.count_sql(count_sql, params) - before
                figures["stored"] = stored
                figures["missing"] = max(0, figures["ok"] - stored)
                # Rows beyond the 2xx count can only be requests wrk cut off in flight: at
                # most one per connection. More would mean a delivery stored twice.
                figures["extra"] = max(0, stored - figures["ok"])
            figures.update(setup=setup.name, target=name, round=round_number)
            rows.append(figures)
            log(
                f"  {setup.name:10} {name:9} {figures['rps']:8.0f} req/s  p50 {figures['p50_ms']:6.1f} ms"
                f"  p99 {figures['p99_ms']:6.1f} ms  2xx {figures['ok']:6d}  stored {figures.get('stored', '-')}"
            )
    return rows


# The README's production command: 2 processes of 16 threads on 2 cores (docs/performance.md,
# "Server sizing": the receiver's group commit fills larger batches with more threads waiting).
POSTGRES_THREADS = 16


def postgres_setup(logdir: Path, threads: int = POSTGRES_THREADS) -> Setup:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {PG_DATABASE}")
    redis.Redis.from_url(REDIS_URL).flushdb()
    database_url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + PG_DATABASE
    port = free_port()
    env = production_env(port, logdir) | {"DATABASE_URL": database_url, "REDIS_URL": REDIS_URL, "WEB_CONCURRENCY": "2"}

    def count_sql(sql: str, params: list[Any]) -> int:
        with psycopg.connect(database_url) as conn:
            row = conn.execute(sql, params).fetchone()
            return int(row[0]) if row else 0

    return Setup("postgresql", env, port, workers=2, threads=threads, count_sql=count_sql)


def sqlite_setup(logdir: Path) -> Setup:
    path = logdir / "bench.sqlite3"
    for leftover in logdir.glob("bench.sqlite3*"):
        leftover.unlink()
    port = free_port()
    env = production_env(port, logdir) | {"SQLITE_PATH": str(path), "WEB_CONCURRENCY": "1"}

    def count_sql(sql: str, params: list[Any]) -> int:
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
            return int(conn.execute(sql.replace("%s", "?"), params).fetchone()[0])

    return Setup("sqlite", env, port, workers=1, threads=8, count_sql=count_sql)


def production_env(port: int, logdir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_URL", "REDIS_URL"))}
    return env | {
        "DJANGO_ENV": "production",
        "DJANGO_SETTINGS_MODULE": "tests.bench.settings",
        "SECRET_KEY": "bench-" + "k" * 60,
        "ALLOWED_HOSTS": "127.0.0.1",
        "PORT": str(port),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        # wrk speaks plain HTTP to 127.0.0.1; production would sit behind TLS.
        "SECURE_SSL_REDIRECT": "false",
        "VAR_DIR": str(logdir),
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| setup | target | req/s | ratio to bare | p50 ms | p99 ms | 2xx | stored | missing |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        bare = next(r for r in rows if r["setup"] == row["setup"] and r["target"] == "bare")
        lines.append(
            f"| {row['setup']} | {row['target']} | {row['rps']:,.0f} | {row['rps'] / bare['rps']:.2f} "
            f"| {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | {row['ok']:,} | {row.get('stored', '-')} "
            f"| {row.get('missing', '-')} |"
        )
    return "\n".join(lines)


def medians(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (setup, target): the median of its rounds' rates and latencies, the sums
    of their counts."""
    out = []
    for key in dict.fromkeys((row["setup"], row["target"]) for row in rows):
        runs = [row for row in rows if (row["setup"], row["target"]) == key]
        merged: dict[str, Any] = {"setup": key[0], "target": key[1], "rounds": len(runs)}
        for field in ("rps", "p50_ms", "p99_ms"):
            merged[field] = statistics.median(run[field] for run in runs)
            merged[field + "_all"] = [round(run[field], 1) for run in runs]
        for field in ("ok", "stored", "missing", "extra"):
            if field in runs[0]:
                merged[field] = sum(run[field] for run in runs)
        out.append(merged)
    return out


def ratios(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """The targets (docs/performance.md), per setup: each receiver against the references."""
    out = {}
    for setup in sorted({row["setup"] for row in rows}):
        by = {row["target"]: row for row in rows if row["setup"] == setup}
        figures = {}
        for receiver in ("token", "hmac"):
            figures |= {
                f"{receiver}_vs_insert": by[receiver]["rps"] / by["insert"]["rps"],
                f"{receiver}_vs_lean": by[receiver]["rps"] / by["lean"]["rps"],
                f"{receiver}_vs_tutorial": by[receiver]["rps"] / by["tutorial"]["rps"],
                f"{receiver}_p99_ms": by[receiver]["p99_ms"],
            }
        out[setup] = figures
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds; medians are reported")
    parser.add_argument("--json", type=Path, default=ROOT / "var" / "bench" / "ingest.json")
    parser.add_argument("--only", choices=["postgresql", "sqlite"])
    parser.add_argument("--threads", type=int, default=POSTGRES_THREADS, help="threads per PostgreSQL web process")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="inbox-bench-") as tmp:
        logdir = Path(tmp)
        if args.only in (None, "postgresql"):
            rows += bench_setup(postgres_setup(logdir, args.threads), args, logdir)
        if args.only in (None, "sqlite"):
            rows += bench_setup(sqlite_setup(logdir), args, logdir)

    rounds, rows = rows, medians(rows)
    summary = {
        "machine": {"cpus": os.cpu_count(), "platform": sys.platform},
        "duration_s": args.duration,
        "connections": args.connections,
        "postgresql_threads": args.threads,
        "rounds": args.rounds,
        "rows": rows,
        "runs": rounds,
        "ratios": ratios(rows),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=2))
    print(table(rows))
    for setup, figures in summary["ratios"].items():
        for receiver in ("token", "hmac"):
            print(
                f"{setup}: {receiver} receiver = {figures[f'{receiver}_vs_insert']:.2f}x raw INSERT, "
                f"{figures[f'{receiver}_vs_lean']:.2f}x lean INSERT, "
                f"{figures[f'{receiver}_vs_tutorial']:.2f}x tutorial, "
                f"p99 {figures[f'{receiver}_p99_ms']:.1f} ms"
            )
    if any(row.get("missing") for row in rows):
        raise SystemExit("FAIL: some 2xx answers were not stored")
    if any(run.get("extra", 0) > args.connections for run in rounds):
        raise SystemExit("FAIL: more rows stored than answers plus requests in flight")


if __name__ == "__main__":
    main()
