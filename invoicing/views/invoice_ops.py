"""One view per operation on an invoice, each behind its own URL and form: advance (gathering → draft →
issued), approve a draft, void (an issued invoice gets its credit note), retry the Stripe push, and mark
paid with a payment received outside Stripe. Each answers with the detail page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.console import console_view
from core.forms import form_write
from core.http import ConsoleRequest
from core.models import Role
from invoicing import services
from invoicing.forms import InvoiceOperationForm, PaymentForm
from invoicing.views.flash import submit_and_flash
from invoicing.views.invoices import DETAIL_PAGE, detail_context, invoice_or_404

DETAIL = "invoicing_console_invoice_detail"


def _operation(service: Callable[..., Any], done: str) -> Callable[[ConsoleRequest, str], HttpResponse]:
    """The view of an operation that takes nothing but the invoice: it runs `service` on the invoice and
    flashes `done`, or the reasons the service refused it, on the detail page."""

    @require_POST
    @console_view(min_role=Role.ADMIN)
    def view(request: ConsoleRequest, invoice_id: str) -> HttpResponse:
        invoice = invoice_or_404(request, invoice_id)
        submit_and_flash(
            request,
            InvoiceOperationForm(request.POST),
            lambda: service(organization=request.organization, invoice=invoice, actor=request.user),
            done,
        )
        return redirect(DETAIL, invoice_id=invoice.id)

    view.__name__ = view.__qualname__ = service.__name__
    return view


invoice_advance = _operation(services.invoice_advance, "Invoice advanced.")
invoice_approve = _operation(services.invoice_approve, "Invoice approved and issued.")
invoice_void = _operation(services.invoice_void, "Invoice voided.")  # an issued one gets its credit note
invoice_retry_sync = _operation(services.invoice_retry_sync, "Stripe sync queued again.")


@require_POST
@console_view(min_role=Role.ADMIN)
def invoice_mark_paid(request: ConsoleRequest, invoice_id: str) -> HttpResponse:
    """Mark paid with a payment record (amount, date received, reference) through one service."""
    invoice = invoice_or_404(request, invoice_id)
    form = PaymentForm(request.POST)
    saved = form_write(
        form,
        lambda: services.invoice_mark_paid(
            organization=request.organization,
            invoice=invoice,
            actor=request.user,
            **form.service_kwargs(),
        ),
        fields={"paidAt": "paid_on"},
    )
    if not saved:
        invoice = invoice_or_404(request, invoice.id)  # read again: the service may have moved it
        return render(request, DETAIL_PAGE, detail_context(request, invoice, payment_form=form), status=400)
    messages.success(request, "Payment recorded; the invoice is paid.")
    return redirect(DETAIL, invoice_id=invoice.id)


BY_URL = {  # the last segment of each operation's URL (console/invoices/<id>/<segment>) → its view
    "advance": invoice_advance,
    "approve": invoice_approve,
    "void": invoice_void,
    "retry": invoice_retry_sync,
    "mark_paid": invoice_mark_paid,
}
