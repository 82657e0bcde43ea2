"""Routes owned by the portal (full paths). config/urls.py includes this module."""

from django.urls import re_path

from core.routing import Routes
from portal import api, console, views

API = Routes("api/v1/portal", "portal_api")
PORTAL = Routes("portal", "portal")
CONSOLE = Routes("console", "portal_console")

urlpatterns = [
    API.path("/tokens", api.PortalTokenListCreateView, "tokens"),
    API.path("/tokens/invalidate", api.PortalTokenInvalidateView, "tokens_invalidate"),
    API.path("/meters/<str:slug>/query", api.PortalMeterQueryView, "meter_query"),
    PORTAL.path("/", views.home, "home"),
    PORTAL.path("/logout/", views.logout, "logout"),
    PORTAL.path("/usage/<str:slug>/", views.usage, "usage"),
    PORTAL.path("/estimate/", views.estimate, "estimate"),
    PORTAL.path("/balances/", views.balances, "balances"),
    PORTAL.path("/invoices/", views.invoices, "invoices"),
    PORTAL.path("/plan/", views.plan, "plan"),
    *PORTAL.under("/plan", "portal_plan").actions(
        slash=True, change=views.plan_change, cancel=views.plan_cancel
    ),
    PORTAL.path("/invoices/<str:invoice_id>/pdf/", views.invoice_pdf, "invoice_pdf"),
    PORTAL.path("/invoices/<str:invoice_id>/credit-note/pdf/", views.credit_note_pdf, "credit_note_pdf"),
    re_path(r"^portal/(?P<token>mlp_[A-Za-z0-9_\-:.]+)/?$", views.magic_link, name="portal_magic_link"),
    CONSOLE.path("/customers/<str:customer_id>/portal-link/", console.customer_portal_link, "customer_link"),
    CONSOLE.path("/portal/settings/", console.portal_settings, "settings"),
]
