"""`listen` under load: N listeners against one web process as `make run` serves it.

    .venv/bin/python tests/bench/listen.py [--listeners 20] [--messages 20] [--port 8400] [--slots 2]

Starts granian (1 process, 5 threads: what bin/run.py picks on 2 cores) on SQLite in a
temporary directory, N listener processes (the downloaded listen.py) forwarding to one
local app, then delivers a message every --interval seconds (1 s). Prints the latency from the receiver's
2xx to the local app's receipt (every listener, every message), what the web process holds
(threads, TCP connections, SQLite handles) and how long the dashboard's message list and
/healthz take meanwhile. Not part of `make test` (it measures time).
"""

# ruff: noqa: S603, S607 - runs pgrep, ss and the downloaded client

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.servers import HOST, app_env, get, manage, post, start_web, wait_healthy  # noqa: E402


def timed_get(port: int, path: str, cookie: str = "") -> float:
    started = time.monotonic()
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    connection.request("GET", path, headers={"Cookie": cookie} if cookie else {})
    response = connection.getresponse()
    response.read()
    assert response.status == 200, (path, response.status)
    return (time.monotonic() - started) * 1000


def login(port: int, password: str) -> str:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    connection.request("GET", "/accounts/login/")
    response = connection.getresponse()
    page = response.read().decode()
    csrf = re.search(r"csrftoken=([^;]+)", response.getheader("Set-Cookie") or "")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert csrf
    assert token
    body = f"csrfmiddlewaretoken={token.group(1)}&username=admin&password={password}"
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={csrf.group(1)}"}
    headers["Referer"] = f"http://{HOST}:{port}/accounts/login/"
    connection.request("POST", "/accounts/login/", body=body, headers=headers)
    response = connection.getresponse()
    response.read()
    session = re.search(r"sessionid=([^;]+)", response.getheader("Set-Cookie") or "")
    assert session, response.status
    return f"sessionid={session.group(1)}"


def held(pid: int, port: int) -> dict[str, int]:
    """Threads, established TCP connections to the port, and SQLite file handles of the
    granian worker processes under `pid`."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout.split()
    pids = [int(p) for p in children] or [pid]
    threads = sum(int(re.search(r"Threads:\s+(\d+)", Path(f"/proc/{p}/status").read_text()).group(1)) for p in pids)  # type: ignore[union-attr]
    sqlite = 0
    for p in pids:
        for fd in Path(f"/proc/{p}/fd").iterdir():
            with contextlib.suppress(OSError):
                sqlite += fd.readlink().name == "inbox.sqlite3"
    ss = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( sport = :{port} )"], capture_output=True, text=True, check=False
    )
    return {"threads": threads, "tcp": len(ss.stdout.splitlines()), "sqlite_handles": sqlite}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listeners", type=int, default=20)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--port", type=int, default=8400)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--interval", type=float, default=1.0, help="Seconds between two messages.")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="listen-bench-"))
    env = app_env(tmp / "var", args.port, INBOX_LISTEN_SLOTS=str(args.slots))
    manage(env, "migrate", "--no-input")
    password = manage(env, "ensure_staff").split(" / ")[1].split()[0]
    token = json.loads(manage(env, "create_api_token", "admin", "--json"))["token"]
    endpoint = json.loads(manage(env, "create_endpoint", "shop", "--json"))
    hook = "/hooks/" + endpoint["url"].split("/hooks/", 1)[1]

    received: dict[tuple[str, int], float] = {}

    class App(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received[(self.path, body["n"])] = time.monotonic()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *a: Any) -> None:
            pass

    app = ThreadingHTTPServer((HOST, 0), App)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    web = start_web(env, args.port, tmp / "web.log", threads=5)
    listeners: list[subprocess.Popen[bytes]] = []
    try:
        wait_healthy(args.port, web)
        cookie = login(args.port, password)
        idle = {
            "list_ms": statistics.median(timed_get(args.port, "/", cookie) for _ in range(10)),
            "healthz_ms": statistics.median(timed_get(args.port, "/healthz") for _ in range(10)),
        }
        script = tmp / "listen.py"
        script.write_bytes(get(args.port, "/api/v1/listen.py")[2])
        for i in range(args.listeners):
            command = [sys.executable, str(script), "--server", f"http://{HOST}:{args.port}", "--token", token]
            command += ["--endpoint", "shop", "--to", f"http://{HOST}:{app.server_address[1]}/l{i}", "--name", f"l{i}"]
            listeners.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(3)
        sent: dict[int, float] = {}
        busy_list, busy_health, holding = [], [], []
        for n in range(args.messages):
            status, _, _ = post(
                args.port, hook, json.dumps({"type": "bench", "n": n}).encode(), {"X-Webhook-Token": endpoint["token"]}
            )
            sent[n] = time.monotonic()
            assert status == 200
            busy_list.append(timed_get(args.port, "/", cookie))
            busy_health.append(timed_get(args.port, "/healthz"))
            holding.append(held(web.process.pid, args.port))
            time.sleep(args.interval)
        time.sleep(10)
        latencies = [
            (received[(f"/l{i}", n)] - sent[n]) * 1000
            for i in range(args.listeners)
            for n in range(args.messages)
            if (f"/l{i}", n) in received
        ]
        expected = args.listeners * args.messages
        quantiles = statistics.quantiles(latencies, n=100)
        late = sorted({i for i in range(args.listeners) for n in range(args.messages) if (f"/l{i}", n) not in received})
        median, p90, worst = statistics.median(latencies), quantiles[89], max(latencies)
        shape = f"waiting slots {args.slots}, messages {args.messages}, web: 1 process x 5 threads"
        print(f"listeners {args.listeners}, {shape}")
        print(f"delivered {len(latencies)}/{expected} (listeners missing some: {late or 'none'})")
        print(f"latency receipt -> local POST: median {median:.0f} ms, p90 {p90:.0f} ms, max {worst:.0f} ms")
        for label, idle_ms, busy in (
            ("dashboard list", idle["list_ms"], busy_list),
            ("/healthz", idle["healthz_ms"], busy_health),
        ):
            print(
                f"{label}, idle: {idle_ms:.0f} ms; with listeners: "
                f"median {statistics.median(busy):.0f} ms, max {max(busy):.0f} ms"
            )
        for key in ("threads", "tcp", "sqlite_handles"):
            values = [h[key] for h in holding]
            print(f"web process holds {key}: {min(values)}-{max(values)}")
    finally:
        for listener in listeners:
            listener.terminate()
        for listener in listeners:
            listener.wait(timeout=10)
        web.stop()
        app.shutdown()


if __name__ == "__main__":
    main()
