"""The project's own system checks (ids inbox.E0xx / inbox.W0xx)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks

PROCESS_LOCAL_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
}


@checks.register(checks.Tags.caches)
def check_rate_limit_cache(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    backend = settings.CACHES[settings.RATELIMIT_USE_CACHE]["BACKEND"]
    if backend == "django.core.cache.backends.dummy.DummyCache":
        return [
            checks.Error(
                "The rate-limit cache is a DummyCache, so no rate limit can ever trip.",
                hint="Set REDIS_URL, or remove the DummyCache configuration.",
                id="inbox.E002",
            )
        ]
    if backend in PROCESS_LOCAL_CACHES and settings.WEB_CONCURRENCY > 1:
        return [
            checks.Error(
                f"The rate-limit cache ({backend}) lives in each process, but WEB_CONCURRENCY="
                f"{settings.WEB_CONCURRENCY}: every web process would count alone and let "
                f"{settings.WEB_CONCURRENCY} times the configured rate through.",
                hint="Set REDIS_URL to share the counters, or run a single web process (WEB_CONCURRENCY=1).",
                id="inbox.E001",
            )
        ]
    return []


@checks.register()
def check_public_base_url(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    parts = urlsplit(settings.PUBLIC_BASE_URL)
    if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path not in {"", "/"}:
        return [
            checks.Error(
                f"PUBLIC_BASE_URL must be an origin (https://hooks.example.com), not {settings.PUBLIC_BASE_URL!r}.",
                id="inbox.E003",
            )
        ]
    if parts.scheme == "http" and settings.PRODUCTION:
        return [
            checks.Warning(
                "PUBLIC_BASE_URL uses http in production: providers would send secrets in clear text.",
                id="inbox.W001",
            )
        ]
    return []


@checks.register()
def check_forwarding(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    if settings.PRODUCTION and settings.FORWARD_ALLOW_PRIVATE:
        return [
            checks.Warning(
                "FORWARD_ALLOW_PRIVATE is on in production: anyone who can edit an endpoint can make "
                "the worker send requests to loopback and private addresses on its network.",
                hint="Unset FORWARD_ALLOW_PRIVATE unless forwarding to a private service is intended.",
                id="inbox.W002",
            )
        ]
    return []
