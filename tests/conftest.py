from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from html import unescape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.cache import cache, caches
from django.db import connection
from django.http import HttpResponse, HttpResponseBase
from django.test import Client
from django.test.client import ClientHandler, conditional_content_removal
from django.utils import timezone
from django_tasks_db.management.commands import db_worker
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from inbox import counters
from inbox.ingest.body import parse_json, preview_of
from inbox.ingest.endpoints import forget_endpoint
from inbox.ingest.wsgi import ReceiverDispatch
from inbox.models import Endpoint, Message
from inbox.permissions import MANAGERS, VIEWERS


class ReceiverClientHandler(ClientHandler):
    """Django's test client, with deliveries answered by the receiver's lean path, as in
    production (config/wsgi.py): every receiver test exercises it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Built with the client, like Django's own middleware chain, so a test's
        # override_settings (HSTS, ...) applies to both.
        self.receiver_path = ReceiverDispatch(lambda environ, start_response: [], recycle_connections=False)

    def __call__(self, environ: dict[str, Any]) -> HttpResponseBase:
        answered = self.receiver_path.answer(environ)
        if answered is None:
            full: HttpResponseBase = super().__call__(environ)
            return full
        request, answer = answered
        # The server sends the answer's status line, headers and body as they are.
        response = HttpResponse(answer.content, status=answer.status, reason=answer.reason)
        del response["Content-Type"]
        for name, value in answer.headers:
            response.headers[name] = value
        request._dont_enforce_csrf_checks = not self.enforce_csrf_checks  # type: ignore[attr-defined]
        conditional_content_removal(request, response)  # what the server does for HEAD
        response.wsgi_request = request  # type: ignore[attr-defined]
        return response


def full_stack_client(**defaults: Any) -> Client:
    """A test client whose receiver requests go through Django's whole handler, to compare."""
    client = Client(**defaults)
    client.handler = ClientHandler(enforce_csrf_checks=False)
    return client


@pytest.fixture(autouse=True, scope="session")
def _receiver_through_the_lean_path() -> Iterator[None]:
    with mock.patch("django.test.client.ClientHandler", ReceiverClientHandler):
        yield


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    # Rate-limit counters and the in-process endpoint cache must not leak between tests.
    cache.clear()
    caches[settings.RATELIMIT_USE_CACHE].clear()  # the counts and the leases this process holds
    forget_endpoint()
    counters.clear()  # counts a test made and never wrote
    yield
    forget_endpoint()
    counters.clear()


def make_endpoint(name: str = "shop", secret: str | None = None, **fields: Any) -> tuple[Endpoint, str | None]:
    """An endpoint and its token (None for schemes without one)."""
    endpoint = Endpoint(name=name, **fields)
    shown = endpoint.set_secret(secret)
    endpoint.save()
    return endpoint, shown.get("token")


def make_message(endpoint: Endpoint, body: bytes = b'{"type": "order.created"}', **fields: Any) -> Message:
    fields.setdefault("method", "POST")
    fields.setdefault("content_type", "application/json")
    fields.setdefault("verification", "verified")
    message = Message(endpoint=endpoint, **fields)
    message.set_body(body)
    if "json" not in fields:
        message.json = parse_json(body)
    if "event_type" not in fields and isinstance(message.json, dict):
        message.event_type = str(message.json.get("type", ""))
    message.preview = preview_of(message)
    message.save()
    return message


def answer_confirmation(client: Client, url: str, data: dict[str, Any]) -> Any:
    """POST an action that asks first, then press the button on the page that asks, as a
    person does: its form's hidden fields (a whole filter's signed confirmation too)."""
    asked = csrf_post(client, url, data)
    assert asked.status_code == 200, f"expected a question, got {asked.status_code}"
    html = asked.content.decode()
    form: dict[str, list[str]] = {}
    for name, value in re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', html):
        form.setdefault(name, []).append(unescape(value))
    action = re.search(r'<form method="post" action="([^"]*)"', html)
    assert action is not None
    return csrf_post(client, unescape(action.group(1)), form)


def csrf_post(client: Client, url: str, data: dict[str, Any] | None = None, **extra: Any) -> Any:
    """POST the way a browser does: with the CSRF token from a page the client loaded."""
    if "csrftoken" not in client.cookies:
        client.get("/endpoints/new/")
    payload = dict(data or {})
    payload["csrfmiddlewaretoken"] = client.cookies["csrftoken"].value
    return client.post(url, payload, **extra)


@pytest.fixture
def staff(db: None) -> User:
    """Staff who manage endpoints and messages (the "Inbox managers" group)."""
    user = User.objects.create_user("staff", password="correct horse battery", is_staff=True)
    user.groups.add(Group.objects.get(name=MANAGERS))
    return user


@pytest.fixture
def viewer(db: None) -> User:
    """Staff who may look but not change anything (the "Inbox viewers" group)."""
    user = User.objects.create_user("viewer", password="correct horse battery", is_staff=True)
    user.groups.add(Group.objects.get(name=VIEWERS))
    return user


@pytest.fixture
def viewer_client(viewer: User) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(viewer)
    return client


@pytest.fixture
def outsider(db: None) -> User:
    return User.objects.create_user("outsider", password="correct horse battery", is_staff=False)


@pytest.fixture
def staff_client(staff: User) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    return client


@pytest.fixture
def provider() -> Client:
    """What a webhook provider is: a client with no session that never sends a CSRF token."""
    return Client(enforce_csrf_checks=True, REMOTE_ADDR="203.0.113.7")


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


# --- Processing -----------------------------------------------------------------------------
class Catcher:
    """A local HTTP server standing in for a forwarding destination.

    `answers` is the queue of (status, body, headers) it replies with, one per request
    (the last one repeats); `delay` makes it slow. Every request it got is in `requests`.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: list[tuple[int, bytes, dict[str, str]]] = [(200, b"thanks", {})]
        self.delay = 0.0
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                catcher.requests.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
                if catcher.delay:
                    time.sleep(catcher.delay)
                status, answer, headers = catcher.answers[0]
                if len(catcher.answers) > 1:
                    catcher.answers.pop(0)
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the forwarder gave up (timeout tests)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def catcher() -> Iterator[Catcher]:
    server = Catcher()
    yield server
    server.close()


def run_worker() -> None:
    """Run the django-tasks-db worker in this process until no task is due."""

    # The worker closes "old" connections between tasks; inside a test's transaction that
    # would close the test's own connection (PostgreSQL) and roll its data away.
    with mock.patch.object(db_worker, "close_old_connections", return_value=None):
        _worker().run()


def _worker() -> Any:
    return Worker(
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="test-worker",
        excluded_queue_names=[],
    )


def make_due(message: Message) -> None:
    """Let time pass: the message's retry, and every queued task, are due now."""
    now = timezone.now()
    Message.objects.filter(pk=message.pk, next_attempt_at__isnull=False).update(next_attempt_at=now)
    DBTaskResult.objects.filter(status="READY").update(run_after=now)
