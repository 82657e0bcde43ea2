"""Invoice operations in the console: mark paid with a payment record, void, "Retry Stripe sync" only when
Stripe is connected; prices with the precision they have; tier sub-lines formatted and 0.00 ones hidden
(page and PDF); the list separates issued totals from estimates; supplier details edited on Billing
settings and printed on the PDF. Another organization's invoices never show."""

from __future__ import annotations

import re
import zlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.models import AuditLog
from invoicing.models import Invoice, InvoiceLine, InvoicePayment, StripeSettings
from invoicing.pdf import invoice_pdf
from tests.conftest import PASSWORD
from tests.invoicing.conftest import make_customer

pytestmark = pytest.mark.django_db

BUDGET = 10


def login(tenant) -> Client:
    client = Client()
    assert client.login(username=tenant.user.username, password=PASSWORD)
    client.get("/console/")  # the first console request stores the organization in the session
    return client


def pdf_text(data: bytes) -> str:
    """The text drawn on the PDF's pages (fpdf2 deflates each page stream)."""
    out = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            out.append(zlib.decompress(stream).decode("latin-1"))
        except zlib.error:
            out.append(stream.decode("latin-1", "replace"))
    return "".join(re.findall(r"\((.*?)\) ?Tj", "".join(out)))


def make_invoice(tenant, customer, *, status="issued", number="INV-1", total="12.50", days=30) -> Invoice:
    now = timezone.now()
    invoice = Invoice.objects.create(
        organization=tenant.org,
        customer=customer,
        currency="USD",
        status=status,
        number=number if status not in ("gathering", "draft") else "",
        period_start=now - timedelta(days=days + 30),
        period_end=now - timedelta(days=days),
        issued_at=now - timedelta(days=days) if status not in ("gathering", "draft") else None,
        amount=Decimal(total),
        total=Decimal(total),
    )
    InvoiceLine.objects.create(
        organization=tenant.org,
        invoice=invoice,
        type="usage",
        position=0,
        description="AI tokens",
        quantity=Decimal("5000000"),
        unit_price=Decimal("0.0000025"),
        amount=Decimal(total),
        detail=[
            {
                "type": "tier",
                "description": "Tier 1: first 1000 units free",
                "quantity": "1000",
                "unitAmount": "0",
                "amount": "0",
                "tier": 1,
            },
            {
                "type": "tier",
                "description": "Tier 2: units above 1000",
                "quantity": "4999000",
                "unitAmount": "0.0000025",
                "amount": "12.4975",
                "tier": 2,
            },
            {
                "type": "tier",
                "description": "Tier 3 flat",
                "quantity": "1",
                "unitAmount": "0.00004",
                "amount": "4.00004",
                "tier": 3,
            },
            {"type": "cumulative", "description": "running", "amount": "16.49754"},
        ],
    )
    return invoice


@pytest.fixture
def books(tenant_a, tenant_b):
    a = make_customer(tenant_a, "initech", name="Initech Corporation")
    b = make_customer(tenant_b, "globex", name="Globex Secret")
    issued = make_invoice(tenant_a, a)
    other = make_invoice(tenant_b, b, number="GLOBEX-1", total="999.00")
    return a, b, issued, other


