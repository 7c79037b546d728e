"""API tokens: digests not plaintext, shown once, scopes, revocation, 401/403 as JSON,
rate limits, last use, the dashboard's page and `create_api_token`."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from inbox.models import ApiToken, AuditEntry
from tests.api.conftest import Api, api_as
from tests.conftest import csrf_post, make_endpoint


def test_it_stores_a_keyed_digest_and_never_the_token(staff: User) -> None:
    token, value = ApiToken.objects.issue(staff, "deploy", "write")
    row = ApiToken.objects.filter(pk=token.pk).values().get()
    assert value not in json.dumps(row, default=str)
    assert row["digest"] != value
    assert len(row["digest"]) == 64
    assert Api(value).get("/api/v1/endpoints/").status_code == 200


def test_it_answers_401_json_without_a_token_or_with_a_wrong_one(staff: User) -> None:
    for api in (Api(None), Api("whi_not-a-token"), Api("")):
        response = api.get("/api/v1/messages/")
        assert response.status_code == 401
        assert response["Content-Type"] == "application/json"
        assert response["WWW-Authenticate"] == "Bearer"
        assert "detail" in response.json()
    basic = Client().get("/api/v1/messages/", headers={"Authorization": "Basic c3RhZmY6eA=="})
    assert basic.status_code == 401
    assert "Bearer" in basic.json()["detail"]


def test_it_refuses_a_revoked_token_and_a_token_whose_user_left_staff(staff: User) -> None:
    token, value = ApiToken.objects.issue(staff, "old", "read")
    assert Api(value).get("/api/v1/endpoints/").status_code == 200
    token.revoke()
    assert Api(value).get("/api/v1/endpoints/").status_code == 401
    _, other = ApiToken.objects.issue(staff, "other", "read")
    User.objects.filter(pk=staff.pk).update(is_staff=False)
    assert Api(other).get("/api/v1/endpoints/").status_code == 401


def test_it_caps_a_token_by_its_scope_with_403_json(reader_api: Api) -> None:
    assert reader_api.get("/api/v1/endpoints/").status_code == 200
    response = reader_api.post("/api/v1/endpoints/", {"name": "from-a-reader"})
    assert response.status_code == 403
    assert "scope is read" in response.json()["detail"]
    assert not AuditEntry.objects.exists()


def test_a_write_token_acts_with_no_more_than_its_users_permissions(viewer_api: Api) -> None:
    endpoint, _ = make_endpoint()
    assert viewer_api.get(f"/api/v1/endpoints/{endpoint.pk}/").status_code == 200
    response = viewer_api.post("/api/v1/endpoints/", {"name": "from-a-viewer"})
    assert response.status_code == 403
    assert "inbox.add_endpoint" in response.json()["detail"]
    assert viewer_api.delete(f"/api/v1/endpoints/{endpoint.pk}/").status_code == 403
    # The receiver URL is a credential: only those who manage endpoints see it.
    assert viewer_api.get(f"/api/v1/endpoints/{endpoint.pk}/").json()["url"] is None


def test_every_write_is_audited_as_the_tokens_user(manager_api: Api, staff: User) -> None:
    created = manager_api.post("/api/v1/endpoints/", {"name": "billing"}).json()
    manager_api.patch(f"/api/v1/endpoints/{created['id']}/", {"rate_limit": "10/s"})
    manager_api.delete(f"/api/v1/endpoints/{created['id']}/")
    entries = list(AuditEntry.objects.order_by("pk"))
    assert [e.action for e in entries] == ["endpoint.created", "endpoint.changed", "endpoint.deleted"]
    assert {e.username for e in entries} == {"staff"}
    assert all(e.details.get("via") == "api" for e in entries)
    assert entries[1].details["changed"] == ["rate_limit"]


def test_it_records_the_last_use_at_most_once_a_minute(staff: User) -> None:
    token, value = ApiToken.objects.issue(staff, "cron", "read")
    api = Api(value)
    api.get("/api/v1/endpoints/")
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    assert first is not None
    with CaptureQueriesContext(connection) as queries:
        api.get("/api/v1/endpoints/")
    assert not any("UPDATE" in q["sql"] and "inbox_apitoken" in q["sql"] for q in queries.captured_queries)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now() - timedelta(minutes=2))
    api.get("/api/v1/endpoints/")
    assert ApiToken.objects.get(pk=token.pk).last_used_at > first  # type: ignore[operator]


@override_settings(INBOX_API_RATE="3/m")
def test_it_rate_limits_each_token_with_429_json(staff: User) -> None:
    busy, calm = api_as(staff, "read", "busy"), api_as(staff, "read", "calm")
    assert [busy.get("/api/v1/endpoints/").status_code for _ in range(4)] == [200, 200, 200, 429]
    limited = busy.get("/api/v1/endpoints/")
    assert limited["Retry-After"] == "60"
    assert "3/m" in limited.json()["detail"]
    assert calm.get("/api/v1/endpoints/").status_code == 200


# --- manage.py create_api_token ---------------------------------------------------------------
def test_create_api_token_prints_id_name_scope_and_a_working_token(staff: User) -> None:
    out = StringIO()
    call_command("create_api_token", "staff", "--name", "ci", "--scope", "write", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert set(data) == {"id", "name", "scope", "token"}
    assert (data["name"], data["scope"]) == ("ci", "write")
    assert Api(data["token"]).post("/api/v1/endpoints/", {"name": "from-ci"}).status_code == 201


def test_create_api_token_refuses_unknown_users_and_non_staff(outsider: User) -> None:
    with pytest.raises(CommandError, match="No user named"):
        call_command("create_api_token", "nobody")
    with pytest.raises(CommandError, match="not active staff"):
        call_command("create_api_token", "outsider")
    assert not ApiToken.objects.exists()


# --- The dashboard's API tokens page -----------------------------------------------------------
def test_the_tokens_page_shows_a_new_token_once_and_keeps_only_its_digest(staff_client: Client) -> None:
    response = csrf_post(staff_client, "/tokens/", {"name": "laptop listen", "scope": "read"})
    assert response.status_code == 302
    assert response["Location"] == "/tokens/"
    page = staff_client.get("/tokens/")
    token = ApiToken.objects.get()
    value = page.context["shown"]["value"]
    assert value in page.content.decode()
    assert "no-store" in page["Cache-Control"]
    assert token.digest not in page.content.decode()
    assert Api(value).get("/api/v1/endpoints/").status_code == 200
    again = staff_client.get("/tokens/").content.decode()
    assert value not in again
    assert "laptop listen" in again
    assert AuditEntry.objects.get().action == "token.created"


def test_revoking_asks_first_naming_the_token_and_does_nothing_when_dismissed(
    staff_client: Client, staff: User
) -> None:
    token, value = ApiToken.objects.issue(staff, "deploy script", "write")
    question = csrf_post(staff_client, f"/tokens/{token.pk}/revoke/")
    assert question.status_code == 200
    assert "Revoke the API token “deploy script”?" in question.content.decode()
    assert Api(value).get("/api/v1/endpoints/").status_code == 200
    done = csrf_post(staff_client, f"/tokens/{token.pk}/revoke/", {"confirmed": "yes"})
    assert done.status_code == 302
    assert Api(value).get("/api/v1/endpoints/").status_code == 401
    assert "revoked" in staff_client.get("/tokens/").content.decode()
    assert AuditEntry.objects.get().action == "token.revoked"


def test_staff_cannot_see_or_revoke_each_others_tokens(staff_client: Client, viewer: User) -> None:
    token, value = ApiToken.objects.issue(viewer, "viewer's own", "read")
    assert "viewer's own" not in staff_client.get("/tokens/").content.decode()
    assert csrf_post(staff_client, f"/tokens/{token.pk}/revoke/", {"confirmed": "yes"}).status_code == 404
    assert Api(value).get("/api/v1/endpoints/").status_code == 200


def test_a_bad_token_form_is_a_form_error(staff_client: Client) -> None:
    response = csrf_post(staff_client, "/tokens/", {"name": "", "scope": "admin"})
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"name", "scope"}
    assert not ApiToken.objects.exists()
