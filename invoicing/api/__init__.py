"""Invoicing API: invoices and the upcoming invoice (`invoices.py`), customer credits (`credits.py`), invoice
runs (`runs.py`), tax rates and billing settings (`settings.py`), the Stripe app and its webhook receiver
(`stripe.py`), notification endpoints and deliveries (`webhooks.py`)."""

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
from invoicing.api.settings import BillingSettingsView, TaxRateDetailView, TaxRateListView
from invoicing.api.stripe import StripeAppView, StripeWebhookView
from invoicing.api.webhooks import EndpointDeliveriesView, EndpointDetailView, EndpointListView

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
