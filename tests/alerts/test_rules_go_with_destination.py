"""Deleting a destination (or an endpoint) deletes the alert rules scoped to it: the question
names them and how many, and the audit log records them in the deletion's entry, whichever
way it is deleted (the dashboard's dialog, its page without JavaScript, the API, the admin)."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.contrib.auth.models import User
from django.test import Client

from inbox.models import AlertKind, AlertRule, AuditAction, AuditEntry, Destination
from tests.alerts.conftest import make_rule
from tests.api.conftest import api_as
from tests.conftest import answer_confirmation, csrf_post, make_endpoint

pytestmark = pytest.mark.django_db


def shop_with_rules() -> tuple[Destination, Destination]:
    shop, _ = make_endpoint("shop")
    destination = Destination.objects.create(endpoint=shop, url="https://example.com/hook")
    other = Destination.objects.create(endpoint=shop, url="https://example.com/other")
    make_rule("Dest rate", kind=AlertKind.FAILURE_RATE, destination=destination)
    make_rule("Other failed", kind=AlertKind.FAILED, destination=other)
    make_rule("Shop quiet", kind=AlertKind.SILENCE, endpoint=shop)
    return destination, other


def test_it_names_the_alert_rules_in_the_dialog_and_on_the_page_without_javascript(staff_client: Client) -> None:
    destination, _ = shop_with_rules()
    edit = staff_client.get(f"/destinations/{destination.pk}/edit/").content.decode()
    confirm = re.search(r'data-confirm="([^"]*)">Delete destination', edit)
    assert confirm is not None
    assert unescape(confirm.group(1)) == (
        "Delete the destination https://example.com/hook of “shop” and its 1 alert rule “Dest rate”? "
        "Messages are no longer forwarded there."
    )
    response = answer_confirmation(staff_client, f"/destinations/{destination.pk}/delete/", {})
    assert response.status_code == 302
    assert sorted(AlertRule.objects.values_list("name", flat=True)) == ["Other failed", "Shop quiet"]


def test_it_asks_on_a_page_naming_them_without_javascript(staff_client: Client) -> None:
    destination, _ = shop_with_rules()
    make_rule("Dest failed", kind=AlertKind.FAILED, destination=destination)
    client_page = staff_client.post(
        f"/destinations/{destination.pk}/delete/",
        {"csrfmiddlewaretoken": _token(staff_client)},
    ).content.decode()
    assert (
        "Delete the destination https://example.com/hook of “shop” and its 2 alert rules “Dest failed” and “Dest rate”?"
        in unescape(client_page)
    )
    assert AlertRule.objects.count() == 4, "asking deletes nothing"


def test_it_says_nothing_of_rules_when_there_are_none(staff_client: Client) -> None:
    shop, _ = make_endpoint("shop")
    destination = Destination.objects.create(endpoint=shop, url="https://example.com/hook")
    edit = unescape(staff_client.get(f"/destinations/{destination.pk}/edit/").content.decode())
    assert 'data-confirm="Delete the destination https://example.com/hook of “shop”? Messages' in edit


def test_it_records_the_rules_in_the_dashboards_audit_entry(staff_client: Client) -> None:
    destination, _ = shop_with_rules()
    answer_confirmation(staff_client, f"/destinations/{destination.pk}/delete/", {})
    entry = AuditEntry.objects.get(action=AuditAction.DESTINATION_DELETED)
    assert entry.details["alert_rules"] == ["Dest rate"]
    page = unescape(staff_client.get("/audit/").content.decode())
    assert "alert rules</span> <bdi>Dest rate</bdi>" in page


def test_it_records_the_rules_when_the_api_deletes_a_destination(staff: User) -> None:
    destination, _ = shop_with_rules()
    api = api_as(staff)
    assert api.delete(f"/api/v1/destinations/{destination.pk}/").status_code == 204
    entry = AuditEntry.objects.get(action=AuditAction.DESTINATION_DELETED)
    assert entry.details["alert_rules"] == ["Dest rate"]
    assert not AlertRule.objects.filter(name="Dest rate").exists()


def test_it_records_every_rule_when_the_api_deletes_an_endpoint(staff: User) -> None:
    destination, _ = shop_with_rules()
    make_rule("Everywhere", kind=AlertKind.FAILED)
    api = api_as(staff)
    assert api.delete(f"/api/v1/endpoints/{destination.endpoint_id}/").status_code == 204
    entry = AuditEntry.objects.get(action=AuditAction.ENDPOINT_DELETED)
    assert entry.details["alert_rules"] == ["Dest rate", "Other failed", "Shop quiet"]
    assert list(AlertRule.objects.values_list("name", flat=True)) == ["Everywhere"]


def test_it_records_the_rules_when_the_dashboard_deletes_an_endpoint(staff_client: Client) -> None:
    destination, _ = shop_with_rules()
    csrf_post(staff_client, f"/endpoints/{destination.endpoint_id}/delete/")
    entry = AuditEntry.objects.get(action=AuditAction.ENDPOINT_DELETED)
    assert entry.details["alert_rules"] == ["Dest rate", "Other failed", "Shop quiet"]


def test_it_records_the_rules_when_the_admin_deletes_an_endpoint() -> None:
    destination, _ = shop_with_rules()
    admin = User.objects.create_superuser("root", password="correct horse battery")
    client = Client()
    client.force_login(admin)
    response = client.post(f"/admin/inbox/endpoint/{destination.endpoint_id}/delete/", {"post": "yes"})
    assert response.status_code == 302
    entry = AuditEntry.objects.get(action=AuditAction.ENDPOINT_DELETED)
    assert entry.details["alert_rules"] == ["Dest rate", "Other failed", "Shop quiet"]


def _token(client: Client) -> str:
    if "csrftoken" not in client.cookies:
        client.get("/endpoints/new/")
    return client.cookies["csrftoken"].value
