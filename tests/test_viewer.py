"""Payload viewer extras: the JSON tree with copyable paths, and copy as curl."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest
from django.test import Client

from inbox.dashboard.viewer import curl_command, json_tree
from inbox.models import Message
from tests.conftest import make_endpoint, make_message

pytestmark = pytest.mark.django_db

HOSTILE = b'{"<img src=x onerror=alert(1)>": "</script><script>alert(2)</script>", "data": {"items": [{"sku": "A-1"}]}}'


def test_it_shows_a_tree_whose_keys_copy_their_path(staff_client: Client) -> None:
    endpoint, _ = make_endpoint()
    message = make_message(endpoint, HOSTILE)
    page = staff_client.get(message.get_absolute_url()).content.decode()
    assert 'data-path="data.items.0.sku"' in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<img src=x" not in page
    assert "<script>alert(2)" not in page


def test_it_leaves_out_the_tree_for_a_huge_document() -> None:
    assert json_tree({"k": list(range(10))}) is not None
    assert json_tree({"k": list(range(10_000))}) is None


def test_it_writes_curl_with_placeholders_for_credentials(provider: Client) -> None:
    endpoint, token = make_endpoint()
    provider.post(
        endpoint.path + "?attempt=2",
        data=b'{"it\'s": "quoted"}',
        content_type="application/json",
        headers={"X-Webhook-Token": token, "Authorization": "Bearer abc", "X-Trace": "t-1"},
    )
    command = curl_command(Message.objects.get())
    # The receiver URL was shown once, when it was made: a variable, expanded by the shell.
    assert command.startswith("curl -X POST \"$RECEIVER_URL\"'?attempt=2'")
    assert endpoint.slug not in command
    assert '-H "X-Webhook-Token: $X_WEBHOOK_TOKEN"' in command
    assert '-H "Authorization: $AUTHORIZATION"' in command
    assert "-H 'X-Trace: t-1'" in command
    assert token not in command
    assert "Content-Length" not in command
    assert '--data-binary \'{"it\'"\'"\'s": "quoted"}\'' in command


@pytest.mark.django_db(transaction=True)
def test_it_copies_a_curl_that_sends_the_same_request_again(live_server: Any, settings: Any) -> None:
    settings.PUBLIC_BASE_URL = live_server.url
    endpoint, token = make_endpoint()
    original = make_message(
        endpoint,
        b'{"type": "order.paid", "note": "$HOME `id` \\"q\\""}',
        headers={"Content-Type": "application/json", "X-Webhook-Token": "[redacted]", "X-Trace": "t-9"},
    )
    env = {**os.environ, "X_WEBHOOK_TOKEN": token or "", "RECEIVER_URL": endpoint.url}
    # The point of the test: the shell runs the command exactly as a user would paste it.
    command = ["/bin/sh", "-c", curl_command(original) + " -s"]
    result = subprocess.run(command, check=True, env=env, capture_output=True, timeout=30)  # noqa: S603
    assert result.stdout == b"Message received."
    again = Message.objects.exclude(pk=original.pk).get()
    assert again.body == original.body
    assert again.headers["X-Trace"] == "t-9"
    assert again.event_type == "order.paid"
