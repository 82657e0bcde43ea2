"""Real Chromium: mark an invoice paid with a payment record, void another, see exact unit prices and the
issued/estimate totals, and set the supplier details on Billing settings."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from invoicing.models import CreditNote, InvoicePayment
from tests.conftest import console_login
from tests.invoicing.conftest import make_customer
from tests.invoicing.test_views_invoice_ops import make_invoice

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_invoice_operations(page, tenant_a, tenant_b):
    a = make_customer(tenant_a, "initech", name="Initech Corporation")
    b = make_customer(tenant_b, "globex", name="Globex Secret")
    first = make_invoice(tenant_a, a, number="INV-1", total="12.50")
    second = make_invoice(tenant_a, a, number="INV-2", total="30.00", days=60)
    make_invoice(tenant_a, a, status="gathering", total="7.25", days=-20)
    make_invoice(tenant_b, b, number="GLOBEX-1", total="999.00")
    console_login(page, tenant_a.user.username)

    page.goto("/console/invoices/")
    assert page.locator("#totals-USD .issued-total").inner_text() == "42.50"
    assert page.locator("#totals-USD .estimate-total").inner_text() == "7.25"
    assert "GLOBEX-1" not in page.content()

    page.goto(f"/console/invoices/{first.id}/")
    assert page.locator(".unit-price").first.inner_text() == "0.0000025"
    assert page.locator("text=Retry Stripe sync").count() == 0  # Stripe is not connected
    assert page.locator("#mark-paid-form [name=amount]").input_value() == "12.50"
    paid_on = (timezone.now().date() - timedelta(days=1)).isoformat()
    page.fill("#mark-paid-form [name=paid_on]", paid_on)
    page.fill("#mark-paid-form [name=reference]", "BANK-778")
    page.click("#mark-paid-form button[type=submit]")
    page.locator("#payments").wait_for()
    assert page.locator("#invoice-status").inner_text() == "Paid"
    assert (
        "BANK-778" in page.locator("#payments").inner_text()
        and paid_on in page.locator("#payments").inner_text()
    )
    assert InvoicePayment.objects.get(invoice=first).reference == "BANK-778"

    page.goto(f"/console/invoices/{second.id}/")
    page.once("dialog", lambda d: d.accept())
    page.click("#action-void button")
    page.locator("#invoice-status:has-text('Voided')").wait_for()
    assert page.locator("#mark-paid").count() == 0
    # voiding an issued invoice issued a credit note for its whole total, shown with its PDF
    note = CreditNote.objects.get(invoice=second)
    assert note.total == Decimal("30.00") and "-CN-" in note.number
    card = page.locator("#credit-note").inner_text()
    assert note.number in card and "30.00 USD credited" in card
    pdf = page.request.get(page.locator("#credit-note-pdf").get_attribute("href"))
    assert pdf.ok and pdf.body().startswith(b"%PDF")
    assert not CreditNote.objects.filter(organization=tenant_b.org).exists()

    page.goto("/console/billing-settings/")
    page.fill("#id_supplier_name", "Acme AI GmbH")
    page.fill("#id_supplier_address", "Torstrasse 1\n10119 Berlin")
    page.fill("#id_supplier_tax_id", "DE987654321")
    page.click("#supplier-form button[type=submit]")
    page.locator("#supplier-card .flash").wait_for()
    page.reload()
    assert page.locator("#id_supplier_tax_id").input_value() == "DE987654321"
