"""What a webhook notification carries is consistent and safe: the resolution's `counts` are
those measured at resolution (beside its `summary`), `text` escapes `&`, `<` and `>` the way
Slack asks (so a name cannot ping a channel) while the structured fields stay raw, and a
destination is named both masked (`destination`) and by id (`destination_id`, as /metrics
and the API name it)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from inbox.alerts.evaluate import evaluate
from inbox.models import Alert, AlertKind, Destination, RejectedAttempt
from tests.alerts.conftest import attempt, failed_message, make_rule, posted, refuse
from tests.conftest import Catcher, make_endpoint, make_message

pytestmark = pytest.mark.django_db


def test_it_sends_the_counts_measured_at_resolution(catcher: Catcher) -> None:
    shop, _ = make_endpoint("shop")
    make_rule("Refusals", kind=AlertKind.REJECTIONS, endpoint=shop, threshold=3, notify=catcher.url)
    refuse(shop, 5)
    evaluate()
    # The refusals age out of the window but one, as the tester saw: "1 delivery refused…".
    RejectedAttempt.objects.update(at=timezone.now() - timedelta(hours=1))
    refuse(shop, 1)
    evaluate()
    opened, resolved = posted(catcher)
    assert opened["counts"] == {"refused": 5, "threshold": 3}
    assert resolved["summary"].startswith("1 delivery refused in the last 5 minutes")
    assert resolved["counts"] == {"refused": 1, "threshold": 3}
    alert = Alert.objects.get()
    assert alert.counts == {"refused": 5, "threshold": 3}, "the opening's counts are kept on the alert"


def test_it_escapes_text_for_slack_and_leaves_the_fields_raw(catcher: Catcher) -> None:
    shop, _ = make_endpoint("shop")
    make_rule("<!channel> & <@U123> > all", kind=AlertKind.FAILED, endpoint=shop, notify=catcher.url)
    failed_message(shop)
    evaluate()
    body = posted(catcher)[0]
    assert body["text"].startswith("Alert opened: &lt;!channel&gt; &amp; &lt;@U123&gt; &gt; all: 1 message failed")
    assert "<" not in body["text"]
    assert ">" not in body["text"]
    assert body["rule"]["name"] == "<!channel> & <@U123> > all"
    assert "&" in body["messages_url"]
    assert "&amp;" not in body["messages_url"]


def test_it_names_the_destination_masked_and_by_id(catcher: Catcher) -> None:
    shop, _ = make_endpoint("shop")
    destination = Destination.objects.create(endpoint=shop, url="https://user:pw@example.com/hook?token=secret")
    make_rule("Dest failing", kind=AlertKind.FAILED, destination=destination, notify=catcher.url)
    failed_message(shop, destination=destination)
    evaluate()
    body = posted(catcher)[0]
    assert body["destination_id"] == destination.pk
    assert body["destination"] == destination.display_url
    assert "secret" not in body["destination"]


def test_it_sends_a_null_destination_id_for_an_endpoint_rule(catcher: Catcher) -> None:
    shop, _ = make_endpoint("shop")
    make_rule("Shop failing", kind=AlertKind.FAILURE_RATE, endpoint=shop, min_attempts=2, notify=catcher.url)
    for _ in range(2):
        attempt(make_message(shop))
    evaluate()
    body = posted(catcher)[0]
    assert (body["destination"], body["destination_id"]) == (None, None)
    assert body["summary"].startswith("100% of 2 forward attempts failed")
