"""`manage.py add_alert NAME [--endpoint E] [--destination ID] --when KIND [--threshold N]
[--window 5m] --notify URL|email:ADDRESS [--json]`: bad input exits non-zero with a one-line
error and creates nothing; what it creates is audited as the command."""

from __future__ import annotations

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from inbox.models import AlertRule, AuditAction, AuditEntry, Destination
from tests.conftest import make_endpoint

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> str:
    out = StringIO()
    call_command("add_alert", *args, stdout=out)
    return out.getvalue()


def test_it_adds_a_rule_and_prints_it_as_json() -> None:
    shop, _ = make_endpoint("shop")
    data = json.loads(
        run(
            "Shop failing",
            "--endpoint",
            "shop",
            "--when",
            "failure_rate",
            "--threshold",
            "20",
            "--window",
            "15m",
            "--notify",
            "https://hooks.slack.com/services/T000/B000/XXXX",
            "--json",
        )
    )
    rule = AlertRule.objects.get(pk=data["id"])
    assert (rule.name, rule.kind, rule.endpoint, rule.threshold, rule.window_seconds) == (
        "Shop failing",
        "failure_rate",
        shop,
        20,
        900,
    )
    assert data == {
        "id": rule.pk,
        "name": "Shop failing",
        "when": "failure_rate",
        "endpoint": "shop",
        "destination": None,
        "threshold": 20,
        "window": "15m",
        "min_attempts": 10,
        "notify": "https://hooks.slack.com/services/T000/B000/XXXX",
        "muted": False,
    }
    entry = AuditEntry.objects.get()
    assert entry.action == AuditAction.ALERT_RULE_CREATED
    assert entry.username.startswith("manage.py add_alert (")
    assert entry.details == {"kind": "failure_rate", "via": "command"}


def test_it_uses_the_defaults_of_each_kind() -> None:
    make_endpoint("shop")
    run("quiet", "--endpoint", "shop", "--when", "silence", "--notify", "email:ops@example.com")
    run("refused", "--when", "rejections", "--notify", "email:ops@example.com")
    quiet, refused = AlertRule.objects.get(name="quiet"), AlertRule.objects.get(name="refused")
    assert (quiet.threshold, quiet.window) == (None, "1h")
    assert (refused.threshold, refused.window, refused.endpoint) == (10, "5m", None)


def test_it_takes_a_destination_and_implies_its_endpoint() -> None:
    shop, _ = make_endpoint("shop")
    destination = Destination.objects.create(endpoint=shop, url="https://example.com/hook")
    out = run("dest", "--destination", str(destination.pk), "--when", "failed", "--notify", "email:a@example.com")
    assert AlertRule.objects.get().endpoint == shop
    assert out.startswith("Added alert rule #")
    assert "a message failed (retries spent) within 5 minutes, destination https://example.com/hook of shop" in out


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--when", "sometimes", "--notify", "email:a@example.com"], "invalid choice"),
        (["--when", "failed"], "--notify"),
        (["--when", "failed", "--notify", "email:not-an-address"], "--notify: Enter email:ADDRESS"),
        (["--when", "failed", "--notify", "ftp://example.com/"], "--notify: Enter an http:// or https:// URL"),
        (["--when", "failed", "--notify", "http://169.254.169.254/"], "link-local or cloud metadata"),
        (["--when", "failed", "--notify", "email:a@example.com", "--endpoint", "nope"], "no endpoint named 'nope'"),
        (["--when", "failed", "--notify", "email:a@example.com", "--destination", "999"], "no destination with id"),
        (["--when", "failed", "--notify", "email:a@example.com", "--window", "5s"], "--window: Enter a window"),
        (["--when", "failed", "--notify", "email:a@example.com", "--window", "8d"], "from 1m to 7d"),
        (["--when", "failed", "--notify", "email:a@example.com", "--threshold", "-1"], "--threshold"),
        (["--when", "failed", "--notify", "email:a@example.com", "--threshold", "0"], "--threshold: Enter 1 or more"),
        (["--when", "failure_rate", "--notify", "email:a@example.com", "--threshold", "100"], "from 1 to 99"),
        (["--when", "silence", "--notify", "email:a@example.com", "--threshold", "3"], "Silence takes no threshold"),
        (["--when", "silence", "--notify", "email:a@example.com", "--destination", "DEST"], "scope them by endpoint"),
        (
            ["--when", "failed", "--notify", "email:a@example.com", "--endpoint", "other", "--destination", "DEST"],
            "another endpoint",
        ),
    ],
)
def test_it_refuses_bad_input_and_creates_nothing(args: list[str], problem: str) -> None:
    shop, _ = make_endpoint("shop")
    make_endpoint("other")
    destination = Destination.objects.create(endpoint=shop, url="https://example.com/hook")
    args = [str(destination.pk) if a == "DEST" else a for a in args]
    with pytest.raises(CommandError, match=problem) as caught:
        run("rule", *args)
    assert "\n" not in str(caught.value)
    assert not AlertRule.objects.exists()
    assert not AuditEntry.objects.exists()


def test_it_refuses_a_duplicate_name() -> None:
    run("dup", "--when", "failed", "--notify", "email:a@example.com")
    with pytest.raises(CommandError, match="NAME: Alert rule with this Name already exists"):
        run("dup", "--when", "failed", "--notify", "email:a@example.com")
    assert AlertRule.objects.count() == 1


def test_it_has_help_and_exits_non_zero_from_a_shell(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "DJANGO_ENV": "test", "VAR_DIR": str(tmp_path), "HOME": str(tmp_path)}
    helped = subprocess.run(
        [sys.executable, "manage.py", "add_alert", "--help"],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert helped.returncode == 0
    assert "--when {failed,failure_rate,silence,rejections}" in helped.stdout
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    refused = subprocess.run(
        [sys.executable, "manage.py", "add_alert", "x", "--when", "failed", "--notify", "email:nope"],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0
    assert refused.stderr.strip().splitlines() == [
        "CommandError: --notify: Enter email:ADDRESS with a valid email address."
    ]
