"""Voiding an issued invoice issues a credit note (docs/invoicing.md, "Voiding and credit notes"): its own
gapless number series per organization, the invoice's total credited, linked to the invoice, an audit row,
a PDF in the console, the API and the portal, and an e-mail to the customer like invoices. A draft voided
issues none; a second void is refused and issues nothing. The other organization's invoices, numbers and
credit notes never show."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail
from django.test import Client

from core.models import AuditLog
from invoicing.models import CreditNote, CreditNoteEmail, Invoice, InvoicingSettings
from invoicing.services import invoice_void
from invoicing.tasks import invoice_emails_sweep
from portal.services import portal_token_create
from tests.invoicing.conftest import make_customer
from tests.invoicing.test_views_invoice_ops import login, make_invoice, pdf_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def invoices(tenant_a, tenant_b):
    a = make_customer(tenant_a, "initech", name="Initech Corporation")
    a.primary_email = "ap@initech.test"
    a.save(update_fields=["primary_email"])
    b = make_customer(tenant_b, "globex", name="Globex Secret")
    first = make_invoice(tenant_a, a, number="ACME-2026-000001", total="12.50", days=0)
    second = make_invoice(tenant_a, a, number="ACME-2026-000002", total="30.00", days=40)
    draft = make_invoice(tenant_a, a, status="draft", total="7.00", days=80)
    theirs = make_invoice(tenant_b, b, number="GLOBEX-2026-000001", total="999.00", days=0)
    return a, first, second, draft, theirs


def test_voiding_issued_invoices_issues_gapless_credit_notes(tenant_a, tenant_b, invoices):
    _, first, second, draft, theirs = invoices
    InvoicingSettings.objects.create(organization=tenant_a.org, number_prefix="ACME")
    invoice_void(organization=tenant_a.org, invoice=first, actor=tenant_a.user, reason="Billed twice")
    invoice_void(organization=tenant_a.org, invoice=second)
    invoice_void(organization=tenant_a.org, invoice=draft)
    invoice_void(organization=tenant_b.org, invoice=theirs)

    notes = CreditNote.objects.filter(organization=tenant_a.org).order_by("number")
    year = notes[0].issued_at.year
    assert [(n.number, n.invoice_id, n.total, n.currency) for n in notes] == [
        (f"ACME-CN-{year}-000001", first.id, Decimal("12.50"), "USD"),
        (f"ACME-CN-{year}-000002", second.id, Decimal("30.00"), "USD"),
    ]
    assert notes[0].reason == "Billed twice"
    # the invoice keeps its number and is voided; the draft had no number and gets no credit note
    first.refresh_from_db()
    assert (first.status, first.number) == ("voided", "ACME-2026-000001")
    assert Invoice.objects.get(id=draft.id).status == "voided"
    assert not CreditNote.objects.filter(invoice=draft).exists()
    # the other organization counts its own series from 1
    assert list(CreditNote.objects.filter(organization=tenant_b.org).values_list("number", "invoice_id")) == [
        (f"GLOBEX-CN-{year}-000001", theirs.id)
    ]
    entry = AuditLog.objects.get(
        organization=tenant_a.org, action="credit_note.issued", object_id=notes[0].id
    )
    assert entry.after["invoiceNumber"] == "ACME-2026-000001" and entry.after["total"] == "12.500000000000"
    assert entry.actor_user_id == tenant_a.user.id


def test_a_second_void_is_refused_and_issues_nothing(tenant_a, invoices):
    from core.errors import Conflict

    _, first, *_ = invoices
    invoice_void(organization=tenant_a.org, invoice=first)
    with pytest.raises(Conflict):
        invoice_void(organization=tenant_a.org, invoice=first)
    assert CreditNote.objects.filter(organization=tenant_a.org).count() == 1


def test_credit_notes_are_emailed_once_with_their_pdf(tenant_a, tenant_b, invoices):
    _, first, _, _, theirs = invoices
    invoice_void(organization=tenant_a.org, invoice=first, reason="Billed twice")
    invoice_void(organization=tenant_b.org, invoice=theirs)
    mail.outbox.clear()
    invoice_emails_sweep.apply()
    invoice_emails_sweep.apply()  # a second sweep sends nothing again
    note = CreditNote.objects.get(invoice=first)
    # one e-mail per credit note, each to its own customer (voided invoices themselves are not mailed)
    assert sorted(m.to[0] for m in mail.outbox) == ["ap@initech.test", "billing@globex.test"]
    (message,) = [m for m in mail.outbox if m.to == ["ap@initech.test"]]
    assert message.to == ["ap@initech.test"]
    assert message.subject == f"Credit note {note.number} for invoice ACME-2026-000001 from Acme Inc"
    assert "cancels it in full" in message.body and "Reason: Billed twice" in message.body
    (name, content, kind) = message.attachments[0]
    assert (name, kind) == (f"{note.number}.pdf", "application/pdf")
    text = pdf_text(content)
    assert "CREDIT NOTE" in text and note.number in text and "ACME-2026-000001" in text
    assert "Total credited (USD)-$12.50" in text.replace("\\", "") and "Globex" not in text
    assert CreditNoteEmail.objects.get(credit_note=note).status == "sent"
    assert CreditNoteEmail.objects.get(credit_note__invoice=theirs).to == "billing@globex.test"


def test_console_shows_the_credit_note_and_its_pdf(tenant_a, tenant_b, invoices):
    _, first, second, _, theirs = invoices
    client = login(tenant_a)
    r = client.post(f"/console/invoices/{first.id}/void")
    assert r.status_code == 302
    note = CreditNote.objects.get(invoice=first)
    html = client.get(f"/console/invoices/{first.id}/").content.decode()
    assert 'id="credit-note"' in html and note.number in html
    r = client.get(f"/console/invoices/{first.id}/credit-note/pdf")
    assert r.status_code == 200 and r["Content-Type"] == "application/pdf"
    assert note.number in pdf_text(r.content)
    # the customer's invoice list links it; an invoice without a credit note and another org's answer 404
    html = client.get(
        f"/console/customers/{first.customer_id}/billing/", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert f"Credit note {note.number}" in html
    assert client.get(f"/console/invoices/{second.id}/credit-note/pdf").status_code == 404
    invoice_void(organization=tenant_b.org, invoice=theirs)
    assert client.get(f"/console/invoices/{theirs.id}/credit-note/pdf").status_code == 404


def test_api_shows_the_credit_note_and_serves_its_pdf(tenant_a, tenant_b, invoices):
    _, first, second, _, theirs = invoices
    api = tenant_a.client()
    body = api.post(f"/api/v1/billing/invoices/{first.id}/void").json()
    note = CreditNote.objects.get(invoice=first)
    assert body["status"] == "voided"
    assert body["creditNote"] == {
        "id": note.id,
        "number": note.number,
        "currency": "USD",
        "total": "12.5",
        "reason": "",
        "issuedAt": body["creditNote"]["issuedAt"],
    }
    assert api.get(f"/api/v1/billing/invoices/{second.id}").json()["creditNote"] is None
    r = api.get(f"/api/v1/billing/invoices/{first.id}/credit-note/pdf")
    assert r.status_code == 200 and note.number in pdf_text(r.content)
    r = api.get(f"/api/v1/billing/invoices/{second.id}/credit-note/pdf")
    assert r.status_code == 404 and r["Content-Type"] == "application/problem+json"
    invoice_void(organization=tenant_b.org, invoice=theirs)
    assert api.get(f"/api/v1/billing/invoices/{theirs.id}/credit-note/pdf").status_code == 404


def test_portal_lists_the_credit_note_of_the_customers_invoice(tenant_a, tenant_b, invoices):
    customer, first, second, _, theirs = invoices
    invoice_void(organization=tenant_a.org, invoice=first)
    invoice_void(organization=tenant_b.org, invoice=theirs)
    note = CreditNote.objects.get(invoice=first)
    _, token = portal_token_create(organization=tenant_a.org, customer=customer.id)
    client = Client()
    assert client.get(f"/portal/{token}").status_code == 302
    html = client.get("/portal/invoices/", HTTP_HX_REQUEST="true").content.decode()
    assert f"/portal/invoices/{first.id}/credit-note/pdf/" in html and note.number in html
    assert theirs.id not in html
    r = client.get(f"/portal/invoices/{first.id}/credit-note/pdf/")
    assert r.status_code == 200 and note.number in pdf_text(r.content)
    assert client.get(f"/portal/invoices/{second.id}/credit-note/pdf/").status_code == 404
    assert client.get(f"/portal/invoices/{theirs.id}/credit-note/pdf/").status_code == 404
