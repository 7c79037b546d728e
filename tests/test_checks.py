from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import OperationalError, connection
from django.test import Client

from inbox.checks import check_forwarding, check_public_base_url, check_rate_limit_cache

ROOT = Path(__file__).resolve().parent.parent
LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
REDIS = {"default": {"BACKEND": "inbox.ingest.ratelimit.RateLimitCache", "LOCATION": "redis://127.0.0.1:6379/15"}}


def ids(messages: list) -> list[str]:  # type: ignore[type-arg]
    return [m.id for m in messages]


def test_it_allows_a_process_local_cache_with_one_web_process(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CACHES, settings.RATELIMIT_USE_CACHE, settings.WEB_CONCURRENCY = LOCMEM, "default", 1
    assert ids(check_rate_limit_cache(None)) == []


def test_it_errors_on_a_process_local_cache_with_several_web_processes(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CACHES, settings.RATELIMIT_USE_CACHE, settings.WEB_CONCURRENCY = LOCMEM, "default", 2
    assert ids(check_rate_limit_cache(None)) == ["inbox.E001"]


def test_it_allows_a_shared_cache_with_several_web_processes(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CACHES, settings.RATELIMIT_USE_CACHE, settings.WEB_CONCURRENCY = REDIS, "default", 4
    assert ids(check_rate_limit_cache(None)) == []


def test_it_errors_on_a_dummy_cache(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    settings.RATELIMIT_USE_CACHE = "default"
    assert ids(check_rate_limit_cache(None)) == ["inbox.E002"]


@pytest.mark.parametrize("url", ["hooks.example.com", "ftp://x", "https://x.example/base/path"])
def test_it_errors_on_a_public_base_url_that_is_not_an_origin(settings, url: str) -> None:  # type: ignore[no-untyped-def]
    settings.PUBLIC_BASE_URL = url
    assert ids(check_public_base_url(None)) == ["inbox.E003"]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "VAR_DIR": str(ROOT / "var")}
    return subprocess.run(  # noqa: S603 - our own manage.py with fixed arguments
        [sys.executable, str(ROOT / "manage.py"), *args],
        capture_output=True,
        text=True,
        env={**base, **env},
        check=False,
    )


@pytest.mark.parametrize(
    ("production", "allow_private", "expected"),
    [(True, True, ["inbox.W002"]), (True, False, []), (False, True, [])],
)
def test_it_warns_when_production_forwards_to_private_addresses(settings, production, allow_private, expected) -> None:  # type: ignore[no-untyped-def]
    settings.PRODUCTION, settings.FORWARD_ALLOW_PRIVATE = production, allow_private
    assert ids(check_forwarding(None)) == expected


def test_it_refuses_to_start_in_production_without_a_secret_key() -> None:
    result = manage("check", DJANGO_ENV="production", ALLOWED_HOSTS="hooks.example.com")
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_it_stops_a_multi_process_setup_with_a_local_cache() -> None:
    result = manage("check", DJANGO_ENV="development", WEB_CONCURRENCY="3")
    assert result.returncode != 0
    assert "inbox.E001" in result.stderr


def test_it_passes_the_deployment_checklist_in_production() -> None:
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_ENV="production",
        SECRET_KEY="x" * 64 + "production-grade-secret-key-for-the-test",
        ALLOWED_HOSTS="hooks.example.com",
        PUBLIC_BASE_URL="https://hooks.example.com",
        REDIS_URL="redis://127.0.0.1:6379/15",
        WEB_CONCURRENCY="2",
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.django_db
def test_it_reports_health_without_login(client: Client) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.content) == (200, b"ok\n")
    # Many monitors ask with HEAD: the same answer without its body.
    head = client.head("/healthz")
    assert (head.status_code, head.content) == (200, b"")


@pytest.mark.django_db
def test_it_reports_a_broken_database_as_unhealthy(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_cursor(*args: object, **kwargs: object) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    assert client.get("/healthz").status_code == 503


PRODUCTION_ENV = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "x" * 64 + "production-grade-secret-key-for-the-test",
    "ALLOWED_HOSTS": "hooks.example.com",
    "PUBLIC_BASE_URL": "https://hooks.example.com",
}
# Run in a production process: a test client request over https and over plain http,
# printed as JSON (the test process itself runs with the test settings).
PROBE = """
import json
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
client = Client(HTTP_HOST="hooks.example.com")
page = client.get("/accounts/login/", secure=True)
plain = client.get("/accounts/login/")
hook = client.post("/hooks/unknown-slug/", b"{}", content_type="application/json")
print(json.dumps({
    "status": page.status_code,
    "headers": dict(page.headers),
    "csrf_cookie": {k: page.cookies["csrftoken"][k] for k in ("secure", "httponly", "samesite")},
    "plain": [plain.status_code, plain.headers.get("Location")],
    "hook": hook.status_code,
}))
"""


def test_it_serves_production_with_strict_security_headers_and_cookies(tmp_path: Path) -> None:
    database = {"SQLITE_PATH": str(tmp_path / "db.sqlite3")}
    assert manage("migrate", "--no-input", **PRODUCTION_ENV, **database).returncode == 0
    result = manage("shell", "-c", PROBE, **PRODUCTION_ENV, **database)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    headers = seen["headers"]
    assert seen["status"] == 200
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    csp = headers["Content-Security-Policy"]
    for directive in ("default-src 'self'", "object-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"):
        assert directive in csp
    for loophole in ("'unsafe-inline'", "'unsafe-eval'", "*"):
        assert loophole not in csp
    assert seen["csrf_cookie"] == {"secure": True, "httponly": True, "samesite": "Lax"}
    # Staff pages move to https; providers posting over plain http are not redirected
    # (a redirect would turn their POST into a lost GET).
    assert seen["plain"] == [301, "https://hooks.example.com/accounts/login/"]
    assert seen["hook"] == 404


def test_it_keeps_session_cookies_secure_in_production() -> None:
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings as s; print(s.SESSION_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.DEBUG)",
        **PRODUCTION_ENV,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == ["True", "True", "False"]
