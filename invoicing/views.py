"""Console pages: invoices (list with filters and totals, detail with the actions its state allows, PDF),
invoice runs (progress, failures, retry) and webhooks (endpoints, delivery log, resend)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from billing.selectors import customer_list
from core.console import console_view, flash_domain_error
from core.errors import DomainError, NotFound
from core.http import ConsoleRequest
from core.models import Role
from invoicing import runs, selectors, services
from invoicing import webhooks as webhooks_module
from invoicing.models import InvoiceStatus
from invoicing.pdf import invoice_pdf

ACTIONS = {  # status -> actions offered on the detail page
    "gathering": ["advance"],
    "draft": ["approve", "void"],
    "issued": ["void", "retry"],
    "payment_failed": ["void", "retry"],
    "overdue": ["void", "retry"],
    "uncollectible": ["void"],
}


def _date(raw: str) -> datetime | None:
    """A YYYY-MM-DD filter value as midnight UTC (None when empty or malformed)."""
    try:
        return datetime.combine(date.fromisoformat(raw), time.min, tzinfo=UTC) if raw else None
    except ValueError:
        return None


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
        "totals": selectors.invoice_list_totals(qs),
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


@console_view()
def invoice_detail(request: ConsoleRequest, invoice_id: str) -> HttpResponse:
    try:
        invoice = selectors.invoice_get(organization=request.organization, invoice_id=invoice_id)
    except NotFound:
        raise Http404 from None
    lines = list(invoice.lines.all())
    return render(
        request,
        "console/invoicing/invoice_detail.html",
        {
            "invoice": invoice,
            "lines": [x for x in lines if x.type != "tax"],
            "taxes": [x for x in lines if x.type == "tax"],
            "actions": ACTIONS.get(invoice.status, []),
        },
    )


@console_view()
def invoice_pdf_download(request: ConsoleRequest, invoice_id: str) -> HttpResponse:
    try:
        invoice = selectors.invoice_get(organization=request.organization, invoice_id=invoice_id)
    except NotFound:
        raise Http404 from None
    response = HttpResponse(invoice_pdf(invoice), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{invoice.number or invoice.id}.pdf"'
    return response


@require_POST
@console_view(min_role=Role.ADMIN)
def invoice_action(request: ConsoleRequest, invoice_id: str, action: str) -> HttpResponse:
    org = request.organization
    try:
        invoice = selectors.invoice_get(organization=org, invoice_id=invoice_id)
    except NotFound:
        raise Http404 from None
    handlers = {
        "advance": services.invoice_advance,
        "approve": services.invoice_approve,
        "void": services.invoice_void,
        "retry": services.invoice_retry_sync,
    }
    if action not in handlers:
        raise Http404
    try:
        handlers[action](organization=org, invoice=invoice, actor=request.user)
        messages.success(request, f"Invoice: {action} done.")
    except DomainError as exc:
        flash_domain_error(request, exc)
    return redirect("invoicing_console_invoice_detail", invoice_id=invoice.id)


@console_view()
def invoice_runs(request: ConsoleRequest) -> HttpResponse:
    org = request.organization
    run_list = list(selectors.invoice_run_list(organization=org)[:50])
    failed = {
        r.id: list(selectors.invoice_run_items(organization=org, run_id=r.id).filter(status="failed")[:20])
        for r in run_list
        if r.failed
    }
    template = "console/invoicing/runs.html#runs-table" if request.htmx else "console/invoicing/runs.html"
    return render(request, template, {"runs": run_list, "failed": failed})


@require_POST
@console_view(min_role=Role.ADMIN)
def invoice_run_retry(request: ConsoleRequest, run_id: str) -> HttpResponse:
    count = runs.invoice_run_retry_failed(organization=request.organization, run_id=run_id)
    messages.success(request, f"{count} failed item(s) queued again.")
    return redirect("invoicing_console_runs")


@console_view(min_role=Role.ADMIN)
def webhooks(request: ConsoleRequest) -> HttpResponse:
    org = request.organization
    if request.method == "POST":
        try:
            endpoint = webhooks_module.webhook_endpoint_create(
                organization=org,
                url=request.POST.get("url", "").strip(),
                event_types=request.POST.getlist("event_types"),
                description=request.POST.get("description", ""),
                actor=request.user,
            )
            messages.success(request, f"Endpoint added. Signing secret: {endpoint.secret}")
        except DomainError as exc:
            flash_domain_error(request, exc)
        return redirect("invoicing_console_webhooks")
    return render(
        request,
        "console/invoicing/webhooks.html",
        {
            "endpoints": list(selectors.webhook_endpoint_list(organization=org)),
            "deliveries": selectors.webhook_delivery_list(organization=org),
            "event_types": webhooks_module.EVENT_TYPES,
        },
    )


@require_POST
@console_view(min_role=Role.ADMIN)
def webhook_resend(request: ConsoleRequest, delivery_id: str) -> HttpResponse:
    try:
        webhooks_module.webhook_delivery_resend(
            organization=request.organization, delivery_id=delivery_id, actor=request.user
        )
        messages.success(request, "Delivery queued again.")
    except DomainError as exc:
        flash_domain_error(request, exc)
    return redirect("invoicing_console_webhooks")
