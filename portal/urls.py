"""Routes owned by the portal (full paths). config/urls.py includes this module."""

from django.urls import path

from portal import api

urlpatterns = [
    path("api/v1/portal/tokens", api.PortalTokenListCreateView.as_view(), name="portal_api_tokens"),
    path(
        "api/v1/portal/tokens/invalidate",
        api.PortalTokenInvalidateView.as_view(),
        name="portal_api_tokens_invalidate",
    ),
    path(
        "api/v1/portal/meters/<str:slug>/query",
        api.PortalMeterQueryView.as_view(),
        name="portal_api_meter_query",
    ),
]
