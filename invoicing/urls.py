"""Routes owned by this app (full paths: /api/... and /console/...). config/urls.py includes it."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
