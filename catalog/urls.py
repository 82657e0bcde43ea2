"""Routes owned by this app (full paths: /api/... and /console/...). config/urls.py includes it."""

from django.urls import path

from catalog import api

urlpatterns = [
    path("api/v1/prices/preview", api.PricePreviewView.as_view(), name="catalog_price_preview"),
]
