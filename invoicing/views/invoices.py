"""Console pages of invoices: the list (filters, totals per currency), the detail page (lines, taxes,
payments, the operations its state allows, the mark-paid form) and the invoice and credit note PDFs."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from billing.selectors import customer_list
from core.console import console_view
from core.errors import NotFound
from core.http import ConsoleRequest
from core.money import quantize
from invoicing import selectors
from invoicing.credit_notes import credit_note_of
from invoicing.forms import PaymentForm
from invoicing.models import Invoice, InvoiceEmail, InvoiceStatus
from invoicing.pdf import credit_note_pdf, invoice_pdf

DETAIL_PAGE = "console/invoicing/invoice_detail.html"

OPERATIONS = {  # status -> operations offered as buttons on the detail page (each its own view and URL)
    "gathering": ["advance"],
    "draft": ["approve", "void"],
    "issued": ["void", "retry"],
    "payment_failed": ["void", "retry"],
    "overdue": ["void", "retry"],
    "uncollectible": ["void"],
}
PAYABLE = ("issued", "payment_failed", "overdue", "uncollectible")  # may be marked paid by hand


def _date(raw: str) -> datetime | None:
    """A YYYY-MM-DD filter value as midnight UTC (None when empty or malformed)."""
    try:
        return datetime.combine(date.fromisoformat(raw), time.min, tzinfo=UTC) if raw else None
    except ValueError:
        return None


def invoice_or_404(request: ConsoleRequest, invoice_id: str) -> Invoice:
    """The organization's invoice with this id, else 404."""
    try:
        return selectors.invoice_get(organization=request.organization, invoice_id=invoice_id)
    except NotFound:
        raise Http404 from None


def pdf_response(content: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{filename}.pdf"'
    return response


@console_view()
def invoice_list(request: ConsoleRequest) -> HttpResponse:
    org = request.organization
    status = request.GET.get("status", "")
    customer = request.GET.get("customer", "")
    period_from = request.GET.get("from", "")
    period_to = request.GET.get("to", "")
    qs = selectors.invoice_list(
        organization=org,
        statuses=[status] if status in InvoiceStatus.values else None,
        customer_id=customer,
        period_from=_date(period_from),
        period_to=_date(period_to),
    )
    context = {
        "invoices": list(qs[:200]),
        "totals": selectors.invoice_list_totals_split(qs),
        "statuses": InvoiceStatus.values,
        "customers": list(customer_list(organization=org)[:500]),
        "filters": {"status": status, "customer": customer, "from": period_from, "to": period_to},
    }
    template = (
        "console/invoicing/invoice_list.html#invoice-table"
        if request.htmx
        else "console/invoicing/invoice_list.html"
    )
    return render(request, template, context)


def detail_context(
    request: ConsoleRequest, invoice: Invoice, payment_form: PaymentForm | None = None
) -> dict:
    """The detail page's context; `payment_form` is the mark-paid form with the errors of a refused try."""
    stripe = selectors.stripe_settings_get(organization=request.organization)
    stripe_on = bool(stripe and stripe.enabled and stripe.secret_key)
    lines = list(invoice.lines.all())
    return {
        "invoice": invoice,
        "lines": [x for x in lines if x.type != "tax"],
        "taxes": [x for x in lines if x.type == "tax"],
        # Stripe sync is offered only when Stripe is connected
        "actions": [
            {"name": op, "url": reverse(f"invoicing_console_invoice_{op}", args=[invoice.id])}
            for op in OPERATIONS.get(invoice.status, [])
            if op != "retry" or stripe_on
        ],
        "stripe_on": stripe_on,
        "payments": list(invoice.payments.all()),
        "email": InvoiceEmail.objects.filter(invoice=invoice).first(),
        "payment_form": (
            payment_form
            or PaymentForm(
                initial={"amount": quantize(invoice.total, invoice.currency), "paid_on": timezone.localdate()}
            )
            if invoice.status in PAYABLE
            else None
        ),
    }


@console_view()
def invoice_detail(request: ConsoleRequest, invoice_id: str) -> HttpResponse:
    invoice = invoice_or_404(request, invoice_id)
    return render(request, DETAIL_PAGE, detail_context(request, invoice))


@console_view()
def invoice_pdf_download(request: ConsoleRequest, invoice_id: str) -> HttpResponse:
    invoice = invoice_or_404(request, invoice_id)
    return pdf_response(invoice_pdf(invoice), invoice.number or invoice.id)


@console_view()
def credit_note_pdf_download(request: ConsoleRequest, invoice_id: str) -> HttpResponse:
    note = credit_note_of(invoice_or_404(request, invoice_id))
    if note is None:
        raise Http404
    return pdf_response(credit_note_pdf(note), note.number)
