"""Invoices and their lines, as rows (drafts unless told otherwise)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import factory

from invoicing.models import Invoice, InvoiceLine, InvoiceStatus, LineType
from tests.factories.billing import CustomerFactory


class InvoiceFactory(factory.django.DjangoModelFactory):
    """A draft invoice for January 2026 with no lines (amounts are what the test sets)."""

    class Meta:
        model = Invoice

    customer = factory.SubFactory(CustomerFactory)
    organization = factory.SelfAttribute("customer.organization")
    currency = factory.LazyAttribute(lambda i: i.customer.currency or "USD")
    status = InvoiceStatus.DRAFT
    period_start = datetime(2026, 1, 1, tzinfo=UTC)
    period_end = datetime(2026, 2, 1, tzinfo=UTC)


class InvoiceLineFactory(factory.django.DjangoModelFactory):
    """A flat fee line of 30 (`amount` as the test sets it: it is not recomputed)."""

    class Meta:
        model = InvoiceLine

    invoice = factory.SubFactory(InvoiceFactory)
    organization = factory.SelfAttribute("invoice.organization")
    type = LineType.FLAT_FEE
    position = factory.Sequence(lambda n: n)
    description = "Base fee"
    quantity = Decimal(1)
    unit_price = Decimal(30)
    amount = Decimal(30)
    period_start = factory.SelfAttribute("invoice.period_start")
    period_end = factory.SelfAttribute("invoice.period_end")
