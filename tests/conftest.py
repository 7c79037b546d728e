from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import connection
from django.test import Client

from inbox.models import Endpoint, Message, forget_endpoint


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    # Rate-limit counters and the in-process endpoint cache must not leak between tests.
    cache.clear()
    forget_endpoint()
    yield
    forget_endpoint()


def make_endpoint(name: str = "shop", secret: str | None = None, **fields: Any) -> tuple[Endpoint, str | None]:
    """An endpoint and its token (None for schemes without one)."""
    endpoint = Endpoint(name=name, **fields)
    shown = endpoint.set_secret(secret)
    endpoint.save()
    return endpoint, shown.get("token")


def make_message(endpoint: Endpoint, body: bytes = b'{"type": "order.created"}', **fields: Any) -> Message:
    from inbox.receiver import parse_json, preview_of

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


def csrf_post(client: Client, url: str, data: dict[str, Any] | None = None, **extra: Any) -> Any:
    """POST the way a browser does: with the CSRF token from a page the client loaded."""
    if "csrftoken" not in client.cookies:
        client.get("/endpoints/new/")
    payload = dict(data or {})
    payload["csrfmiddlewaretoken"] = client.cookies["csrftoken"].value
    return client.post(url, payload, **extra)


@pytest.fixture
def staff(db: None) -> User:
    return User.objects.create_user("staff", password="correct horse battery", is_staff=True)


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
