"""CPU per accepted delivery: web processes, task worker and PostgreSQL, per target.

    .venv/bin/python tests/bench/cpu_system.py [--duration 10] [--rounds 3] [--targets insert,lean,token,hmac]

Requests per second on a machine shared with other work move by ±20 % between runs; the
CPU a delivery costs moves much less. This serves the same production setup as
tests/bench/ingest.py (PostgreSQL + Redis, granian 2 x 16, a task worker, the periodic tasks
queued), loads each target with wrk, and reads from /proc the CPU time spent meanwhile by
the web processes, by the worker and by the PostgreSQL processes of the benchmark's database
(its backends and autovacuum), including a few seconds after the load so the worker's
background work on those rows (the search indexing pass) is counted too. Each figure is
that CPU divided by the 2xx answers; rounds interleave the targets, medians are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.ingest import PG_DATABASE, create_targets, log, postgres_setup, run_wrk  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
TAIL_SECONDS = 4.0  # the indexing pass runs every 2 s: let it catch up with the load's rows


def _stat(pid: str) -> tuple[int, float] | None:
    """(process group, CPU seconds) of a process, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[2]), (int(fields[11]) + int(fields[12])) / TICKS


def _is_bench_postgres(pid: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return cmdline.startswith("postgres: ") and f" {PG_DATABASE} " in f"{cmdline} "


class Sampler:
    """CPU seconds per part (web, worker, postgresql) over an interval, polling /proc so
    that short-lived processes (an autovacuum worker) are counted up to their last sample."""

    def __init__(self, groups: dict[int, str]) -> None:
        self.groups = groups
        self.first: dict[str, tuple[str, float]] = {}
        self.last: dict[str, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = False

    def _poll(self) -> None:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            stat = _stat(pid)
            if stat is None:
                continue
            part = self.groups.get(stat[0])
            if part is None and _is_bench_postgres(pid):
                part = "postgresql"
            if part is None:
                continue
            # A process already running counts from now, one that starts later from its start.
            self.first.setdefault(pid, (part, 0.0 if self._started else stat[1]))
            self.last[pid] = (part, stat[1])

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self._poll()

    def __enter__(self) -> Sampler:
        self._poll()
        self._started = True
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._poll()

    def seconds(self) -> dict[str, float]:
        out = {"web": 0.0, "worker": 0.0, "postgresql": 0.0}
        for pid, (part, last) in self.last.items():
            out[part] += last - self.first[pid][1]
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--targets", default="insert,lean,token,hmac")
    parser.add_argument("--json", type=Path, default=ROOT / "var" / "bench" / "cpu.json")
    args = parser.parse_args()
    wanted = args.targets.split(",")

    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="inbox-bench-") as tmp:
        logdir = Path(tmp)
        setup = postgres_setup(logdir)
        targets = [t for t in create_targets(setup) if t[0] in wanted]
        with setup.serving(logdir):
            web, worker = setup.services
            groups = {web.process.pid: "web", worker.process.pid: "worker"}
            for round_number in range(args.rounds):
                for name, path, lua_env, _count_sql, _params in targets:
                    url = setup.base + path
                    if round_number == 0:
                        run_wrk(url, 2, args.connections, **lua_env)
                    time.sleep(TAIL_SECONDS)
                    with Sampler(groups) as sampler:
                        figures = run_wrk(url, args.duration, args.connections, **lua_env)
                        time.sleep(TAIL_SECONDS)
                    cpu = sampler.seconds()
                    per = {part: seconds * 1e6 / figures["ok"] for part, seconds in cpu.items()}
                    per["total"] = sum(per.values())
                    runs.append({"target": name, "round": round_number, "rps": figures["rps"], "us": per})
                    log(
                        f"  {name:7} {figures['rps']:7.0f} req/s  CPU µs per 2xx: web {per['web']:6.0f}"
                        f"  worker {per['worker']:5.0f}  postgresql {per['postgresql']:5.0f}  total {per['total']:6.0f}"
                    )
    print("| target | web µs | worker µs | PostgreSQL µs | total µs (runs) |")
    print("|---|---:|---:|---:|---|")
    summary = []
    for name in dict.fromkeys(run["target"] for run in runs):
        mine = [run["us"] for run in runs if run["target"] == name]
        row = {part: statistics.median(m[part] for m in mine) for part in ("web", "worker", "postgresql", "total")}
        row["total_all"] = [round(m["total"]) for m in mine]
        summary.append({"target": name} | row)
        print(
            f"| {name} | {row['web']:,.0f} | {row['worker']:,.0f} | {row['postgresql']:,.0f} "
            f"| {row['total']:,.0f} ({', '.join(str(t) for t in row['total_all'])}) |"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"rows": summary, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
