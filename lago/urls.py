"""Lago's API v1 under /lago/api/v1/ (the client joins `api/v1/` to `api_url="https://<host>/lago/"`)."""

from django.urls import path, re_path

from lago import api

V1 = "lago/api/v1"

urlpatterns: list = [
    path(f"{V1}/billable_metrics", api.BillableMetricsView.as_view(), name="lago_billable_metrics"),
    path(f"{V1}/billable_metrics/<str:code>", api.BillableMetricView.as_view(), name="lago_billable_metric"),
    path(f"{V1}/plans", api.PlansView.as_view(), name="lago_plans"),
    path(f"{V1}/plans/<str:code>", api.PlanView.as_view(), name="lago_plan"),
    path(f"{V1}/customers", api.CustomersView.as_view(), name="lago_customers"),
    path(f"{V1}/customers/<str:external_id>", api.CustomerView.as_view(), name="lago_customer"),
    path(
        f"{V1}/customers/<str:external_id>/current_usage",
        api.CurrentUsageView.as_view(),
        name="lago_current_usage",
    ),
    path(f"{V1}/subscriptions", api.SubscriptionsView.as_view(), name="lago_subscriptions"),
    path(f"{V1}/subscriptions/<str:external_id>", api.SubscriptionView.as_view(), name="lago_subscription"),
    path(f"{V1}/events", api.EventsView.as_view(), name="lago_events"),
    path(f"{V1}/events/batch", api.EventsBatchView.as_view(), name="lago_events_batch"),
    path(f"{V1}/events/<str:transaction_id>", api.EventView.as_view(), name="lago_event"),
    path(f"{V1}/invoices", api.InvoicesView.as_view(), name="lago_invoices"),
    path(f"{V1}/invoices/<str:invoice_id>", api.InvoiceView.as_view(), name="lago_invoice"),
    path(
        f"{V1}/invoices/<str:invoice_id>/download",
        api.InvoiceDownloadView.as_view(),
        name="lago_invoice_download",
    ),
    path(
        f"{V1}/invoices/<str:invoice_id>/refresh",
        api.InvoiceRefreshView.as_view(),
        name="lago_invoice_refresh",
    ),
    path(
        f"{V1}/invoices/<str:invoice_id>/finalize",
        api.InvoiceFinalizeView.as_view(),
        name="lago_invoice_finalize",
    ),
    path(f"{V1}/invoices/<str:invoice_id>/void", api.InvoiceVoidView.as_view(), name="lago_invoice_void"),
    path(f"{V1}/wallets", api.WalletsView.as_view(), name="lago_wallets"),
    path(f"{V1}/wallets/<str:wallet_id>", api.WalletView.as_view(), name="lago_wallet"),
    path(
        f"{V1}/wallets/<str:wallet_id>/wallet_transactions",
        api.WalletTransactionListView.as_view(),
        name="lago_wallet_transaction_list",
    ),
    path(f"{V1}/wallet_transactions", api.WalletTransactionsView.as_view(), name="lago_wallet_transactions"),
    path(f"{V1}/webhook_endpoints", api.WebhookEndpointsView.as_view(), name="lago_webhook_endpoints"),
    path(
        f"{V1}/webhook_endpoints/<str:lago_id>",
        api.WebhookEndpointView.as_view(),
        name="lago_webhook_endpoint",
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
