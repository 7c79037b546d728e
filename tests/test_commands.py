from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from inbox.models import BulkJob, Endpoint, Message, RejectedAttempt
from inbox.tasks import housekeeping, purge_messages_daily, send_test_webhook
from tests.conftest import is_postgres, make_endpoint, make_message

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


# --- create_endpoint ---------------------------------------------------------------------------
def test_it_creates_an_endpoint_from_the_shell_as_json(provider: Client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PUBLIC_BASE_URL = "https://hooks.example.com"
    data = json.loads(run("create_endpoint", "github", "--json", "--rate", "30/m", "--methods", "post,get"))
    endpoint = Endpoint.objects.get(slug=data["slug"])
    assert data["url"] == f"https://hooks.example.com/hooks/{endpoint.slug}/"
    assert (endpoint.rate_limit, endpoint.methods) == ("30/m", ("POST", "GET"))
    response = provider.post(
        endpoint.path, data=b"{}", content_type="application/json", headers={"X-Webhook-Token": data["token"]}
    )
    assert response.status_code == 200


def test_it_prints_the_url_and_token_as_text() -> None:
    out = run("create_endpoint", "crm")
    endpoint = Endpoint.objects.get()
    assert endpoint.url in out
    assert "Token: whi_" in out


def test_it_takes_a_chosen_secret() -> None:
    data = json.loads(run("create_endpoint", "chosen", "--secret", "a-secret-of-my-own-choosing", "--json"))
    assert data["token"] == "a-secret-of-my-own-choosing"
    assert Endpoint.objects.get().check_token("a-secret-of-my-own-choosing")


def test_it_creates_an_endpoint_without_verification() -> None:
    data = json.loads(run("create_endpoint", "open", "--auth", "none", "--json"))
    assert "token" not in data
    assert Endpoint.objects.get().auth == "none"


@pytest.mark.parametrize(
    "args",
    [
        ["--rate", "fast"],
        ["--rate", "0/m"],
        ["--rate", "1/0m"],  # a zero period would switch the limiter off
        ["--methods", "TRACE"],
        ["--methods", ","],
        ["--secret", "short"],
        ["--secret", " padded-secret-value-here "],
        ["--auth", "none", "--secret", "a-secret-of-my-own-choosing"],
        ["--header", "Bad Header"],
    ],
)
def test_it_refuses_bad_options_and_creates_nothing(args: list[str]) -> None:
    with pytest.raises(CommandError):
        call_command("create_endpoint", "x", *args, stdout=StringIO())
    assert not Endpoint.objects.exists()


def test_it_refuses_an_unknown_auth_preset() -> None:
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("create_endpoint", "x", "--auth", "nonsense", stdout=StringIO())


def test_it_refuses_a_duplicate_name() -> None:
    make_endpoint("dup")
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_endpoint", "dup", stdout=StringIO())
    assert Endpoint.objects.count() == 1


# --- purge_messages ---------------------------------------------------------------------------
def test_it_purges_messages_past_each_endpoints_retention() -> None:
    now = timezone.now()
    short, _ = make_endpoint("short", retention_days=7)
    long, _ = make_endpoint("long", retention_days=90)
    expired = make_message(short, received_at=now - timedelta(days=8))
    kept_short = make_message(short, received_at=now - timedelta(days=6))
    kept_long = make_message(long, received_at=now - timedelta(days=30))

    out = run("purge_messages", "--batch-size", "1")
    assert "Deleted 1 messages." in out
    assert "short: 1" in out
    assert set(Message.objects.values_list("pk", flat=True)) == {kept_short.pk, kept_long.pk}
    assert not Message.objects.filter(pk=expired.pk).exists()


def test_it_purges_in_batches() -> None:
    endpoint, _ = make_endpoint(retention_days=1)
    old = timezone.now() - timedelta(days=2)
    for _ in range(7):
        make_message(endpoint, received_at=old)
    assert Message.objects.expired(endpoint).delete_in_batches(3) == 7
    assert not Message.objects.exists()


def test_it_keeps_at_most_the_endpoints_cap_newest_first() -> None:
    endpoint, _ = make_endpoint(max_messages=3)
    now = timezone.now()
    messages = [make_message(endpoint, received_at=now - timedelta(minutes=n)) for n in range(5)]
    assert "Deleted 2 messages." in run("purge_messages")
    assert set(Message.objects.values_list("pk", flat=True)) == {m.pk for m in messages[:3]}


def test_it_queues_the_daily_purge_once() -> None:
    assert "Daily purge queued." in run("purge_messages", "--schedule")
    assert "already queued" in run("purge_messages", "--schedule")
    task = DBTaskResult.objects.get()
    assert task.task_path == "inbox.tasks.purge_messages_daily"
    assert task.run_after > timezone.now() + timedelta(hours=23)


def test_it_runs_the_daily_purge_as_a_task_that_queues_its_next_run() -> None:
    endpoint, _ = make_endpoint(retention_days=1)
    make_message(endpoint, received_at=timezone.now() - timedelta(days=2))
    assert purge_messages_daily.call() == 1
    assert not Message.objects.exists()
    assert DBTaskResult.objects.filter(status="READY", task_path="inbox.tasks.purge_messages_daily").count() == 1


@pytest.mark.parametrize("args", [["--batch-size", "0"], ["--batch-size", "x"]])
def test_it_refuses_a_bad_batch_size(args: list[str]) -> None:
    with pytest.raises(CommandError):
        call_command("purge_messages", *args, stdout=StringIO())


# --- ensure_staff ---------------------------------------------------------------------------
def test_it_creates_the_first_staff_login_once() -> None:
    first = run("ensure_staff")
    password = first.split("admin / ")[1].split()[0]
    user = User.objects.get(username="admin")
    assert user.is_staff
    assert user.check_password(password)
    second = run("ensure_staff")
    assert password not in second
    assert "changepassword admin" in second
    assert User.objects.count() == 1


def test_it_purges_rejected_attempts_with_the_endpoints_retention() -> None:
    endpoint, _ = make_endpoint(retention_days=7)
    old = RejectedAttempt.objects.create(
        endpoint=endpoint, status=401, reason="x", preset="token", at=timezone.now() - timedelta(days=8)
    )
    recent = RejectedAttempt.objects.create(endpoint=endpoint, status=401, reason="y", preset="token")
    run("purge_messages")
    assert list(RejectedAttempt.objects.values_list("pk", flat=True)) == [recent.pk]
    assert old.pk != recent.pk


def test_it_queues_every_periodic_task_once() -> None:
    # The search indexes' flush runs where there are search indexes: PostgreSQL.
    flush = is_postgres()
    queued = "daily purge, housekeeping, alerts" + (", search index flush" if flush else "")
    assert run("schedule_tasks") == f"Queued: {queued}.\n"
    assert run("schedule_tasks") == "Periodic tasks already queued.\n"
    assert sorted(DBTaskResult.objects.values_list("task_path", flat=True)) == [
        "inbox.tasks.evaluate_alerts",
        *(["inbox.tasks.flush_search_indexes"] if flush else []),
        "inbox.tasks.housekeeping",
        "inbox.tasks.purge_messages_daily",
    ]


def test_it_runs_housekeeping_every_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint, _ = make_endpoint()
    monkeypatch.setattr(RejectedAttempt, "CAP_PER_ENDPOINT", 5)
    for _ in range(9):
        RejectedAttempt.record(endpoint, status=403, reason="x")
    assert RejectedAttempt.objects.count() == 9, "the receiver only inserts"
    stalled = BulkJob.objects.create(status="running", progressed_at=timezone.now() - timedelta(minutes=10))
    moving = BulkJob.objects.create(status="running")
    assert housekeeping.call() == [0, 0]
    assert RejectedAttempt.objects.count() == 5
    assert BulkJob.objects.get(pk=stalled.pk).status == "failed"
    assert "The worker stopped during this job" in BulkJob.objects.get(pk=stalled.pk).error
    assert BulkJob.objects.get(pk=moving.pk).status == "running"
    waiting = DBTaskResult.objects.get(status="READY", task_path="inbox.tasks.housekeeping")
    assert timezone.now() + timedelta(seconds=50) < waiting.run_after < timezone.now() + timedelta(seconds=70)


def test_it_prunes_old_task_results_in_the_daily_purge() -> None:
    old = send_test_webhook.enqueue(1)
    recent = send_test_webhook.enqueue(2)
    DBTaskResult.objects.filter(pk=old.id).update(status="SUCCESSFUL", finished_at=timezone.now() - timedelta(days=8))
    DBTaskResult.objects.filter(pk=recent.id).update(status="FAILED", finished_at=timezone.now() - timedelta(days=1))
    purge_messages_daily.call()
    assert not DBTaskResult.objects.filter(pk=old.id).exists()
    assert DBTaskResult.objects.filter(pk=recent.id).exists()


@pytest.mark.django_db(transaction=True)  # PostgreSQL seeds over connections of its own
def test_it_seeds_a_realistic_mix_of_messages() -> None:
    out = StringIO()
    call_command("seed_messages", "--count", "400", "--days", "10", "--batch-size", "150", stdout=out)
    assert "Seeded 400 messages" in out.getvalue()
    messages = Message.objects.all()
    assert messages.count() == 400
    per_endpoint = {name: messages.filter(endpoint__name=name).count() for name in ("seed-stripe", "seed-github")}
    assert per_endpoint == {"seed-stripe": 100, "seed-github": 100}
    oldest, newest = messages.order_by("received_at").first(), messages.order_by("received_at").last()
    assert oldest is not None
    assert newest is not None
    assert 9 <= (newest.received_at - oldest.received_at).days <= 10
    stripe = messages.filter(endpoint__name="seed-stripe").first()
    assert stripe is not None
    assert stripe.json["data"]["object"]["id"].startswith("in_")
    assert json.loads(stripe.body_text or "") == stripe.json
    assert stripe.headers["X-Webhook-Token"] == "[redacted]"
    assert set(messages.values_list("status", flat=True)) <= {"skipped", "processed", "failed", "pending"}
