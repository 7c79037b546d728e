"""Property-based tests generated from the API's own OpenAPI schema (schemathesis, in
process against the WSGI application, offline): every operation, with valid and invalid
input, answers a 4xx with a JSON body, or its documented success, and never a 5xx.

On PostgreSQL too: DATABASE_URL=postgres://... pytest tests/api/test_fuzz_api.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test.utils import override_settings
from hypothesis import HealthCheck, settings

from inbox.models import ApiToken
from tests.conftest import make_endpoint, make_message

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


@pytest.fixture
def in_test_transaction() -> Iterator[None]:
    # What Django's test client does: a request must not close the database connection the
    # test's transaction lives on (it would on PostgreSQL, with CONN_MAX_AGE).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def token(staff: Any, in_test_transaction: None) -> str:
    # Something to find, change and delete: an endpoint (id 1 on a fresh sequence, which the
    # generator tries often), its messages, a destination.
    endpoint, _ = make_endpoint("shop")
    for _ in range(3):
        make_message(endpoint)
    staff.is_superuser = True
    staff.save()
    return ApiToken.objects.issue(staff, "fuzz", "write")[1]


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@override_settings(INBOX_API_RATE="100000/m", INBOX_LISTEN_WAIT_SECONDS=0)
@pytest.mark.django_db
def test_it_never_answers_5xx_and_always_json(case: Any, token: str) -> None:
    response = case.call(headers={"Authorization": f"Bearer {token}"})
    assert response.status_code < 500, (case.method, case.formatted_path, case.query, case.body, response.text[:500])
    if response.status_code >= 400:
        headers = {name.lower(): value for name, value in response.headers.items()}
        content_type = headers.get("content-type")
        content_type = content_type[0] if isinstance(content_type, list) else content_type
        assert str(content_type).startswith("application/json"), (case.method, case.formatted_path, headers)
        assert isinstance(response.json(), dict | list)
