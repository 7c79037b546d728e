"""The dashboard at scale: seed N messages, time every page, export 100,000 rows, purge half.

    .venv/bin/python tests/bench/scale.py [--messages 1000000] [--reuse] [--json var/bench/scale.json]

1. Creates the PostgreSQL database `inbox_bench` (`BENCH_SCALE_DATABASE`) afresh (or, with --reuse, keeps one that
   already holds N messages), migrates it and runs `seed_messages --count N`.
2. Times the dashboard's pages in-process (tests/bench/dashboard.py): server time, queries.
3. Exports the newest 100,000 rows as NDJSON and CSV: time, bytes, peak Python memory.
4. Serves the production setup on that database, loads a token endpoint with wrk at a
   steady rate, and runs `purge_messages` with every seeded endpoint's retention cut to half
   its span, so it deletes about half the table: the worst ingest latency during the purge
   against the same load before it.
"""

# ruff: noqa: S603 - fixed commands of our own; Django is set up once the env is chosen

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
from django import db
from django.utils import timezone

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests import servers
from tests.bench.ingest import PG_ADMIN_URL, REDIS_URL, ROOT, VENV, Setup, free_port, log, production_env, run_wrk

# BENCH_SCALE_DATABASE: a name of its own when several runs share one PostgreSQL server.
DATABASE = os.environ.get("BENCH_SCALE_DATABASE", "inbox_bench")
DATABASE_URL = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + DATABASE
SEED_DAYS = 90


def manage(*args: str, env: dict[str, str]) -> str:
    return servers.manage(env, *args, timeout=1200)


def prepare(messages: int, reuse: bool) -> dict[str, Any]:
    env = {**os.environ, "DJANGO_ENV": "development", "DATABASE_URL": DATABASE_URL}
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone()
        if exists and reuse:
            with psycopg.connect(DATABASE_URL) as conn:
                row = conn.execute("SELECT count(*) FROM inbox_message").fetchone()
            if row and row[0] >= messages:
                log(f"reusing {DATABASE} with {row[0]:,} messages")
                return {"seeded": 0, "seed_seconds": 0.0}
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DATABASE}")
    manage("migrate", "--no-input", "--verbosity", "0", env=env)
    log(f"seeding {messages:,} messages ...")
    started = time.monotonic()
    output = manage("seed_messages", "--count", str(messages), "--days", str(SEED_DAYS), env=env)
    seconds = time.monotonic() - started
    log(output.strip().splitlines()[-1])
    return {"seeded": messages, "seed_seconds": seconds}


