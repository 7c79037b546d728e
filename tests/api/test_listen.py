"""`listen` end to end: the client downloaded from a live server (granian, as `make run`
starts it), forwarding to a local app, stopped and started again.

The client runs on the oldest Python it supports (3.9) when this machine has one."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.servers import HOST, app_env, free_port, get, manage, post, start_web, wait_healthy
from tests.servers import create_endpoint as create_endpoint_command

pytestmark = pytest.mark.slow

OLDEST = [Path.home() / ".pyenv/versions/3.9.18/bin/python", Path("/usr/bin/python3.9")]


def client_python() -> str:
    found = next((p for p in OLDEST if p.exists()), None) or shutil.which("python3.9")
    return str(found or sys.executable)


class LocalApp:
    """The developer's app on localhost: records what it gets and answers 200 (or 500)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.arrived = threading.Condition()
        app = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with app.arrived:
                    app.requests.append(
                        {"method": self.command, "path": self.path, "headers": dict(self.headers.items()), "body": body}
                    )
                    app.arrived.notify_all()
                self.send_response(app.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_POST = do_PUT = do_GET = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.url = f"http://{HOST}:{self.server.server_address[1]}/webhooks"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def wait_for(self, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.requests) >= count, timeout=timeout)
            return list(self.requests)


@dataclass
class Inbox:
    port: int
    env: dict[str, str]
    token: str
    endpoint: dict[str, Any]
    tmp: Path

    def deliver(self, body: dict[str, Any], **headers: str) -> None:
        path = "/hooks/" + self.endpoint["url"].split("/hooks/", 1)[1]
        status, _, _ = post(
            self.port,
            path,
            json.dumps(body).encode(),
            {self.endpoint["token_header"]: self.endpoint["token"], **headers},
        )
        assert status == 200

    def api(self, path: str) -> Any:
        connection = http.client.HTTPConnection(HOST, self.port, timeout=10)
        connection.request("GET", path, headers={"Authorization": f"Bearer {self.token}"})
        return json.loads(connection.getresponse().read())


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Inbox]:
    tmp = tmp_path_factory.mktemp("listen")
    port = free_port()
    env = app_env(tmp / "var", port)
    manage(env, "migrate", "--no-input")
    manage(env, "ensure_staff")
    token = json.loads(manage(env, "create_api_token", "admin", "--name", "listen", "--json"))["token"]
    endpoint = create_endpoint_command(env, "shop")
    # As `make run` serves: one process, 5 threads on a 2-core machine (bin/run.py).
    web = start_web(env, port, tmp / "web.log", threads=5)
    try:
        wait_healthy(port, web)
        yield Inbox(port, env, token, endpoint, tmp)
    finally:
        web.stop()


class Listener:
    def __init__(self, inbox: Inbox, to: str, name: str = "laptop") -> None:
        status, _, source = get(inbox.port, "/api/v1/listen.py")
        assert status == 200
        script = inbox.tmp / "listen.py"
        script.write_bytes(source)
        self.log = inbox.tmp / f"listen-{name}.log"
        command = [client_python(), str(script), "--server", f"http://{HOST}:{inbox.port}", "--token", inbox.token]
        command += ["--endpoint", "shop", "--to", to, "--name", name]
        self.process = subprocess.Popen(  # noqa: S603 - the downloaded client with our arguments
            command,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUNBUFFERED": "1"},
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )

    def wait_started(self, inbox: Inbox) -> None:
        # The listener's cursor exists once its first poll reached the server.
        for _ in range(200):
            if "Listening to shop" in self.output():
                break
            threading.Event().wait(0.05)
        threading.Event().wait(1.0)

    def wait_output(self, text: str, timeout: float = 30) -> str:
        for _ in range(int(timeout / 0.05)):
            if text in self.output():
                break
            threading.Event().wait(0.05)
        return self.output()

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def test_listen_delivers_live_catches_up_after_a_restart_in_order_and_never_twice(inbox: Inbox) -> None:
    app = LocalApp()
    before = {"type": "before.listening"}
    inbox.deliver(before)  # arrived before the listener ever ran: not forwarded
    listener = Listener(inbox, app.url)
    try:
        listener.wait_started(inbox)
        inbox.deliver({"type": "order.created", "n": 1}, **{"X-Shop-Topic": "orders/create"})
        first = app.wait_for(1)[0]
        assert json.loads(first["body"]) == {"type": "order.created", "n": 1}
        assert first["method"] == "POST"
        assert first["path"] == "/webhooks"
        assert first["headers"]["Content-Type"] == "application/json"
        assert first["headers"]["X-Shop-Topic"] == "orders/create"
        assert inbox.endpoint["token_header"] not in first["headers"]  # never the inbox's credential
        assert inbox.endpoint["token"] not in json.dumps(first["headers"])
        assert "order.created  -> 200" in listener.wait_output("order.created  -> 200")
    finally:
        listener.stop()

    # Stopped: three more arrive, then the listener starts again under the same name.
    for n in (2, 3, 4):
        inbox.deliver({"type": "order.updated", "n": n})
    app.status = 500
    again = Listener(inbox, app.url)
    try:
        app.wait_for(4)
        inbox.deliver({"type": "order.paid", "n": 5})
        app.wait_for(5)
        threading.Event().wait(1.5)  # time for a repeat to show up, if there were one
    finally:
        again.stop()
    numbers = [json.loads(r["body"])["n"] for r in app.requests]
    assert numbers == [1, 2, 3, 4, 5]
    assert "order.updated  -> 500" in again.output()

    # Each delivery is an attempt by this listener on the message's page (and in the API).
    newest = inbox.api("/api/v1/messages/?limit=1")["results"][0]
    attempts = inbox.api(f"/api/v1/messages/{newest['id']}/")["attempts"]
    assert [(a["label"], a["status"], a["status_code"]) for a in attempts] == [
        ("listen “laptop” (admin)", "failed", 500)
    ]


def test_a_listener_with_a_revoked_or_wrong_token_stops_with_a_clear_error(inbox: Inbox) -> None:
    script = inbox.tmp / "listen.py"
    script.write_bytes(get(inbox.port, "/api/v1/listen.py")[2])
    result = subprocess.run(  # noqa: S603 - the downloaded client
        [
            client_python(),
            str(script),
            "--server",
            f"http://{HOST}:{inbox.port}",
            "--token",
            "whi_wrong",
            "--endpoint",
            "shop",
            "--to",
            "http://127.0.0.1:9/",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "401" in result.stderr
    assert "Listening" not in result.stdout  # never claimed before the inbox took the token
