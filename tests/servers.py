"""Run the real thing for black-box tests: granian, the task worker, and a cuttable TCP proxy.

The reliability tests (tests/test_reliability.py) talk to the app only through HTTP and the
database, the way a provider and an operator see it, so that they hold whatever the code
inside does. Each service runs in its own session (process group), so a test can
`kill -9` a whole granian (its master and workers) the way a crash or the OOM killer would.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"


def free_port() -> int:
    """A free port below the kernel's ephemeral range.

    Servers here are restarted on the same port (granian after a kill -9, a proxy after a
    cut). A port from the ephemeral range could meanwhile be taken as the local end of some
    outgoing connection, and the restart would fail; ports below it are only ever taken
    by an explicit bind.
    """
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    first, last = max(1025, low - 12000), low - 1
    if ports := os.environ.get("TEST_PORTS"):
        # A range of its own (e.g. TEST_PORTS=8300-8399) when several runs share a machine.
        first, last = (int(part) for part in ports.split("-", 1))
    rng = random.Random()
    for _ in range(200):
        port = rng.randint(first, last)
        with socket.socket() as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def app_env(var_dir: Path, port: int, **extra: str) -> dict[str, str]:
    """The environment of a server started the way `make run` starts one, plus `extra`.

    Built from scratch rather than inherited, so that the test runner's own DATABASE_URL,
    REDIS_URL or DJANGO_ENV=test never leak into the app under test.
    """
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(var_dir)),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_ENV": "development",
        "VAR_DIR": str(var_dir),
        "PORT": str(port),
        "FORWARD_ALLOW_PRIVATE": "true",
        "WEB_CONCURRENCY": "1",
    }
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 60) -> str:
    """Run `manage.py ARGS` in `env`; its stdout. Raises with stderr when it fails."""
    result = subprocess.run(  # noqa: S603 - our own manage.py with arguments chosen by the tests
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result.stdout


def create_endpoint(env: dict[str, str], name: str, *args: str) -> dict[str, Any]:
    """`create_endpoint NAME ARGS --json`, parsed."""
    data: dict[str, Any] = json.loads(manage(env, "create_endpoint", name, "--json", *args))
    return data


class Service:
    """A process in its own session, logging to a file; killed by process group."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - our own binaries with arguments chosen by the tests
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def _signal_group(self, signum: int) -> None:
        # The group this Popen created (start_new_session): its pid is the group id.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        """`kill -9` the whole process group: no shutdown handler, no cleanup, like a crash."""
        self._signal_group(signal.SIGKILL)
        self.process.wait(timeout=10)
        self._log.close()

    def stop(self) -> None:
        """Ask politely (SIGTERM), then kill whatever is left."""
        if self.alive:
            self._signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        # Granian's workers may outlive a master that exited: end the whole group either way.
        self._signal_group(signal.SIGKILL)
        self.process.wait(timeout=10)
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_web(
    env: dict[str, str],
    port: int,
    log_path: Path,
    workers: int = 1,
    threads: int = 8,
    *,
    app: str = "config.wsgi:application",
) -> Service:
    """Granian as `make run` starts it."""
    command = [
        str(BIN / "granian"),
        "--interface",
        "wsgi",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--blocking-threads",
        str(threads),
        app,
    ]
    return Service("web", command, env, log_path)


def start_worker(env: dict[str, str], log_path: Path) -> Service:
    """The task worker as `make run` starts it."""
    command = [sys.executable, str(ROOT / "manage.py"), "db_worker", "--no-reload", "--interval", "0.2"]
    return Service("worker", command, env, log_path)


def get(port: int, path: str, timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def post(
    port: int, path: str, body: bytes, headers: dict[str, str] | None = None, timeout: float = 10
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def wait_healthy(port: int, service: Service | None = None, timeout: float = 20) -> None:
    """Until /healthz answers 200; fails early when the service died."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if service is not None and not service.alive:
            raise RuntimeError(f"{service.name} exited with {service.process.returncode}:\n{service.log()[-3000:]}")
        try:
            status, _, _ = get(port, "/healthz", timeout=2)
            if status == 200:
                return
            last = status
        except OSError as exc:
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"/healthz on port {port} did not answer 200 within {timeout} s (last: {last!r})")


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# --- A provider under load ---------------------------------------------------------------------
@dataclass(frozen=True)
class Try:
    """One HTTP attempt: which payload, when, and what came back (status None: no answer)."""

    n: int
    started: float
    ended: float
    status: int | None
    retry_after: str | None = None
    error: str = ""


@dataclass
class Load:
    """Client threads posting {"n": N} to a receiver URL path, the way a provider does.

    Each payload carries `Idempotency-Key: n-N` and is retried (after a short pause) until
    it gets a 2xx or the load stops, as providers retry what was not acknowledged. `pace`
    is the pause between two payloads of one thread, to keep the machine's two cores free
    for the server and the worker.
    """

    port: int
    path: str
    threads: int = 4
    pace: float = 0.02
    retry_pause: float = 0.05
    timeout: float = 10
    tries: list[Try] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next: int = 0
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for i in range(self.threads):
            thread = threading.Thread(target=self._run, name=f"load-{i}", daemon=True)
            thread.start()
            self._workers.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._workers:
            thread.join(timeout=self.timeout + 5)
            assert not thread.is_alive(), "a client thread is stuck: the server hangs"

    def _take(self) -> int:
        with self._lock:
            self._next += 1
            return self._next

    def _run(self) -> None:
        while not self._stop.is_set():
            n = self._take()
            while not self._stop.is_set():
                result = self._post(n)
                with self._lock:
                    self.tries.append(result)
                if result.status is not None and 200 <= result.status < 300:
                    break
                time.sleep(self.retry_pause)
            time.sleep(self.pace)

    def _post(self, n: int) -> Try:
        body = json.dumps({"n": n}).encode()
        started = time.monotonic()
        try:
            status, headers, _ = post(self.port, self.path, body, {"Idempotency-Key": f"n-{n}"}, self.timeout)
        except (OSError, http.client.HTTPException) as exc:
            return Try(n, started, time.monotonic(), None, error=f"{exc.__class__.__name__}: {exc}")
        return Try(n, started, time.monotonic(), status, headers.get("retry-after"))

    @property
    def acknowledged(self) -> set[int]:
        """The payloads that got a 2xx: the ones the provider will never send again."""
        with self._lock:
            return {t.n for t in self.tries if t.status is not None and 200 <= t.status < 300}

    def statuses(self) -> set[int | None]:
        with self._lock:
            return {t.status for t in self.tries}


def body_of(n: int) -> str:
    return json.dumps({"n": n})


# --- A service outage --------------------------------------------------------------------------
class TcpProxy:
    """A TCP forwarder to `upstream` that can be cut (every connection closed, new ones
    refused: the port is closed) and restored on the same port, to simulate a database or
    cache going away and coming back without touching the real service."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        with self._lock:
            if self._listener is not None:
                return
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((HOST, self.port))
            listener.listen(128)
            listener.settimeout(0.05)
            self.port = int(listener.getsockname()[1])
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            connections, self._connections = self._connections, set()
        if listener is not None:
            listener.close()
        for sock in connections:
            _close(sock)

    def close(self) -> None:
        self.cut()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            with self._lock:
                if self._listener is not listener:
                    return
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # cut while we connected
                    _close(client)
                    _close(upstream)
                    return
                self._connections.update((client, upstream))
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._connections.discard(source)
                self._connections.discard(target)
            _close(source)
            _close(target)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
