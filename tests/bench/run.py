"""`make bench`: the ingest benchmark, then the dashboard at scale, with one summary at the end.

    .venv/bin/python tests/bench/run.py [--messages 1000000] [--duration 10] [--reuse]

Writes var/bench/ingest.json and var/bench/scale.json, prints both tables, and exits
non-zero when a 2xx answer went missing from the database. Needs wrk, PostgreSQL at
127.0.0.1:5432 and Redis at 127.0.0.1:6379 (see README, "Benchmarks").
"""

# ruff: noqa: S603 - runs the two benchmark scripts of this folder

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", default="1000000")
    parser.add_argument("--duration", default="10")
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()
    started = time.monotonic()
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in lines if "model name" in line), platform.processor())
    print(f"machine: {cpu}, {len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}")
    steps = [
        [sys.executable, str(HERE / "ingest.py"), "--duration", args.duration],
        [sys.executable, str(HERE / "scale.py"), "--messages", args.messages, *(["--reuse"] if args.reuse else [])],
    ]
    failed = False
    for command in steps:
        print(f"\n$ {' '.join(Path(part).name if '/' in part else part for part in command)}", flush=True)
        failed |= subprocess.run(command, check=False).returncode != 0
    print("\n$ python report.py", flush=True)
    subprocess.run([sys.executable, str(HERE / "report.py")], check=False)
    print(f"make bench took {time.monotonic() - started:.0f} s")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
