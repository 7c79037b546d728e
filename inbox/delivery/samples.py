"""Test deliveries: a sample event signed with the endpoint's own preset, posted to its own URL."""

from __future__ import annotations

import httpx

from inbox.models import Endpoint


def post_test_webhook(endpoint: Endpoint) -> httpx.Response:
    body, headers = endpoint.test_request()
    return httpx.post(endpoint.url, content=body, headers=headers, timeout=10)
