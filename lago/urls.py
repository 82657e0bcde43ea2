"""Lago's API v1 under /lago/api/v1/ (the client joins `api/v1/` to `api_url="https://<host>/lago/"`)."""

from django.urls import path, re_path

from core.routing import Routes, View
from lago import api

LAGO = Routes("lago/api/v1", "lago")


def _resource(plural: str, key: str, list_view: View, detail_view: View, one: str) -> list:
    """Lago's collection and item routes, named `lago_<plural>` and `lago_<one>`."""
    return LAGO.under(f"/{plural}").collection(list_view, detail_view, key=key, names=(plural, one))


urlpatterns: list = [
    *_resource(
        "billable_metrics", "code", api.BillableMetricsView, api.BillableMetricView, "billable_metric"
    ),
    *_resource("plans", "code", api.PlansView, api.PlanView, "plan"),
    *_resource("customers", "external_id", api.CustomersView, api.CustomerView, "customer"),
    LAGO.path("/customers/<str:external_id>/current_usage", api.CurrentUsageView, "current_usage"),
    *_resource("subscriptions", "external_id", api.SubscriptionsView, api.SubscriptionView, "subscription"),
    LAGO.path("/events", api.EventsView, "events"),
    LAGO.path("/events/batch", api.EventsBatchView, "events_batch"),
    LAGO.path("/events/<str:transaction_id>", api.EventView, "event"),
    *_resource("invoices", "invoice_id", api.InvoicesView, api.InvoiceView, "invoice"),
    *LAGO.under("/invoices/<str:invoice_id>", "lago_invoice").actions(
        download=api.InvoiceDownloadView,
        refresh=api.InvoiceRefreshView,
        finalize=api.InvoiceFinalizeView,
        void=api.InvoiceVoidView,
    ),
    *_resource("wallets", "wallet_id", api.WalletsView, api.WalletView, "wallet"),
    LAGO.under("/wallets/<str:wallet_id>").path(
        "/wallet_transactions", api.WalletTransactionListView, "wallet_transaction_list"
    ),
    LAGO.path("/wallet_transactions", api.WalletTransactionsView, "wallet_transactions"),
    *_resource(
        "webhook_endpoints", "lago_id", api.WebhookEndpointsView, api.WebhookEndpointView, "webhook_endpoint"
    ),
    LAGO.path("/webhooks/public_key", api.WebhookPublicKeyView, "webhook_public_key"),
    LAGO.path("/webhooks/json_public_key", api.WebhookJsonPublicKeyView, "webhook_json_public_key"),
    path("lago/files/invoices/<str:token>", api.invoice_file, name="lago_invoice_file"),
    re_path(r"^lago/(?P<path>.*)$", api.not_found_view, name="lago_not_found"),
]
