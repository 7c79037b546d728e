"""What an outside-in tester found (issue 13, the polish round): bidi controls shown, not
obeyed; one way to write sizes; sentences that end once; error pages in the house style
with no dead links; filter errors in words; the rotate form's wording; test events that
carry the provider's delivery id."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.template.defaultfilters import filesizeformat
from django.test import Client, RequestFactory
from django.views.defaults import server_error

from inbox.models import Attempt, Endpoint, Message, RejectedAttempt
from inbox.verification.presets import PRESETS
from tests.conftest import csrf_post, make_endpoint, make_message

RLO = "\u202e"
SPOOF = RLO + "etadpu.redro"  # reads "order.update" when the override is obeyed
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html)).strip()


# --- 1. Bidi controls are shown as markers, never obeyed ----------------------------------------
def test_it_shows_bidi_controls_in_the_list_the_message_and_its_title(staff_client: Client) -> None:
    endpoint, _ = make_endpoint("sh" + "\u2067" + "op")
    body = ('{"type": "' + SPOOF + '", "note": "a' + BIDI + 'z"}').encode()
    message = make_message(
        endpoint, body, headers={"X-Note" + "\u200f": "v" + RLO + "x"}, idempotency_key="k" + "\u2066"
    )
    assert message.event_type == SPOOF

    listing = staff_client.get("/").content.decode()
    page = staff_client.get(message.get_absolute_url()).content.decode()
    for html in (listing, page):
        assert "⟨U+202E⟩etadpu.redro" in text_of(html)
        # Only the hidden copy for the Copy button keeps them: copied text is the text sent.
        shown = re.sub(r'<textarea id="(pretty|curl)-text".*?</textarea>', "", html, flags=re.S)
        assert not set(BIDI) & set(shown), "a bidi control reached the page unmarked"
    title = re.search(r"<title>(.*?)</title>", page, re.S)
    assert title is not None
    assert "⟨U+202E⟩etadpu.redro" in title.group(1)
    assert '<span class="bidi-mark" title="Invisible direction control: right-to-left override">' in page
    for shown in (
        "sh⟨U+2067⟩op",
        "X-Note⟨U+200F⟩",
        "v⟨U+202E⟩x",
        "k⟨U+2066⟩",
        "a" + "".join(f"⟨U+{ord(c):04X}⟩" for c in BIDI) + "z",
    ):
        assert shown in text_of(page), shown
    # The raw body stays byte for byte what was sent.
    raw = staff_client.get(f"/messages/{message.pk}/raw/")
    assert b"".join(raw) == body


def test_it_marks_bidi_controls_in_an_attempts_target(staff_client: Client) -> None:
    # A listener names itself (any read token may): its name shows on the message's page.
    endpoint, _ = make_endpoint()
    message = make_message(endpoint)
    Attempt.objects.create(
        message=message, endpoint=endpoint, number=1, target="listen:1", label=f"listen “{SPOOF}”", status="failed"
    )
    html = staff_client.get(message.get_absolute_url()).content.decode()
    assert RLO not in html
    assert "U+202E" in html


def test_it_marks_bidi_controls_in_the_tree_and_the_plain_views(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    text = make_message(endpoint, ("plain " + RLO + "text").encode(), content_type="text/plain", json=None)
    page = staff_client.get(text.get_absolute_url()).content.decode()
    assert "plain ⟨U+202E⟩text" in text_of(page)
    # The hidden copy of the text for the Copy button stays exact.
    assert f'<textarea id="pretty-text" hidden readonly>plain {RLO}text</textarea>' in page
    page = staff_client.get(
        make_message(endpoint, ('{"k' + RLO + '": 1}').encode()).get_absolute_url()
    ).content.decode()
    tree = page[page.index('class="json-tree"') :]
    assert "k⟨U+202E⟩" in text_of(tree)
    assert f'data-path="k{RLO}"' in tree, "the path copied into the filter stays exact"


# --- 2. Sizes are written one way -----------------------------------------------------------------
def test_it_words_the_body_limit_of_a_refusal_like_the_limits_card(staff_client: Client, provider: Client) -> None:
    endpoint, token = make_endpoint(max_body_bytes=1024 * 1024)
    response = provider.post(
        endpoint.path, b"x" * (1024 * 1024 + 1), "application/json", headers={"X-Webhook-Token": token}
    )
    assert response.status_code == 413
    shown = filesizeformat(1024 * 1024)  # "1.0 MB", as the Limits card says it
    assert response.content.decode() == f"Body larger than this endpoint's limit of {shown}.\n"
    assert RejectedAttempt.objects.get().reason == f"Body larger than this endpoint's limit of {shown}."
    page = staff_client.get(endpoint.get_absolute_url()).content.decode()
    assert "1048576 bytes" not in page
    assert page.count(shown) >= 2, "the Limits card and the refusal say it alike"


# --- 3. One space, one full stop ------------------------------------------------------------------
def test_it_words_the_refusals_in_the_waiting_box_once(staff_client: Client, provider: Client) -> None:
    endpoint, _ = make_endpoint()
    provider.post(endpoint.path, b"{}", "application/json", headers={"X-Webhook-Token": "wrong"})
    page = staff_client.get(endpoint.get_absolute_url()).content.decode()
    box = re.search(r'<p class="refused">(.*?)</p>', page, re.S)
    assert box is not None
    words = text_of(box.group(1))
    assert re.fullmatch(r"1 refused, the last one [^:]+: 403 “Invalid X-Webhook-Token”\. Rejected attempts", words), (
        words
    )
    assert "  " not in box.group(1).replace("\n", " ")
    assert ".”." not in words


# --- 5. Error pages -------------------------------------------------------------------------------
def test_it_serves_a_styled_404_without_dashboard_links_to_strangers(client: Client, outsider: User) -> None:
    anonymous = client.get("/no/such/page/")
    assert anonymous.status_code == 404
    html = anonymous.content.decode()
    assert "/static/css/app.css" in html
    assert 'class="topbar"' in html
    assert 'href="/endpoints/"' not in html
    assert 'href="/audit/"' not in html
    assert 'href="/accounts/login/"' in html

    client.force_login(outsider)
    for path, status in (("/no/such/page/", 404), ("/", 403), ("/endpoints/", 403)):
        response = client.get(path)
        html = response.content.decode()
        assert response.status_code == status
        assert "/static/css/app.css" in html
        assert '<nav aria-label="Main">' not in html, f"{path}: links that all answer 403"
        assert "Log out" in html


def test_it_keeps_the_dashboard_links_for_staff_on_a_404(staff_client: Client) -> None:
    html = staff_client.get("/messages/999999/").content.decode()
    assert "/static/css/app.css" in html
    assert '<nav aria-label="Main">' in html
    assert 'href="/endpoints/"' in html


def test_it_serves_a_styled_400(client: Client, settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["testserver"]
    response = client.get("/", headers={"host": "evil.example"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "<h1>Bad request</h1>" in html
    assert "/static/css/app.css" in html
    assert '<nav aria-label="Main">' not in html


def test_it_serves_a_styled_500_without_a_database() -> None:
    # No django_db mark: any query here would fail the test, as a down database fails the page.
    response = server_error(RequestFactory().get("/"))
    html = response.content.decode()
    assert response.status_code == 500
    assert "<h1>Server error</h1>" in html
    assert "/static/css/app.css" in html
    assert 'class="topbar"' in html


# --- 6. Filter errors in words; methods in any case -----------------------------------------------
def test_it_names_bad_filters_by_their_labels(staff_client: Client) -> None:
    html = staff_client.get("/?method=BREW&endpoint=abc&status=lost").content.decode()
    errors = text_of(html[html.index("Some filters are not valid") :].split("</ul>")[0])
    assert "Method: Select a valid choice." in errors
    assert "Endpoint: Select a valid choice." in errors
    assert "Processing: Select a valid choice." in errors
    assert "method:" not in errors
    assert "status:" not in errors


def test_it_takes_a_method_in_any_case(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    make_message(endpoint, b'{"type": "got"}', method="GET")
    make_message(endpoint, b'{"type": "posted"}', method="POST")
    html = staff_client.get("/?method=get").content.decode()
    assert "Some filters are not valid" not in html
    assert "got" in html
    assert "posted" not in html
    assert '<option value="GET" selected>' in html
    export = b"".join(staff_client.get("/messages/export.ndjson?method=get").streaming_content)  # type: ignore[attr-defined]
    assert b'"got"' in export
    assert b'"posted"' not in export


# --- 8. The rotate form asks for what the preset needs --------------------------------------------
def test_it_labels_the_rotate_form_per_preset(staff_client: Client) -> None:
    token, _ = make_endpoint("tok")
    html = staff_client.get(f"/endpoints/{token.pk}/rotate/").content.decode()
    assert 'name="secret"' not in html
    assert "from the provider" not in html
    assert "A new one is generated and shown once." in html
    response = csrf_post(staff_client, f"/endpoints/{token.pk}/rotate/", {"grace_hours": "1"})
    assert response.status_code == 302
    token.refresh_from_db()
    assert [c.label for c in token.token_digests()] == ["current", "previous"]

    stripe, _ = make_endpoint("pay", auth="stripe", secret="whsec_from_stripe_1")
    html = staff_client.get(f"/endpoints/{stripe.pk}/rotate/").content.decode()
    assert "New signing secret from Stripe" in html
    github, _ = make_endpoint("repo", auth="github")
    html = staff_client.get(f"/endpoints/{github.pk}/rotate/").content.decode()
    assert "New signing secret (optional)" in html
    assert "Leave empty to generate one." in html


# --- 9. A test event carries the provider's delivery id -------------------------------------------
PASTED = {
    "stripe": "whsec_from_stripe_1",
    "shopify": "shopify-client-secret",
    "slack": "slack-signing-secret",
    "svix": "whsec_c3ZpeHNlY3JldDEy",
    "twilio": "0123456789abcdef0123456789abcdef",
    "meta": "0123456789abcdef0123456789abcdef",
    "paddle": "pdl_ntfset_abcdefghij",
    "linear": "lin_wh_abcdefghijkl",
    "mailgun": "key-mailgun-signing",
    "square": "square-signature-key",
    "zoom": "zoom-secret-token",
    "intercom": "intercom-client-secret",
}
WITH_KEYS = [
    name
    for name, preset in PRESETS.items()
    if (preset.idempotency_headers or preset.idempotency_paths) and preset.scheme.secret_kind in ("hmac", "none")
]


def test_it_covers_every_preset_that_names_a_delivery_id() -> None:
    assert {"github", "shopify", "linear", "twitch", "standard", "svix", "stripe"} <= set(WITH_KEYS)


@pytest.mark.django_db
@pytest.mark.parametrize("auth", WITH_KEYS)
def test_it_stores_a_test_event_with_the_providers_idempotency_key(provider: Client, settings: Any, auth: str) -> None:
    settings.PUBLIC_BASE_URL = "http://testserver"  # URL-signing presets sign what the receiver sees
    endpoint, _ = make_endpoint("test", auth=auth, secret=PASTED.get(auth))
    for _ in range(2):
        body, headers = Endpoint.objects.get().test_request()
        content_type = headers.pop("Content-Type")
        response = provider.post(endpoint.path, body, content_type, headers=headers)
        assert response.status_code == 200, response.content
    keys = list(Message.objects.values_list("idempotency_key", flat=True))
    assert len(keys) == 2, "the second test event is not a duplicate of the first"
    assert all(keys)
    assert keys[0] != keys[1]
    for message in Message.objects.all():
        sent = {name.lower() for name in message.headers}
        assert not PRESETS[auth].idempotency_headers or sent & {h.lower() for h in PRESETS[auth].idempotency_headers}