def test_mark_paid_records_the_payment(tenant_a, books):
    _a, _b, issued, other = books
    client = login(tenant_a)
    page = client.get(f"/console/invoices/{issued.id}/").content.decode()
    assert 'id="mark-paid-form"' in page and 'value="12.500000000000"' not in page
    r = client.post(
        f"/console/invoices/{issued.id}/mark_paid",
        {
            "amount": "12.50",
            "paid_on": (timezone.now().date() - timedelta(days=2)).isoformat(),
            "reference": "BANK-778",
        },
    )
    assert r.status_code == 302
    issued.refresh_from_db()
    paid_at = datetime.combine(
        timezone.now().date() - timedelta(days=2), datetime.min.time(), tzinfo=UTC
    ) + timedelta(hours=12)
    assert issued.status == "paid" and issued.paid_at == paid_at
    payment = InvoicePayment.objects.get(invoice=issued)
    assert (payment.amount, payment.currency, payment.reference, payment.paid_at) == (
        Decimal("12.50"),
        "USD",
        "BANK-778",
        paid_at,
    )
    assert AuditLog.objects.filter(organization=tenant_a.org, action="invoice.payment_recorded").count() == 1
    page = client.get(f"/console/invoices/{issued.id}/").content.decode()
    assert 'id="payments"' in page and "BANK-778" in page and 'id="mark-paid-form"' not in page
    # the other organization's invoice is not found, and nothing changed there
    assert (
        client.post(
            f"/console/invoices/{other.id}/mark_paid", {"amount": "999", "paid_on": "2026-01-01"}
        ).status_code
        == 404
    )
    other.refresh_from_db()
    assert other.status == "issued" and not InvoicePayment.objects.filter(invoice=other).exists()


def test_mark_paid_refuses_a_wrong_amount_or_a_future_date(tenant_a, books):
    _a, _b, issued, _other = books
    client = login(tenant_a)
    r = client.post(
        f"/console/invoices/{issued.id}/mark_paid",
        {"amount": "10", "paid_on": timezone.now().date().isoformat()},
    )
    assert r.status_code == 400 and "settle the invoice total of 12.50 USD" in r.content.decode()
    r = client.post(
        f"/console/invoices/{issued.id}/mark_paid",
        {"amount": "12.50", "paid_on": (timezone.now().date() + timedelta(days=3)).isoformat()},
    )
    assert r.status_code == 400 and 'id="pay-error-paid_on"' in r.content.decode()
    issued.refresh_from_db()
    assert issued.status == "issued" and not InvoicePayment.objects.exists()


def test_void_and_retry_only_when_stripe_is_connected(tenant_a, books):
    _a, _b, issued, _other = books
    client = login(tenant_a)
    page = client.get(f"/console/invoices/{issued.id}/").content.decode()
    assert 'id="action-void"' in page and "Retry Stripe sync" not in page
    StripeSettings.objects.create(organization=tenant_a.org, secret_key="sk_test_" + "x" * 24, enabled=True)
    page = client.get(f"/console/invoices/{issued.id}/").content.decode()
    assert "Retry Stripe sync" in page
    r = client.post(f"/console/invoices/{issued.id}/void")
    assert r.status_code == 302
    issued.refresh_from_db()
    assert issued.status == "voided" and issued.number == "INV-1"
    page = client.get(f"/console/invoices/{issued.id}/").content.decode()
    assert 'id="action-void"' not in page and 'id="mark-paid-form"' not in page


def test_prices_keep_their_precision_and_sub_lines_are_formatted(tenant_a, books):
    _a, _b, issued, _other = books
    page = login(tenant_a).get(f"/console/invoices/{issued.id}/").content.decode()
    assert '<td class="num mono unit-price">0.0000025</td>' in page and "0.0000<" not in page
    assert '<td class="num mono">5,000,000</td>' in page
    assert "Tier 2: units above 1000" in page and ">4,999,000<" in page and ">12.50<" in page
    assert "Tier 3 flat" in page and ">4.00<" in page and "4.00004" not in page
    assert "Tier 1: first 1000 units free" not in page  # a 0.00 sub-line
    assert "running" not in page
    text = pdf_text(invoice_pdf(issued))
    assert "0.0000025" in text and "5,000,000" in text and "4,999,000" in text
    assert "Tier 1" not in text and "4.00004" not in text and "Tier 3 flat" in text


def test_list_separates_issued_totals_from_estimates(tenant_a, books):
    a, _b, _issued, _other = books
    make_invoice(tenant_a, a, status="paid", number="INV-2", total="100.00", days=60)
    make_invoice(tenant_a, a, status="voided", number="INV-3", total="40.00", days=90)
    make_invoice(tenant_a, a, status="gathering", total="7.25", days=-20)
    make_invoice(tenant_a, a, status="draft", total="3.00", days=0)
    page = login(tenant_a).get("/console/invoices/").content.decode()
    row = page[page.index('id="totals-USD"') :]
    row = row[: row.index("</tr>")]
    assert '<td class="num">2</td><td class="num mono issued-total">112.50</td>' in row
    assert '<td class="num">2</td><td class="num mono estimate-total">10.25</td>' in row
    assert "GLOBEX-1" not in page and "999.00" not in page and 'id="totals-' in page


