from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, register_converter

from inbox import metrics
from inbox.dashboard import views
from inbox.ingest import receiver


class HookSlug:
    """Only what new_slug() can produce: anything else (NUL, 10,000 characters) is a 404
    before it reaches the database or the in-process endpoint cache."""

    regex = "[A-Za-z0-9_-]{1,64}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(HookSlug, "hookslug")

urlpatterns = [
    path("hooks/<hookslug:slug>/", receiver.receive, name="receiver"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("accounts/login/", views.login, name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/", include("inbox.api.urls")),
    path("", include("inbox.urls")),
]
