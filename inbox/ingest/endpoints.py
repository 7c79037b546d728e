"""The receiver's in-process endpoint cache.

The receiver looks an endpoint up on every request. Keeping it in process memory for a few
seconds removes that round trip from the hot path; the price is that an edit made in another
process applies after at most INBOX_ENDPOINT_CACHE_SECONDS. An edit made in this process
applies at once: saving or deleting an endpoint or a destination forgets its entry (the
signal receivers below, connected when this module is imported, which is whenever there is a
cache to forget).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models.signals import post_save, pre_delete
from django.dispatch import receiver

from inbox.models import Destination, Endpoint

_endpoint_cache: dict[str, tuple[float, Endpoint | None]] = {}
_endpoint_cache_lock = threading.Lock()


def forget_endpoint(slug: str | None = None) -> None:
    with _endpoint_cache_lock:
        if slug is None:
            _endpoint_cache.clear()
        else:
            _endpoint_cache.pop(slug, None)


def endpoint_for_slug(slug: str) -> Endpoint | None:
    """The enabled endpoint with this slug, or None; from the cache when it is fresh."""
    now = time.monotonic()
    cached = _endpoint_cache.get(slug)
    if cached is not None and cached[0] > now:
        return cached[1]
    enabled_destinations = models.Prefetch(
        "destinations", queryset=Destination.objects.filter(enabled=True), to_attr="enabled_destinations"
    )
    endpoint = Endpoint.objects.enabled().filter(slug=slug).prefetch_related(enabled_destinations).first()
    with _endpoint_cache_lock:
        if len(_endpoint_cache) > 10_000:
            # Unknown slugs are cached too (as None), so a scan cannot grow this forever.
            _endpoint_cache.clear()
        _endpoint_cache[slug] = (now + settings.INBOX_ENDPOINT_CACHE_SECONDS, endpoint)
    return endpoint


@receiver(post_save, sender=Endpoint, dispatch_uid="inbox.ingest.endpoints.endpoint_saved")
@receiver(pre_delete, sender=Endpoint, dispatch_uid="inbox.ingest.endpoints.endpoint_deleted")
def _endpoint_changed(sender: type[Endpoint], instance: Endpoint, **kwargs: Any) -> None:
    forget_endpoint(instance.slug)
    # A new URL (the slug changed): the old slug's entry must go too, or the old URL would
    # keep working until the entry expires.
    with _endpoint_cache_lock:
        stale = [slug for slug, (_, cached) in _endpoint_cache.items() if cached and cached.pk == instance.pk]
        for slug in stale:
            del _endpoint_cache[slug]


@receiver(post_save, sender=Destination, dispatch_uid="inbox.ingest.endpoints.destination_saved")
@receiver(pre_delete, sender=Destination, dispatch_uid="inbox.ingest.endpoints.destination_deleted")
def _destination_changed(sender: type[Destination], instance: Destination, **kwargs: Any) -> None:
    forget_endpoint(instance.endpoint.slug)
