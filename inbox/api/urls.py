"""/api/v1/ (the resources), /api/schema/ (OpenAPI 3) and /api/docs/ (its reference page)."""

from __future__ import annotations

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from inbox.api import views

router = SimpleRouter()
router.register("endpoints", views.EndpointViewSet, basename="endpoint")
router.register("destinations", views.DestinationViewSet, basename="destination")
router.register("messages", views.MessageViewSet, basename="message")
router.register("jobs", views.JobViewSet, basename="job")
router.register("listen", views.ListenViewSet, basename="listen")

app_name = "api"

urlpatterns = [
    path("v1/listen.py", views.listen_script, name="listen-script"),
    path("v1/", include(router.urls)),
    # Anything else under /api/ is a JSON 404, not the dashboard's page.
    re_path(r"^v1/", views.not_found),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI from drf-spectacular-sidecar's files, served here (no CDN), its init script
    # a request of its own so that the page keeps the strict CSP (templates/api/).
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(url_name="api:schema", template_name="api/swagger_ui.html"),
        name="docs",
    ),
]
