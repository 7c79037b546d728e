"""A rule's name travels outside the page (a chat's text, an email subject), so invisible
characters are refused wherever a rule is saved: controls (as for an endpoint's name),
format characters such as U+200B and U+202E, and the line and paragraph separators U+2028
and U+2029, which a mail header refuses. Rows saved before keep working: the email's subject
stays one line and the notification's text shows them as markers."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from inbox.alerts.evaluate import evaluate
from inbox.models import AlertKind, AlertRule, Notice
from tests.alerts.conftest import failed_message, make_rule, posted
from tests.conftest import Catcher, csrf_post, make_endpoint

pytestmark = pytest.mark.django_db

INVISIBLE = [
    "\u2028",
    "\u2029",
    "\u200b",
    "\u202e",
    "\u2066",
    "\ufeff",
    "\x85",
    "\n",
    "\x07",
    "\u3164",
    "\u115f",
    "\u034f",
    "\ufe0f",
]


@pytest.mark.parametrize("char", INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
def test_it_refuses_invisible_characters_in_the_form(staff_client: Client, char: str) -> None:
    response = csrf_post(
        staff_client,
        "/alerts/rules/new/",
        {"name": f"Shop{char}failing", "kind": "failed", "window": "5m", "min_attempts": "10"}
        | {"notify": "https://hooks.example.com/alerts"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Remove the" in html
    assert "invisible characters" in html
    assert not AlertRule.objects.exists()


@pytest.mark.parametrize("char", ["\u2028", "\u202e", "\u200b"], ids=lambda c: f"U+{ord(c):04X}")
def test_it_refuses_them_in_add_alert(char: str) -> None:
    with pytest.raises(CommandError, match=r"invisible characters \(U\+"):
        call_command(
            "add_alert",
            f"Shop{char}failing",
            "--when",
            "failed",
            "--notify",
            "email:ops@example.com",
            stdout=StringIO(),
        )
    assert not AlertRule.objects.exists()


def test_it_still_takes_names_in_any_script() -> None:
    rule = make_rule("Заказы — 注文 🚨 ñ", kind=AlertKind.FAILED)
    assert rule.pk


def test_it_keeps_an_old_rules_email_subject_on_one_line(settings: object) -> None:
    shop, _ = make_endpoint("shop")
    rule = make_rule("Shop failing", kind=AlertKind.FAILED, endpoint=shop, notify="email:ops@example.com")
    AlertRule.objects.filter(pk=rule.pk).update(name="Shop\u2028failing\u202eyes")  # saved before the check
    failed_message(shop)
    report = evaluate()
    assert (report.sent, report.failed) == (1, 0), "the header error would retry for hours"
    assert mail.outbox[0].subject == "[Webhook Inbox] Alert opened: Shop failing⟨U+202E⟩yes"


def test_it_shows_an_override_as_a_marker_in_the_notification_text(catcher: Catcher) -> None:
    shop, _ = make_endpoint("shop")
    rule = make_rule("Shop failing", kind=AlertKind.FAILED, endpoint=shop, notify=catcher.url)
    AlertRule.objects.filter(pk=rule.pk).update(name="Shop \u202egniliaf")
    failed_message(shop)
    evaluate()
    body = posted(catcher)[0]
    assert body["text"].startswith("Alert opened: Shop ⟨U+202E⟩gniliaf: 1 message failed")
    assert "\u202e" not in body["text"]
    assert body["rule"]["name"] == "Shop \u202egniliaf", "the structured field stays what is stored"
    assert rule.alerts.get().open_notice == Notice.SENT
