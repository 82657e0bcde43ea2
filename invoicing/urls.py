"""Routes owned by this app (full paths: /api/... and /console/...). config/urls.py includes it."""

from django.urls import path

from invoicing import api, views

INV = "api/v1/billing/invoices"
CREDITS = "api/v1/customers/<str:customer>/credits"

urlpatterns: list = [
    path(INV, api.InvoiceListView.as_view(), name="invoicing_invoice_list"),
    path(f"{INV}/invoice", api.InvoiceOnDemandView.as_view(), name="invoicing_invoice_on_demand"),
    path(f"{INV}/<str:invoice_id>", api.InvoiceDetailView.as_view(), name="invoicing_invoice_detail"),
    path(
        f"{INV}/<str:invoice_id>/advance", api.InvoiceAdvanceView.as_view(), name="invoicing_invoice_advance"
    ),
    path(
        f"{INV}/<str:invoice_id>/approve", api.InvoiceApproveView.as_view(), name="invoicing_invoice_approve"
    ),
    path(f"{INV}/<str:invoice_id>/void", api.InvoiceVoidView.as_view(), name="invoicing_invoice_void"),
    path(f"{INV}/<str:invoice_id>/retry", api.InvoiceRetryView.as_view(), name="invoicing_invoice_retry"),
    path(
        f"{INV}/<str:invoice_id>/lines",
        api.InvoiceLineCreateView.as_view(),
        name="invoicing_invoice_line_create",
    ),
    path(f"{INV}/<str:invoice_id>/pdf", api.InvoicePdfView.as_view(), name="invoicing_invoice_pdf"),
    path(
        f"{INV}/<str:invoice_id>/credit-note/pdf",
        api.CreditNotePdfView.as_view(),
        name="invoicing_credit_note_pdf",
    ),
    path("api/v1/billing/invoice-runs", api.InvoiceRunListView.as_view(), name="invoicing_run_list"),
    path(
        "api/v1/billing/invoice-runs/<str:run_id>",
        api.InvoiceRunDetailView.as_view(),
        name="invoicing_run_detail",
    ),
    path(CREDITS, api.CreditListView.as_view(), name="invoicing_credit_list"),
    path(f"{CREDITS}/<str:credit_id>", api.CreditDetailView.as_view(), name="invoicing_credit_detail"),
    path(f"{CREDITS}/<str:credit_id>/void", api.CreditVoidView.as_view(), name="invoicing_credit_void"),
    path(
        "api/v1/apps/stripe/webhook/<str:org>",
        api.StripeWebhookView.as_view(),
        name="invoicing_stripe_webhook",
    ),
    # settings
    path(
        "api/v1/customers/<str:customer>/upcoming-invoice",
        api.UpcomingInvoiceView.as_view(),
        name="invoicing_upcoming_invoice",
    ),
    path("api/v1/apps/stripe", api.StripeAppView.as_view(), name="invoicing_stripe_app"),
    path("api/v1/tax-rates", api.TaxRateListView.as_view(), name="invoicing_tax_rate_list"),
    path(
        "api/v1/tax-rates/<str:tax_rate_id>",
        api.TaxRateDetailView.as_view(),
        name="invoicing_tax_rate_detail",
    ),
    path("api/v1/billing/settings", api.BillingSettingsView.as_view(), name="invoicing_billing_settings"),
    path("api/v1/notification/endpoints", api.EndpointListView.as_view(), name="invoicing_endpoint_list"),
    path(
        "api/v1/notification/endpoints/<str:endpoint_id>",
        api.EndpointDetailView.as_view(),
        name="invoicing_endpoint_detail",
    ),
    path(
        "api/v1/notification/endpoints/<str:endpoint_id>/deliveries",
        api.EndpointDeliveriesView.as_view(),
        name="invoicing_endpoint_deliveries",
    ),
    # console
    path("console/invoices/", views.invoice_list, name="invoicing_console_invoice_list"),
    path("console/invoices/<str:invoice_id>/", views.invoice_detail, name="invoicing_console_invoice_detail"),
    path(
        "console/invoices/<str:invoice_id>/pdf",
        views.invoice_pdf_download,
        name="invoicing_console_invoice_pdf",
    ),
    path(
        "console/invoices/<str:invoice_id>/credit-note/pdf",
        views.credit_note_pdf_download,
        name="invoicing_console_credit_note_pdf",
    ),
    path(
        "console/invoices/<str:invoice_id>/<str:action>",
        views.invoice_action,
        name="invoicing_console_invoice_action",
    ),
    *views.customer_urlpatterns,  # the customer page's invoicing sections
    path("console/invoice-runs/", views.invoice_runs, name="invoicing_console_runs"),
    path(
        "console/invoice-runs/<str:run_id>/retry", views.invoice_run_retry, name="invoicing_console_run_retry"
    ),
    path("console/billing-settings/", views.billing_settings, name="invoicing_console_billing_settings"),
    path(
        "console/billing-settings/supplier",
        views.billing_settings_supplier,
        name="invoicing_console_billing_settings_supplier",
    ),
    path(
        "console/billing-settings/stripe",
        views.billing_settings_stripe,
        name="invoicing_console_billing_settings_stripe",
    ),
    path(
        "console/billing-settings/invoicing",
        views.billing_settings_invoicing,
        name="invoicing_console_billing_settings_invoicing",
    ),
    path(
        "console/billing-settings/tax-rates",
        views.billing_settings_tax_rate,
        name="invoicing_console_tax_rate_create",
    ),
    path(
        "console/billing-settings/tax-rates/<str:tax_rate_id>",
        views.billing_settings_tax_rate,
        name="invoicing_console_tax_rate_update",
    ),
    path(
        "console/billing-settings/tax-rates/<str:tax_rate_id>/archive",
        views.billing_settings_tax_rate_archive,
        name="invoicing_console_tax_rate_archive",
    ),
    path("console/webhooks/", views.webhooks, name="invoicing_console_webhooks"),
    path(
        "console/webhooks/deliveries/<str:delivery_id>/resend",
        views.webhook_resend,
        name="invoicing_console_webhook_resend",
    ),
]
