"""Invoicing API: invoices and the upcoming invoice (`invoices.py`), customer credits (`credits.py`), invoice
runs (`runs.py`), the Stripe app, tax rates, billing settings and notification endpoints (`settings.py`), the
Stripe webhook receiver (`stripe_webhook.py`)."""

from invoicing.api.credits import CreditDetailView, CreditListView, CreditVoidView
from invoicing.api.invoices import (
    CreditNotePdfView,
    InvoiceAdvanceView,
    InvoiceApproveView,
    InvoiceDetailView,
    InvoiceLineCreateView,
    InvoiceListView,
    InvoiceOnDemandView,
    InvoicePdfView,
    InvoiceRetryView,
    InvoiceVoidView,
    UpcomingInvoiceView,
)
from invoicing.api.runs import InvoiceRunDetailView, InvoiceRunListView
from invoicing.api.settings import (
    BillingSettingsView,
    EndpointDeliveriesView,
    EndpointDetailView,
    EndpointListView,
    StripeAppView,
    TaxRateDetailView,
    TaxRateListView,
)
from invoicing.api.stripe_webhook import StripeWebhookView

__all__ = [
    "BillingSettingsView",
    "CreditDetailView",
    "CreditListView",
    "CreditNotePdfView",
    "CreditVoidView",
    "EndpointDeliveriesView",
    "EndpointDetailView",
    "EndpointListView",
    "InvoiceAdvanceView",
    "InvoiceApproveView",
    "InvoiceDetailView",
    "InvoiceLineCreateView",
    "InvoiceListView",
    "InvoiceOnDemandView",
    "InvoicePdfView",
    "InvoiceRetryView",
    "InvoiceRunDetailView",
    "InvoiceRunListView",
    "InvoiceVoidView",
    "StripeAppView",
    "StripeWebhookView",
    "TaxRateDetailView",
    "TaxRateListView",
    "UpcomingInvoiceView",
]