def export_figures(client: Any, fmt: str, query: str, trace_memory: bool) -> dict[str, Any]:
    url = f"/messages/export.{fmt}?{query}"
    started = time.perf_counter()
    response = client.get(url)
    size = rows = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        rows += chunk.count(b"\n")
    seconds = time.perf_counter() - started
    figures = {"format": fmt, "rows": rows - (1 if fmt == "csv" else 0), "bytes": size, "seconds": seconds}
    if trace_memory:
        # A second pass under tracemalloc (several times slower): the most Python memory
        # the streaming export held at once.
        tracemalloc.start()
        response = client.get(url)
        for _chunk in response.streaming_content:
            pass
        figures["peak_python_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return figures


def purge_under_load(duration_slice: int, connections: int, dashboard: ModuleType) -> dict[str, Any]:
    Endpoint, Message = dashboard.Endpoint, dashboard.Message  # the models, imported once Django is set up
    with tempfile.TemporaryDirectory(prefix="inbox-bench-") as tmp:
        logdir = Path(tmp)
        port = free_port()
        env = production_env(port, logdir) | {"DATABASE_URL": DATABASE_URL, "REDIS_URL": REDIS_URL}
        env["WEB_CONCURRENCY"] = "2"
        setup = Setup("purge", env, port, workers=2, threads=8, count_sql=None)
        token = json.loads(setup.manage("create_endpoint", f"bench-purge-{port}", "--rate", "100000000/m", "--json"))
        url = f"{setup.base}/hooks/{token['slug']}/"
        lua = {"BENCH_AUTH_HEADER": token["token_header"], "BENCH_AUTH_VALUE": token["token"]}
        seeded = Endpoint.objects.filter(name__startswith="seed-")
        before_rows = Message.objects.filter(endpoint__in=seeded).count()
        with setup.serving(logdir):
            run_wrk(url, 5, connections, **lua)
            baseline = run_wrk(url, duration_slice, connections, **lua)
            log(f"  before the purge: p99 {baseline['p99_ms']:.1f} ms, max {baseline['max_ms']:.1f} ms")
            # Half the seeded span: everything older than 45 of the 90 days goes.
            oldest = Message.objects.filter(endpoint__in=seeded).order_by("received_at").first()
            assert oldest is not None
            span = timezone.now() - oldest.received_at
            seeded.update(retention_days=max(1, span.days // 2))
            started = time.monotonic()
            purge = subprocess.Popen(
                [str(VENV / "python"), "manage.py", "purge_messages"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            slices = []
            while purge.poll() is None:
                slices.append(run_wrk(url, duration_slice, connections, **lua))
                log(f"  during the purge: p99 {slices[-1]['p99_ms']:.1f} ms, max {slices[-1]['max_ms']:.1f} ms")
            purge_seconds = time.monotonic() - started
            output = purge.stdout.read() if purge.stdout else ""
        deleted = int(m.group(1)) if (m := re.search(r"Deleted (\d+) messages", output)) else 0
    return {
        "rows_before": before_rows,
        "deleted": deleted,
        "purge_seconds": purge_seconds,
        "connections": connections,
        "baseline": baseline,
        "during": slices,
        "worst_ms_during": max(s["max_ms"] for s in slices),
        "worst_p99_ms_during": max(s["p99_ms"] for s in slices),
        "rps_during": sum(s["requests"] for s in slices) / sum(s["duration_s"] for s in slices),
        "errors_during": sum(s["other_status"] + s["timeouts"] for s in slices),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument(
        "--reuse", action="store_true", help="Keep inbox_bench after the run, and use it when it holds enough messages."
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--purge-connections", type=int, default=8)
    parser.add_argument("--json", type=Path, default=ROOT / "var" / "bench" / "scale.json")
    args = parser.parse_args()

    seeding = prepare(args.messages, args.reuse)
    os.environ.update(DJANGO_ENV="development", DATABASE_URL=DATABASE_URL, DJANGO_SETTINGS_MODULE="config.settings")
    os.environ.pop("REDIS_URL", None)
    # Importing it sets Django up on the bench database: only now that the environment is chosen.
    dashboard = importlib.import_module("tests.bench.dashboard")

    Message = dashboard.Message  # the model, imported once Django is set up
    pages = dashboard.run(args.repeat)

    client = dashboard.staff_client()
    # The newest 100,000 rows (all of them on a smaller seed).
    cutoff = Message.objects.newest_first().values_list("received_at", flat=True)[min(100_000, args.messages) - 1]
    query = "received_after=" + cutoff.strftime("%Y-%m-%dT%H:%M")
    exports = [export_figures(client, "ndjson", query, True), export_figures(client, "csv", query, False)]
    for export in exports:
        log(
            f"  export {export['format']}: {export['rows']:,} rows, {export['bytes'] / 2**20:.0f} MiB in "
            f"{export['seconds']:.1f} s"
            + (f", peak Python memory {export['peak_python_mib']:.1f} MiB" if "peak_python_mib" in export else "")
        )

    purge = purge_under_load(5, args.purge_connections, dashboard)
    if not args.reuse:
        # Half a million dead rows would keep autovacuum busy for minutes after the run,
        # under whatever is measured next on this machine.
        db.connections.close_all()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    summary = {
        "messages": args.messages,
        "seeding": seeding,
        "pages": pages,
        "exports": exports,
        "purge": purge,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=2, default=str))
    print(
        f"\npurge of {purge['deleted']:,} of {purge['rows_before']:,} rows took {purge['purge_seconds']:.0f} s under "
        f"load ({purge['rps_during']:.0f} req/s, {purge['connections']} connections): worst ingest latency "
        f"{purge['worst_ms_during']:.0f} ms, worst p99 {purge['worst_p99_ms_during']:.0f} ms "
        f"(before: p99 {purge['baseline']['p99_ms']:.0f} ms, max {purge['baseline']['max_ms']:.0f} ms); "
        f"non-2xx or timeouts: {purge['errors_during']}"
    )


if __name__ == "__main__":
    main()
