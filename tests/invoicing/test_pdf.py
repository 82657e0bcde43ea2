"""The invoice PDF carries supplier, customer, lines with tier details, taxes, totals and the due date."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import time_machine
from fpdf import FPDF  # noqa: F401 - the renderer's dependency must import

from invoicing.pdf import invoice_pdf
from invoicing.services import customer_credit_create, invoicing_settings_update, tax_rate_create
from tests.invoicing.conftest import GRADUATED, make_customer, make_subscription, run_period

OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 1, 2, tzinfo=UTC)


def test_pdf_of_an_issued_invoice(tenant_a, tenant_b, usage):
    invoicing_settings_update(
        organization=tenant_a.org,
        supplier_name="Acme AI GmbH",
        supplier_address="Torstrasse 1\n10119 Berlin\nGermany",
        supplier_tax_id="DE123456789",
        supplier_email="billing@acme.test",
        payment_instructions="Bank transfer: IBAN DE89 3704 0044 0532 0130 00, BIC COBADEFF.",
    )
    tax_rate_create(organization=tenant_a.org, name="VAT", percentage="19", is_default=True)
    c = make_customer(tenant_a, "initech", name="Initech Corporation")
    make_subscription(
        tenant_a,
        c,
        anchor=OCT,
        items=[
            {
                "key": "platform",
                "name": "Platform fee (Pro plan)",
                "price": {"type": "flat", "amount": "49", "paymentTerm": "in_advance"},
            },
            {
                "key": "tokens",
                "name": "LLM tokens (per 1k)",
                "feature_key": "tokens",
                "price": {**GRADUATED, "minimumAmount": "100"},
                "discounts": {"percentage": {"percentage": "10"}},
            },
        ],
    )
    customer_credit_create(
        organization=tenant_a.org, customer=c, amount="20", currency="USD", description="Prepaid credit"
    )
    usage.add(c, "tokens", datetime(2026, 10, 7, tzinfo=UTC), 6250)
    with time_machine.travel(NOW, tick=False):
        invoice = run_period(tenant_a, NOW)
    data = invoice_pdf(invoice)
    assert data.startswith(b"%PDF") and len(data) > 1500
    if os.environ.get("INVOICE_PDF_OUT"):
        with open(os.environ["INVOICE_PDF_OUT"], "wb") as fh:
            fh.write(data)
