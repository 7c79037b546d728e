"""The Django admin is for superusers, and what they change there reaches the audit log."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from inbox.models import AuditEntry, Destination, Endpoint, Message
from tests.conftest import csrf_post, make_endpoint, make_message

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(db: None) -> Client:
    user = User.objects.create_superuser("root", password="correct horse battery")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


class FormValues(HTMLParser):
    """The values a browser would submit from a page's <form>: inputs, selects, textareas."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, Any] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button", "file"):
            if a.get("type") == "checkbox":
                if "checked" in a:
                    self.values[name] = "on"
            else:
                self.values[name] = a.get("value") or ""
        elif tag == "select" and name:
            self._select = name
            self.values.setdefault(name, "")
        elif tag == "option" and self._select and "selected" in a:
            self.values[self._select] = a.get("value") or ""
        elif tag == "textarea" and name:
            self._textarea = name
            self.values[name] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.values[self._textarea] += data.removeprefix("\n")


def form_of(client: Client, url: str) -> dict[str, Any]:
    parser = FormValues()
    parser.feed(client.get(url).content.decode())
    parser.values.pop("csrfmiddlewaretoken", None)
    return parser.values


@pytest.mark.parametrize("who", ["viewer_client", "staff_client"])
def test_it_refuses_the_admin_to_staff_who_are_not_superusers(who: str, request: pytest.FixtureRequest) -> None:
    client: Client = request.getfixturevalue(who)
    endpoint, _ = make_endpoint()
    message = make_message(endpoint)
    for url in [
        "/admin/",
        "/admin/login/",
        "/admin/inbox/endpoint/",
        f"/admin/inbox/endpoint/{endpoint.pk}/change/",
        f"/admin/inbox/message/{message.pk}/delete/",
        "/admin/auth/user/",
    ]:
        assert client.get(url).status_code == 403, url
    response = csrf_post(client, f"/admin/inbox/message/{message.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert Message.objects.exists()
    assert "/admin/" not in client.get("/").content.decode(), "no link to it either"


def test_it_sends_anonymous_visitors_to_the_admin_login(client: Client) -> None:
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_it_audits_an_endpoint_changed_in_the_admin(superuser_client: Client) -> None:
    endpoint, _ = make_endpoint()
    url = f"/admin/inbox/endpoint/{endpoint.pk}/change/"
    form = form_of(superuser_client, url)
    assert form["auth"] == "token"
    response = csrf_post(superuser_client, url, {**form, "auth": "none", "_save": "Save"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Endpoint.objects.get().auth == "none"

    entry = AuditEntry.objects.get()
    assert (entry.username, entry.action, entry.target) == ("root", "endpoint.changed", "shop")
    assert entry.endpoint == endpoint
    assert entry.details == {"changed": ["auth"], "auth": "token → none", "via": "admin"}
    page = superuser_client.get("/audit/").content.decode()
    assert "Endpoint changed" in page
    assert "token → none" in page

    # Saving it again unchanged is not a change.
    csrf_post(superuser_client, url, {**form_of(superuser_client, url), "_save": "Save"})
    assert AuditEntry.objects.count() == 1


def test_it_audits_destinations_and_endpoints_added_and_deleted_in_the_admin(superuser_client: Client) -> None:
    endpoint, _ = make_endpoint()
    url = f"/admin/inbox/endpoint/{endpoint.pk}/change/"
    form = form_of(superuser_client, url)
    form.update(
        {
            "destinations-TOTAL_FORMS": "1",
            "destinations-0-url": "https://example.com/hook?key=secret",
            "destinations-0-enabled": "on",
            "destinations-0-timeout_seconds": "10",
            "destinations-0-forward_headers": "*",
            "destinations-0-endpoint": str(endpoint.pk),
            "_save": "Save",
        }
    )
    assert csrf_post(superuser_client, url, form).status_code == 302
    destination = Destination.objects.get()

    response = csrf_post(superuser_client, f"/admin/inbox/endpoint/{endpoint.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Endpoint.objects.exists()

    entries = [(e.action, e.target, e.username, e.details) for e in AuditEntry.objects.order_by("pk")]
    assert entries == [
        ("destination.added", destination.display_url, "root", {"via": "admin"}),
        ("endpoint.deleted", "shop", "root", {"id": endpoint.pk, "via": "admin"}),
    ]
    assert "key=secret" not in superuser_client.get("/audit/").content.decode()


def test_it_audits_messages_deleted_in_the_admin_one_entry_per_action(superuser_client: Client) -> None:
    endpoint, _ = make_endpoint()
    single = make_message(endpoint)
    chosen = [make_message(endpoint) for _ in range(3)]
    kept = make_message(endpoint)

    response = csrf_post(superuser_client, f"/admin/inbox/message/{single.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    response = csrf_post(
        superuser_client,
        "/admin/inbox/message/",
        {"action": "delete_selected", "_selected_action": [m.pk for m in chosen], "post": "yes"},
    )
    assert response.status_code == 302
    assert list(Message.objects.all()) == [kept]

    first, second = AuditEntry.objects.order_by("pk")
    assert (first.action, first.target, first.endpoint, first.details) == (
        "messages.deleted",
        f"message #{single.pk}",
        endpoint,
        {"via": "admin"},
    )
    assert (second.action, second.target, second.username) == ("messages.deleted", "3 selected messages", "root")
    assert second.details == {"ids": [m.pk for m in chosen], "via": "admin"}


def test_it_writes_one_entry_per_dashboard_change(staff_client: Client) -> None:
    """The dashboard's own entries are not doubled by the signals that catch every other path."""
    endpoint, _ = make_endpoint()
    destination = Destination.objects.create(endpoint=endpoint, url="https://example.com/hook")
    csrf_post(staff_client, f"/destinations/{destination.pk}/delete/", {"confirmed": "yes"})
    csrf_post(staff_client, f"/endpoints/{endpoint.pk}/delete/")
    entries = [(e.action, e.username) for e in AuditEntry.objects.order_by("pk")]
    assert entries == [("destination.deleted", "staff"), ("endpoint.deleted", "staff")]
    assert AuditEntry.objects.get(action="endpoint.deleted").details == {"id": endpoint.pk}
