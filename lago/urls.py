"""Lago's API v1 under /lago/api/v1/ (the client joins `api/v1/` to `api_url="https://<host>/lago/"`)."""

from django.urls import path, re_path

from core.routing import actions, collection
from lago import api

V1 = "lago/api/v1"


def _resource(plural: str, key: str, list_view: type, detail_view: type, one: str) -> list:
    """Lago's collection and item routes, named `lago_<plural>` and `lago_<one>`."""
    return collection(
        f"{V1}/{plural}", list_view, detail_view, key=key, names=(f"lago_{plural}", f"lago_{one}")
    )


urlpatterns: list = [
    *_resource(
        "billable_metrics", "code", api.BillableMetricsView, api.BillableMetricView, "billable_metric"
    ),
    *_resource("plans", "code", api.PlansView, api.PlanView, "plan"),
    *_resource("customers", "external_id", api.CustomersView, api.CustomerView, "customer"),
    path(
        f"{V1}/customers/<str:external_id>/current_usage",
        api.CurrentUsageView.as_view(),
        name="lago_current_usage",
    ),
    *_resource("subscriptions", "external_id", api.SubscriptionsView, api.SubscriptionView, "subscription"),
    path(f"{V1}/events", api.EventsView.as_view(), name="lago_events"),
    path(f"{V1}/events/batch", api.EventsBatchView.as_view(), name="lago_events_batch"),
    path(f"{V1}/events/<str:transaction_id>", api.EventView.as_view(), name="lago_event"),
    *_resource("invoices", "invoice_id", api.InvoicesView, api.InvoiceView, "invoice"),
    *actions(
        f"{V1}/invoices/<str:invoice_id>",
        "lago_invoice",
        download=api.InvoiceDownloadView,
        refresh=api.InvoiceRefreshView,
        finalize=api.InvoiceFinalizeView,
        void=api.InvoiceVoidView,
    ),
    *_resource("wallets", "wallet_id", api.WalletsView, api.WalletView, "wallet"),
    path(
        f"{V1}/wallets/<str:wallet_id>/wallet_transactions",
        api.WalletTransactionListView.as_view(),
        name="lago_wallet_transaction_list",
    ),
    path(f"{V1}/wallet_transactions", api.WalletTransactionsView.as_view(), name="lago_wallet_transactions"),
    *_resource(
        "webhook_endpoints", "lago_id", api.WebhookEndpointsView, api.WebhookEndpointView, "webhook_endpoint"
    ),
    path(f"{V1}/webhooks/public_key", api.WebhookPublicKeyView.as_view(), name="lago_webhook_public_key"),
    path(
        f"{V1}/webhooks/json_public_key",
        api.WebhookJsonPublicKeyView.as_view(),
        name="lago_webhook_json_public_key",
    ),
    path("lago/files/invoices/<str:token>", api.invoice_file, name="lago_invoice_file"),
    re_path(r"^lago/(?P<path>.*)$", api.not_found_view, name="lago_not_found"),
]
