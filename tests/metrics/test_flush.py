"""The counter thread of a real process: it writes within its interval, a normal exit writes
what is left, and a hard kill loses at most the counts since the last write (the bound the
README states)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.servers import app_env, free_port, manage


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("counters") / "inbox.sqlite3"
    manage(_env(path, "5"), "migrate", "--no-input")
    return path


def _env(path: Path, flush_seconds: str) -> dict[str, str]:
    return app_env(path.parent / "var", free_port(), SQLITE_PATH=str(path), INBOX_COUNTER_FLUSH_SECONDS=flush_seconds)


def _received(path: Path, endpoint_id: int) -> int:
    with sqlite3.connect(path) as db:
        row = db.execute(
            "SELECT value FROM inbox_counter WHERE kind = 'received' AND endpoint_id = ?", (endpoint_id,)
        ).fetchone()
    return int(row[0]) if row else 0


def _run(path: Path, flush_seconds: str, code: str) -> None:
    manage(_env(path, flush_seconds), "shell", "-c", f"from inbox import counters\nimport os, time\n{code}")


def test_its_thread_writes_the_counts_within_its_interval(database: Path) -> None:
    # Then the process dies without any chance to write (os._exit skips atexit).
    _run(database, "0.2", "counters.add('received', 101, 5)\ntime.sleep(1.5)\nos._exit(0)")
    assert _received(database, 101) == 5


def test_a_normal_exit_writes_what_the_thread_had_not_yet(database: Path) -> None:
    _run(database, "60", "counters.add('received', 102, 7)")
    assert _received(database, 102) == 7


def test_a_hard_kill_loses_only_the_counts_since_the_last_write(database: Path) -> None:
    _run(
        database,
        "0.2",
        "counters.add('received', 103, 3)\ntime.sleep(1.5)\ncounters.add('received', 103, 4)\nos._exit(0)",
    )
    assert _received(database, 103) == 3  # the 4 counted after the last write are lost
