"""Issued invoices e-mailed to the customer with the PDF: once per invoice (a sweep twice, a concurrent
task), skipped without a billing e-mail, a failure recorded and retried, old invoices left alone, and the
status on the console page. The other organization's invoices go to their own customers only."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from invoicing.emails import EmailNotSent, invoice_email_send, invoice_emails_due
from invoicing.models import InvoiceEmail
from invoicing.tasks import invoice_emails_sweep
from tests.conftest import PASSWORD
from tests.invoicing.conftest import make_customer
from tests.invoicing.test_views_invoice_ops import make_invoice

pytestmark = pytest.mark.django_db


@pytest.fixture
def issued(tenant_a, tenant_b):
    a = make_customer(tenant_a, "initech", name="Initech Corporation")
    b = make_customer(tenant_b, "globex", name="Globex Secret")
    mine = make_invoice(tenant_a, a, number="ACME-1", total="12.50", days=0)
    theirs = make_invoice(tenant_b, b, number="GLOBEX-1", total="999.00", days=0)
    old = make_invoice(tenant_a, a, number="ACME-0", total="5.00", days=3)
    for inv in (mine, theirs, old):
        inv.due_at = timezone.now() + timedelta(days=30)
        inv.save(update_fields=["due_at"])
    return mine, theirs, old


def test_issued_invoices_are_mailed_once_with_the_pdf(issued):
    mine, theirs, old = issued
    assert sorted(invoice_emails_due()) == sorted([mine.id, theirs.id])  # ACME-0 was issued 3 days ago
    assert invoice_emails_sweep.delay().get() == 2
    assert len(mail.outbox) == 2
    acme = next(m for m in mail.outbox if "ACME-1" in m.subject)
    assert acme.to == ["billing@initech.test"] and acme.subject == "Invoice ACME-1 from Acme Inc"
    assert "Total: 12.50 USD" in acme.body and "GLOBEX" not in acme.body
    (name, content, mimetype) = acme.attachments[0]
    assert (name, mimetype) == ("ACME-1.pdf", "application/pdf") and content.startswith(b"%PDF")
    globex = next(m for m in mail.outbox if "GLOBEX-1" in m.subject)
    assert globex.to == ["billing@globex.test"]
    row = InvoiceEmail.objects.get(invoice=mine)
    assert (row.status, row.attempts, row.to) == ("sent", 1, "billing@initech.test") and row.sent_at
    # a second sweep and a late duplicate task send nothing more
    assert invoice_emails_sweep.delay().get() == 0
    assert invoice_email_send(invoice_id=mine.id) == "sent"
    assert len(mail.outbox) == 2 and not InvoiceEmail.objects.filter(invoice=old).exists()


def test_without_a_billing_email_the_invoice_is_skipped(issued):
    mine, _theirs, _old = issued
    mine.customer.primary_email = ""
    mine.customer.save(update_fields=["primary_email"])
    assert invoice_email_send(invoice_id=mine.id) == "skipped"
    assert InvoiceEmail.objects.get(invoice=mine).status == "skipped" and mail.outbox == []


def test_a_failure_is_recorded_and_sent_on_a_later_attempt(issued):
    mine, _theirs, _old = issued
    failing = mock.patch("django.core.mail.EmailMessage.send", side_effect=OSError("connection refused"))
    with failing, pytest.raises(EmailNotSent):
        invoice_email_send(invoice_id=mine.id)
    row = InvoiceEmail.objects.get(invoice=mine)
    assert (row.status, row.attempts, row.error) == ("failed", 1, "OSError: connection refused")
    assert invoice_email_send(invoice_id=mine.id) == "sent"
    row.refresh_from_db()
    assert (row.status, row.attempts, row.error) == ("sent", 2, "") and len(mail.outbox) == 1


def test_the_console_shows_the_email_status(tenant_a, issued):
    mine, theirs, _old = issued
    invoice_email_send(invoice_id=mine.id)
    client = Client()
    assert client.login(username=tenant_a.user.username, password=PASSWORD)
    html = client.get(f"/console/invoices/{mine.id}/").content.decode()
    assert "E-mailed to billing@initech.test on" in html and "with the PDF" in html
    assert client.get(f"/console/invoices/{theirs.id}/").status_code == 404
    assert Decimal(mine.total) == Decimal("12.50")
