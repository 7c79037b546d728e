from __future__ import annotations

from django.urls import include, path

from tests.bench import views

urlpatterns = [
    path("bench/bare/", views.bare),
    path("bench/insert/", views.raw_insert),
    path("bench/lean/insert/", views.lean_insert),
    path("bench/tutorial/<str:slug>/", views.tutorial),
    path("", include("config.urls")),
]
