"""The production settings plus the benchmark's reference views (never deployed)."""

from __future__ import annotations

from config.settings import *  # noqa: F403

ROOT_URLCONF = "tests.bench.urls"
