"""The production settings plus the benchmark's reference views (never deployed)."""

from __future__ import annotations

from config.settings import *  # noqa: F403

ROOT_URLCONF = "tests.bench.urls"

# The reference views must cost what they say: one raw INSERT is one round trip. Django's
# per-request health check of a persistent connection (CONN_HEALTH_CHECKS) would add a
# SELECT 1 to each of them; the real receiver skips it on a busy connection by itself
# (inbox.ingest.store.insert_rows), so every target is measured without it.
if "default" in DATABASES and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":  # noqa: F405
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False  # noqa: F405
