"""Routes owned by this app (full paths: /api/... and /console/...). config/urls.py includes it."""

from django.urls import path

from core.routing import actions, collection
from invoicing import api
from invoicing.views import billing_settings, customer_sections, invoice_ops, invoices, runs, webhooks

INV = "api/v1/billing/invoices"
CREDITS = "api/v1/customers/<str:customer>/credits"
ENDPOINTS = "api/v1/notification/endpoints"

urlpatterns: list = [
    # before the detail route, which would take "invoice" for an id
    path(f"{INV}/invoice", api.InvoiceOnDemandView.as_view(), name="invoicing_invoice_on_demand"),
    *collection(INV, api.InvoiceListView, api.InvoiceDetailView, key="invoice_id", name="invoicing_invoice"),
    *actions(
        f"{INV}/<str:invoice_id>",
        "invoicing_invoice",
        advance=api.InvoiceAdvanceView,
        approve=api.InvoiceApproveView,
        void=api.InvoiceVoidView,
        retry=api.InvoiceRetryView,
        pdf=api.InvoicePdfView,
    ),
    path(
        f"{INV}/<str:invoice_id>/lines",
        api.InvoiceLineCreateView.as_view(),
        name="invoicing_invoice_line_create",
    ),
    path(
        f"{INV}/<str:invoice_id>/credit-note/pdf",
        api.CreditNotePdfView.as_view(),
        name="invoicing_credit_note_pdf",
    ),
    *collection(
        "api/v1/billing/invoice-runs",
        api.InvoiceRunListView,
        api.InvoiceRunDetailView,
        key="run_id",
        name="invoicing_run",
    ),
    *collection(CREDITS, api.CreditListView, api.CreditDetailView, key="credit_id", name="invoicing_credit"),
    *actions(f"{CREDITS}/<str:credit_id>", "invoicing_credit", void=api.CreditVoidView),
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
    *collection(
        "api/v1/tax-rates",
        api.TaxRateListView,
        api.TaxRateDetailView,
        key="tax_rate_id",
        name="invoicing_tax_rate",
    ),
    path("api/v1/billing/settings", api.BillingSettingsView.as_view(), name="invoicing_billing_settings"),
    *collection(
        ENDPOINTS, api.EndpointListView, api.EndpointDetailView, key="endpoint_id", name="invoicing_endpoint"
    ),
    *actions(f"{ENDPOINTS}/<str:endpoint_id>", "invoicing_endpoint", deliveries=api.EndpointDeliveriesView),
    # console
    path("console/invoices/", invoices.invoice_list, name="invoicing_console_invoice_list"),
    path(
        "console/invoices/<str:invoice_id>/", invoices.invoice_detail, name="invoicing_console_invoice_detail"
    ),
    path(
        "console/invoices/<str:invoice_id>/pdf",
        invoices.invoice_pdf_download,
        name="invoicing_console_invoice_pdf",
    ),
    path(
        "console/invoices/<str:invoice_id>/credit-note/pdf",
        invoices.credit_note_pdf_download,
        name="invoicing_console_credit_note_pdf",
    ),
    *(  # one view per operation on an invoice: …/advance, …/approve, …/void, …/retry, …/mark_paid
        path(f"console/invoices/<str:invoice_id>/{op}", view, name=f"invoicing_console_invoice_{op}")
        for op, view in invoice_ops.BY_URL.items()
    ),
    *customer_sections.customer_urlpatterns,  # the customer page's invoicing sections
    path("console/invoice-runs/", runs.invoice_runs, name="invoicing_console_runs"),
    path(
        "console/invoice-runs/<str:run_id>/retry", runs.invoice_run_retry, name="invoicing_console_run_retry"
    ),
    path(
        "console/billing-settings/",
        billing_settings.billing_settings,
        name="invoicing_console_billing_settings",
    ),
    *actions(
        "console/billing-settings",
        "invoicing_console_billing_settings",
        supplier=billing_settings.billing_settings_supplier,
        stripe=billing_settings.billing_settings_stripe,
        invoicing=billing_settings.billing_settings_invoicing,
    ),
    path(
        "console/billing-settings/tax-rates",
        billing_settings.billing_settings_tax_rate,
        name="invoicing_console_tax_rate_create",
    ),
    path(
        "console/billing-settings/tax-rates/<str:tax_rate_id>",
        billing_settings.billing_settings_tax_rate,
        name="invoicing_console_tax_rate_update",
    ),
    path(
        "console/billing-settings/tax-rates/<str:tax_rate_id>/archive",
        billing_settings.billing_settings_tax_rate_archive,
        name="invoicing_console_tax_rate_archive",
    ),
    path("console/webhooks/", webhooks.webhooks, name="invoicing_console_webhooks"),
    path(
        "console/webhooks/deliveries/<str:delivery_id>/resend",
        webhooks.webhook_resend,
        name="invoicing_console_webhook_resend",
    ),
]
