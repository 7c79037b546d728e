"""Markdown tables of the last `make bench` (var/bench/*.json), as docs/performance.md shows them.

.venv/bin/python tests/bench/report.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[2] / "var" / "bench"


def ingest(data: dict[str, Any]) -> str:
    lines = [
        "| database | target | req/s | x bare | x insert | x lean | x tutorial "
        "| p50 ms | p99 ms | 2xx | stored | missing |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in data["rows"]:
        same = {r["target"]: r["rps"] for r in data["rows"] if r["setup"] == row["setup"]}
        ratios = " | ".join(f"{row['rps'] / same[ref]:.2f}" for ref in ("bare", "insert", "lean", "tutorial"))
        stored = f"{row['stored']:,} | {row['missing']}" if "stored" in row else "- | -"
        lines.append(
            f"| {row['setup']} | {row['target']} | {row['rps']:,.0f} | {ratios} "
            f"| {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | {row['ok']:,} | {stored} |"
        )
    return "\n".join(lines)


def pages(data: dict[str, Any]) -> str:
    lines = ["| page | median ms | max ms | queries |", "|---|---:|---:|---:|"]
    lines += [f"| {p['page']} | {p['median_ms']:.1f} | {p['max_ms']:.1f} | {p['queries']} |" for p in data["pages"]]
    return "\n".join(lines)


def exports(data: dict[str, Any]) -> str:
    lines = ["| format | rows | size | time | peak Python memory |", "|---|---:|---:|---:|---:|"]
    for e in data["exports"]:
        peak = f"{e['peak_python_mib']:.1f} MiB" if "peak_python_mib" in e else "-"
        size = f"{e['bytes'] / 2**20:.0f} MiB"
        lines.append(f"| {e['format']} | {e['rows']:,} | {size} | {e['seconds']:.1f} s | {peak} |")
    return "\n".join(lines)


def purge(data: dict[str, Any]) -> str:
    p = data["purge"]
    lines = [
        "| | req/s | p99 ms | worst ms | non-2xx |",
        "|---|---:|---:|---:|---:|",
        f"| before the purge (5 s) | {p['baseline']['rps']:.0f} | {p['baseline']['p99_ms']:.1f} "
        f"| {p['baseline']['max_ms']:.1f} | {p['baseline']['other_status']} |",
        f"| during the purge ({p['purge_seconds']:.0f} s, {p['deleted']:,} of {p['rows_before']:,} rows deleted) "
        f"| {p['rps_during']:.0f} | {p['worst_p99_ms_during']:.1f} | {p['worst_ms_during']:.1f} "
        f"| {p['errors_during']} |",
    ]
    return "\n".join(lines)


def main() -> None:
    for name, render in (("ingest", ingest), ("scale", None)):
        path = OUT / f"{name}.json"
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        if render is not None:
            print(render(data), end="\n\n")
        else:
            print(f"seeded in {data['seeding']['seed_seconds']:.0f} s\n")
            for part in (pages, exports, purge):
                print(part(data), end="\n\n")


if __name__ == "__main__":
    main()