def test_supplier_details_edited_on_billing_settings_and_printed(tenant_a, tenant_b, books):
    _a, _b, issued, _other = books
    client = login(tenant_a)
    assert 'id="supplier-form"' in client.get("/console/billing-settings/").content.decode()
    r = client.post(
        "/console/billing-settings/supplier",
        {
            "supplier_name": "Acme AI GmbH",
            "supplier_address": "Torstrasse 1\n10119 Berlin",
            "supplier_tax_id": "DE987654321",
            "supplier_email": "billing@acme.test",
            "payment_instructions": "IBAN DE89 3704",
        },
        HTTP_HX_REQUEST="true",
    )
    assert r.status_code == 200 and "Supplier details saved." in r.content.decode()
    r = client.post("/console/billing-settings/supplier", {"supplier_email": "nope"}, HTTP_HX_REQUEST="true")
    assert 'id="supplier-error-supplier_email"' in r.content.decode()
    from invoicing.services import invoicing_settings_get

    cfg = invoicing_settings_get(organization=tenant_a.org)
    assert (cfg.supplier_name, cfg.supplier_tax_id, cfg.supplier_email) == (
        "Acme AI GmbH",
        "DE987654321",
        "billing@acme.test",
    )
    assert invoicing_settings_get(organization=tenant_b.org).supplier_name == ""
    text = pdf_text(invoice_pdf(issued))  # an invoice without a snapshot prints the current details
    assert "Acme AI GmbH" in text and "Torstrasse 1" in text and "Tax ID: DE987654321" in text


def test_invoice_pages_within_budget_and_constant(tenant_a, tenant_b, books):
    a, b, issued, _other = books
    client = login(tenant_a)

    def counts() -> list[int]:
        out = []
        for url in ("/console/invoices/", f"/console/invoices/{issued.id}/"):
            with CaptureQueriesContext(connection) as ctx:
                assert client.get(url).status_code == 200
            out.append(len(ctx.captured_queries))
        return out

    small = counts()
    for i in range(15):
        make_invoice(tenant_a, a, status="paid", number=f"X-{i}", days=90 + 30 * i)
        make_invoice(tenant_b, b, status="paid", number=f"Y-{i}", days=90 + 30 * i)
    InvoicePayment.objects.create(
        organization=tenant_a.org, invoice=issued, amount=Decimal("1"), currency="USD", paid_at=timezone.now()
    )
    big = counts()
    assert small == big and max(big) <= BUDGET, (small, big)


def test_webhook_endpoint_added_from_the_console(tenant_a, tenant_b, settings):
    from invoicing.models import WebhookEndpoint

    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    client = login(tenant_a)
    r = client.post(
        "/console/webhooks/",
        {
            "url": "http://127.0.0.1:9/hook",
            "event_types": ["invoice.issued", "invoice.paid"],
            "description": "ERP",
        },
        follow=True,
    )
    endpoint = WebhookEndpoint.objects.get(organization=tenant_a.org)
    assert (endpoint.url, sorted(endpoint.event_types), endpoint.description) == (
        "http://127.0.0.1:9/hook",
        ["invoice.issued", "invoice.paid"],
        "ERP",
    )
    assert "Endpoint added. Signing secret:" in r.content.decode()
    r = client.post(
        "/console/webhooks/", {"url": "http://127.0.0.1:9/x", "event_types": ["nope"]}, follow=True
    )
    assert "Select a valid choice" in r.content.decode()
    assert WebhookEndpoint.objects.count() == 1 and not WebhookEndpoint.objects.filter(
        organization=tenant_b.org
    )
