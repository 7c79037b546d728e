"""`make run`: set up the embedded default, then serve it with its task worker until Ctrl+C.

1. Writes the local env file `var/.env` (git-ignored) on the first run: a generated SECRET_KEY,
   DJANGO_ENV=development, FORWARD_ALLOW_PRIVATE=true; on every run the PORT it serves, and a
   generated METRICS_TOKEN (for /metrics) when the file has none.
   config/settings.py reads that file, so every `manage.py` command the README shows works
   afterwards with nothing exported, and prints URLs with the port actually served.
2. Migrates, collects static files and queues the periodic tasks, quietly.
3. Starts granian and the worker, waits until /healthz answers, then says where it serves and
   prints the staff login.
4. One Ctrl+C (or SIGTERM) stops both and exits 0.

Why a script and not a shell recipe: a terminal's Ctrl+C goes to every process in the
foreground process group. Granian's master and its worker process then both get SIGINT, and
the worker's own shutdown races the master's: we saw it hang for good or die with SIGSEGV
(make then printed "Segmentation fault"). Here the web server and the worker run in process
groups of their own, so Ctrl+C reaches only this script, which stops them in order: SIGTERM to
granian's master (which stops its workers) and to the task worker, SIGKILL to whatever is left
after a few seconds.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType

from dotenv import dotenv_values, set_key

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
STOP_SECONDS = 5.0


def var_dir() -> Path:
    # The same rule as config/settings.py: VAR_DIR from the environment, else var/.
    return Path(os.environ.get("VAR_DIR", ROOT / "var"))


def write_env_file(directory: Path, port: int) -> Path:
    """Create var/.env once (keeping an existing one), record the port served in it, and give
    it a METRICS_TOKEN if it has none (a file written before /metrics existed gets one too)."""
    path = directory / ".env"
    directory.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # A clone that ran before this file existed kept its key in var/secret_key; token
        # digests and encrypted signing secrets depend on it, so it carries over.
        legacy = directory / "secret_key"
        key = legacy.read_text().strip() if legacy.exists() else secrets.token_urlsafe(50)
        text = (
            "# Written by `make run` for local development; not in git. Real environment\n"
            "# variables win over these. Production sets its own (see README, Production).\n"
            f"SECRET_KEY={key}\n"
            "DJANGO_ENV=development\n"
            "FORWARD_ALLOW_PRIVATE=true\n"
            f"PORT={port}\n"
            f"METRICS_TOKEN={secrets.token_urlsafe(32)}\n"
        )
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
        return path
    values = dotenv_values(path)
    if values.get("PORT") != str(port):
        set_key(path, "PORT", str(port), quote_mode="never")
    if not values.get("METRICS_TOKEN"):
        set_key(path, "METRICS_TOKEN", secrets.token_urlsafe(32), quote_mode="never")
    return path


def manage(*args: str, env: dict[str, str]) -> str:
    """Run a manage.py command; its stdout. Exits with the command's output when it fails."""
    result = subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        sys.exit(f"manage.py {' '.join(args)} failed (exit {result.returncode})")
    return result.stdout


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


class Stop(Exception):
    """Raised by the signal handler to leave the wait loop."""


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each process, wait, then SIGKILL each process group that is still there."""
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
    deadline = time.monotonic() + STOP_SECONDS
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.01, deadline - time.monotonic()))
    for process in processes:
        # Its group: granian's worker processes could outlive a master that was killed.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def main() -> int:
    port = int(os.environ.get("PORT") or 8000)
    # Granian warns when threads exceed 2 x cores + 1; more would not run Python any faster.
    threads = int(os.environ.get("WEB_THREADS") or min(8, 2 * (os.cpu_count() or 1) + 1))
    directory = var_dir()
    write_env_file(directory, port)
    env = dict(os.environ)
    env["PORT"] = str(port)
    # One web process: the process-local rate-limit cache is correct exactly then (inbox.E001).
    env["WEB_CONCURRENCY"] = "1"
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    env.setdefault("PYTHONUNBUFFERED", "1")

    manage("migrate", "--no-input", "--verbosity", "0", env=env)
    manage("collectstatic", "--no-input", "--verbosity", "0", env=env)
    manage("schedule_tasks", env=env)
    login = manage("ensure_staff", env=env)

    def interrupted(signum: int, frame: FrameType | None) -> None:
        raise Stop

    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    processes: list[subprocess.Popen[bytes]] = []
    web = [sys.executable, "-m", "granian", "--interface", "wsgi", "--no-ws", "--host", HOST, "--port", str(port)]
    web += ["--workers", "1", "--blocking-threads", str(threads)]
    web += ["--static-path-route", "/static", "--static-path-mount", str(directory / "static")]
    web += ["config.wsgi:application"]
    worker = [sys.executable, str(ROOT / "manage.py"), "db_worker", "--no-reload", "--interval", "0.2"]
    try:
        for command in (worker, web):
            # process_group=0: a group of its own, out of reach of the terminal's Ctrl+C.
            processes.append(subprocess.Popen(command, cwd=ROOT, env=env, process_group=0))  # noqa: S603
        deadline = time.monotonic() + 60
        while not healthy(port):
            if any(process.poll() is not None for process in processes) or time.monotonic() > deadline:
                print(f"The web server or the worker did not start (is port {port} free?)", file=sys.stderr)
                stop(processes)
                return 1
            time.sleep(0.1)
        print(f"\nServing http://{HOST}:{port}/ — log in at http://{HOST}:{port}/accounts/login/ (Ctrl+C stops)")
        print(login, end="", flush=True)
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
        print("The web server or the worker exited; stopping.", file=sys.stderr)
        stop(processes)
        return 1
    except Stop:

        def kill_now(signum: int, frame: FrameType | None) -> None:
            # A second Ctrl+C while stopping: no more waiting.
            for process in processes:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)

        signal.signal(signal.SIGINT, kill_now)
        print("\nStopping the web server and the worker…", flush=True)
        stop(processes)
        print("Stopped.", flush=True)
        return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        # Ctrl+C during the setup steps, before anything was started.
        sys.exit("\nInterrupted.")
