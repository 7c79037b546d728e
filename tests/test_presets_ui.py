"""Presets as staff meet them: in the endpoint form, on the endpoint page, from the shell."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from inbox.models import Endpoint, Message, RejectedAttempt
from inbox.verification import PRESETS
from tests.conftest import csrf_post, make_endpoint
from tests.test_endpoints import NEW_ENDPOINT

pytestmark = pytest.mark.django_db


def shown(content: bytes, label: str) -> str | None:
    match = re.search(rf'id="shown-{label}" class="mono[^"]*" value="([^"]+)"', content.decode())
    return match.group(1) if match else None


def test_it_offers_every_preset_in_the_form(staff_client: Client) -> None:
    page = staff_client.get("/endpoints/new/").content.decode()
    for name, preset in PRESETS.items():
        assert f'value="{name}"' in page, name
        assert preset.label.split(" (")[0] in page


def test_it_creates_a_stripe_endpoint_from_the_pasted_secret(staff_client: Client) -> None:
    data = {**NEW_ENDPOINT, "auth": "stripe", "secret": "whsec_pasted_from_the_dashboard"}
    response = csrf_post(staff_client, "/endpoints/new/", data, follow=True)
    assert response.redirect_chain[0][1] == 302
    endpoint = Endpoint.objects.get()
    assert endpoint.credentials()[0].value == "whsec_pasted_from_the_dashboard"
    page = response.content.decode()
    assert "Developers → Webhooks" in page  # the preset's instructions, with the URL filled in
    assert endpoint.url in page
    assert "whsec_pasted_from_the_dashboard" not in page  # staff have it; it is not echoed


@pytest.mark.parametrize(
    ("auth", "secret", "error"),
    [
        ("stripe", "", "Paste the signing secret that Stripe gives you."),
        ("stripe", "sk_live_not_a_webhook_secret", "does not look like a Stripe signing secret"),
        ("discord", "zz", "Enter the application&#x27;s public key"),
        ("svix", "whsec_!!!", "Enter the signing secret as shown by the provider"),
        ("basic", "anything", "HTTP Basic authentication takes no secret."),
    ],
)
def test_it_explains_a_missing_or_wrong_secret(staff_client: Client, auth: str, secret: str, error: str) -> None:
    response = csrf_post(staff_client, "/endpoints/new/", {**NEW_ENDPOINT, "auth": auth, "secret": secret})
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not Endpoint.objects.exists()


def test_it_generates_and_shows_once_what_the_preset_generates(staff_client: Client) -> None:
    response = csrf_post(staff_client, "/endpoints/new/", {**NEW_ENDPOINT, "auth": "github"}, follow=True)
    secret = shown(response.content, "secret")
    assert secret
    endpoint = Endpoint.objects.get()
    assert endpoint.credentials()[0].value == secret
    assert secret not in staff_client.get(f"/endpoints/{endpoint.pk}/").content.decode()


def test_it_shows_basic_credentials_and_metas_verify_token_once(staff_client: Client) -> None:
    basic = csrf_post(staff_client, "/endpoints/new/", {**NEW_ENDPOINT, "name": "b", "auth": "basic"}, follow=True)
    assert shown(basic.content, "username")
    assert shown(basic.content, "password")
    meta = csrf_post(
        staff_client,
        "/endpoints/new/",
        {**NEW_ENDPOINT, "name": "m", "auth": "meta", "secret": "0123456789abcdef0123456789abcdef"},
        follow=True,
    )
    verify_token = shown(meta.content, "verify_token")
    assert verify_token
    assert Endpoint.objects.get(name="m").check_token(verify_token) == "current"


def test_it_configures_a_generic_hmac_endpoint(staff_client: Client, provider: Client) -> None:
    data = {
        **NEW_ENDPOINT,
        "auth": "hmac",
        "secret": "a-shared-hmac-secret",
        "hmac_header": "X-Acme-Signature",
        "hmac_digest": "sha512",
        "hmac_encoding": "base64",
        "hmac_prefix": "sig=",
        "hmac_template": "{timestamp}.{body}",
        "hmac_timestamp_header": "X-Acme-Timestamp",
        "hmac_tolerance": "120",
    }
    assert csrf_post(staff_client, "/endpoints/new/", data).status_code == 302
    endpoint = Endpoint.objects.get()
    assert endpoint.scheme_options["header"] == "X-Acme-Signature"
    stamp = str(int(time.time()))
    body = b'{"type": "acme.thing"}'
    mac = hmac.new(b"a-shared-hmac-secret", stamp.encode() + b"." + body, hashlib.sha512).digest()
    headers = {"X-Acme-Signature": "sig=" + base64.b64encode(mac).decode(), "X-Acme-Timestamp": stamp}
    assert provider.post(endpoint.path, body, content_type="application/json", headers=headers).status_code == 200
    assert Message.objects.get().event_type == "acme.thing"


def test_it_refuses_a_generic_template_that_signs_a_timestamp_without_its_header(staff_client: Client) -> None:
    data = {**NEW_ENDPOINT, "auth": "hmac", "hmac_header": "X-Sig", "hmac_template": "{timestamp}.{body}"}
    response = csrf_post(staff_client, "/endpoints/new/", data)
    assert "The template signs a timestamp: name its header." in response.content.decode()


def test_it_rotates_with_a_grace_period_chosen_by_staff(staff_client: Client) -> None:
    endpoint, _ = make_endpoint(auth="stripe", secret="whsec_the_first_secret")
    refused = csrf_post(staff_client, f"/endpoints/{endpoint.pk}/rotate/", {"grace_hours": "48"})
    assert "Paste the new signing secret from Stripe." in refused.content.decode()
    response = csrf_post(
        staff_client,
        f"/endpoints/{endpoint.pk}/rotate/",
        {"grace_hours": "48", "secret": "whsec_the_second_secret"},
        follow=True,
    )
    assert response.redirect_chain == [(f"/endpoints/{endpoint.pk}/", 302)]
    endpoint.refresh_from_db()
    assert [c.value for c in endpoint.credentials()] == ["whsec_the_second_secret", "whsec_the_first_secret"]
    assert "still accepted until" in response.content.decode()


def test_it_lists_rejected_attempts_on_the_endpoint_page(staff_client: Client, provider: Client) -> None:
    endpoint, _ = make_endpoint(auth="github", secret="github-secret-value")
    provider.post(
        endpoint.path, b'{"zen": "x"}', content_type="application/json", headers={"X-Hub-Signature-256": "sha256=00"}
    )
    attempt = RejectedAttempt.objects.get()
    assert (attempt.reason, attempt.remote_addr, attempt.body_size) == ("Signature mismatch.", "203.0.113.7", 12)
    page = staff_client.get(f"/endpoints/{endpoint.pk}/").content.decode()
    assert "Rejected attempts" in page
    assert "Signature mismatch." in page
    assert "203.0.113.7" in page


def test_it_never_stores_the_token_of_a_rejected_attempt(provider: Client) -> None:
    endpoint, _ = make_endpoint()
    provider.post(endpoint.path, b"{}", content_type="application/json", headers={"X-Webhook-Token": "whi_guess"})
    assert RejectedAttempt.objects.get().headers["X-Webhook-Token"] == "[redacted]"


def test_it_caps_rejected_attempts_per_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint, _ = make_endpoint()
    other, _ = make_endpoint("other")
    monkeypatch.setattr(RejectedAttempt, "CAP_PER_ENDPOINT", 5)
    for _ in range(9):
        RejectedAttempt.objects.create(endpoint=endpoint, status=403, reason="x", preset="token")
        RejectedAttempt.objects.create(endpoint=other, status=403, reason="x", preset="token")
    RejectedAttempt.trim(endpoint)
    assert endpoint.rejected_attempts.count() == 5
    assert other.rejected_attempts.count() == 9


# --- Shell --------------------------------------------------------------------------------------
def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_it_creates_preset_endpoints_from_the_shell() -> None:
    data = json.loads(
        run("create_endpoint", "payments", "--auth", "stripe", "--secret", "whsec_from_stripe_1", "--json")
    )
    assert (data["auth"], data["secret"]) == ("stripe", "whsec_from_stripe_1")
    generated = json.loads(run("create_endpoint", "repo", "--auth", "github", "--json"))
    assert Endpoint.objects.get(name="repo").credentials()[0].value == generated["secret"]


@pytest.mark.parametrize(
    "args",
    [
        ["--auth", "stripe"],
        ["--auth", "stripe", "--secret", "not-a-whsec"],
        ["--auth", "discord", "--secret", "abcd"],
        ["--auth", "basic", "--secret", "whatever-password"],
    ],
)
def test_it_refuses_a_preset_without_a_valid_secret(args: list[str]) -> None:
    with pytest.raises(CommandError):
        call_command("create_endpoint", "x", *args, stdout=StringIO())
    assert not Endpoint.objects.exists()


def test_it_will_not_send_a_test_event_it_cannot_sign() -> None:
    make_endpoint("tok")
    with pytest.raises(CommandError, match="cannot sign"):
        call_command("send_test_webhook", "tok", stdout=StringIO())
    with pytest.raises(CommandError, match="No endpoint"):
        call_command("send_test_webhook", "missing", stdout=StringIO())


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "auth", ["github", "stripe", "slack", "standard", "twilio", "mailgun", "square", "linear", "twitch"]
)
def test_it_sends_a_verified_test_event_to_the_live_receiver(live_server, settings, auth: str) -> None:  # type: ignore[no-untyped-def]
    settings.PUBLIC_BASE_URL = live_server.url
    secret = {
        "stripe": "whsec_from_stripe_1",
        "slack": "slack-signing-secret",
        "twilio": "0123456789abcdef0123456789abcdef",
        "mailgun": "key-mailgun-signing",
        "square": "square-signature-key",
        "linear": "lin_wh_abcdefghijkl",
    }.get(auth)
    make_endpoint("live", auth=auth, secret=secret)
    out = run("send_test_webhook", "live")
    assert "answered 200" in out
    message = Message.objects.get()
    assert (message.verification, message.secret_used) == ("verified", "current")


@pytest.mark.parametrize("template", ["{{body}}", "{body", "{id}.{body}", "{0}"])
def test_it_refuses_a_template_the_signer_would_not_reproduce(staff_client: Client, template: str) -> None:
    data = {**NEW_ENDPOINT, "auth": "hmac", "hmac_header": "X-Sig", "hmac_template": template}
    response = csrf_post(staff_client, "/endpoints/new/", data)
    assert "Use only the placeholders {body}, {timestamp} and {url}." in response.content.decode()
    assert not Endpoint.objects.exists()


def test_it_falls_back_when_hand_edited_options_are_nonsense(provider: Client) -> None:
    endpoint, _ = make_endpoint(
        auth="hmac", secret="generic-secret", scheme_options={"digest": "md5", "tolerance": "x"}
    )
    body = b'{"type": "x"}'
    signature = hmac.new(b"generic-secret", body, hashlib.sha256).hexdigest()
    response = provider.post(endpoint.path, body, content_type="application/json", headers={"X-Signature": signature})
    assert response.status_code == 200
