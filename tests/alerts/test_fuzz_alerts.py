"""Property tests: whatever lands in the alerts page's query string or in the rule form, the
answer is a page or a clear 4xx, never a 5xx, and an invalid rule saves nothing."""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inbox.models import Alert, AlertKind, AlertRule, AlertState, Destination, Notice
from tests.alerts.conftest import make_rule
from tests.conftest import make_endpoint
from tests.test_fuzz_dashboard import NASTY_TEXT, junk, query_string

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
NAMES = ["state", "rule", "page", "before", "endpoint", "kind"]
params = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(NAMES), junk),
        st.tuples(st.sampled_from(["state"]), st.sampled_from([*AlertState.values, "OPEN", "open ", ""])),
        st.tuples(st.one_of(NASTY_TEXT, st.binary(max_size=6)), junk),
    ),
    max_size=6,
)
form_values = st.one_of(
    junk,
    st.sampled_from(["5m", "0m", "1m", "7d", "8d", "60s", "1.5h", " 2h ", "-5m", "99999999m"]),
    st.sampled_from([*AlertKind.values, "", "FAILED"]),
    st.sampled_from(["https://hooks.example.com/x", "http://169.254.169.254/", "email:a@example.com", "email:"]),
    st.sampled_from(["0", "1", "99", "100", "-1", "1e3", "4294967296", "9" * 30]),
)
FIELDS = ["name", "kind", "endpoint", "destination", "threshold", "window", "min_attempts", "notify", "muted"]
forms = st.dictionaries(st.sampled_from(FIELDS), form_values.filter(lambda v: isinstance(v, str)), max_size=9)


@pytest.fixture
def alerts(db: None, staff: User) -> dict[str, Any]:
    shop, _ = make_endpoint("shop")
    destination = Destination.objects.create(endpoint=shop, url="https://example.com/hook")
    rule = make_rule(kind=AlertKind.FAILED, endpoint=shop)
    Alert.objects.create(rule=rule, summary="1 message failed", open_notice=Notice.SENT)
    return {"endpoint": shop.pk, "destination": destination.pk, "rule": rule.pk}


@pytest.fixture
def client(staff: User) -> Client:
    client = Client()
    client.force_login(staff)
    return client


@FUZZ
@given(pairs=params)
def test_it_never_answers_5xx_to_the_alerts_pages_query_string(
    client: Client, alerts: dict[str, Any], pairs: list[tuple[Any, Any]]
) -> None:
    response = client.get("/alerts/?" + query_string(pairs))
    assert response.status_code in (200, 400)  # 400: what Django itself refuses (NUL: inbox/middleware.py)


@FUZZ
@given(data=forms)
def test_it_never_answers_5xx_to_the_rule_form(client: Client, alerts: dict[str, Any], data: dict[str, str]) -> None:
    before = AlertRule.objects.count()
    response = client.post("/alerts/rules/new/", data)
    assert response.status_code in (200, 302, 400)
    if response.status_code != 302:
        assert AlertRule.objects.count() == before
    edited = client.post(f"/alerts/rules/{alerts['rule']}/edit/", data)
    assert edited.status_code in (200, 302, 400)
