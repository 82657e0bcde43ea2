"""Routes owned by the portal (full paths). config/urls.py includes this module."""

from django.urls import path, re_path

from core.routing import actions
from portal import api, console, views

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
    path("portal/", views.home, name="portal_home"),
    path("portal/logout/", views.logout, name="portal_logout"),
    path("portal/usage/<str:slug>/", views.usage, name="portal_usage"),
    path("portal/estimate/", views.estimate, name="portal_estimate"),
    path("portal/balances/", views.balances, name="portal_balances"),
    path("portal/invoices/", views.invoices, name="portal_invoices"),
    path("portal/plan/", views.plan, name="portal_plan"),
    *actions("portal/plan", "portal_plan", slash=True, change=views.plan_change, cancel=views.plan_cancel),
    path("portal/invoices/<str:invoice_id>/pdf/", views.invoice_pdf, name="portal_invoice_pdf"),
    path(
        "portal/invoices/<str:invoice_id>/credit-note/pdf/",
        views.credit_note_pdf,
        name="portal_credit_note_pdf",
    ),
    re_path(r"^portal/(?P<token>mlp_[A-Za-z0-9_\-:.]+)/?$", views.magic_link, name="portal_magic_link"),
    path(
        "console/customers/<str:customer_id>/portal-link/",
        console.customer_portal_link,
        name="portal_console_customer_link",
    ),
    path("console/portal/settings/", console.portal_settings, name="portal_console_settings"),
]
