"""Console pages: invoices (list with filters and totals, detail with the actions its state allows, PDF),
invoice runs (progress, failures, retry) and webhooks (endpoints, delivery log, resend)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_POST

from billing.selectors import customer_list
from core.console import console_view, flash_domain_error
from core.errors import DomainError, NotFound, ValidationFailed
from core.http import ConsoleRequest
from core.models import Organization, Role
from core.money import quantize
from invoicing import credits as credits_module
from invoicing import runs, selectors, services
from invoicing import webhooks as webhooks_module
from invoicing.credit_notes import credit_note_of
from invoicing.forms import (
    CreditForm,
    InvoiceSettingsForm,
    PaymentForm,
    StripeForm,
    SupplierForm,
    TaxRateForm,
    WebhookEndpointForm,
)
from invoicing.models import InvoiceEmail, InvoiceStatus
from invoicing.pdf import credit_note_pdf, invoice_pdf

ACTIONS = {  # status -> actions offered on the detail page
    "gathering": ["advance"],
    "draft": ["approve", "void"],
    "issued": ["void", "retry"],
    "payment_failed": ["void", "retry"],
    "overdue": ["void", "retry"],
    "uncollectible": ["void"],
}


DONE = {
    "advance": "Invoice advanced.",
    "approve": "Invoice approved and issued.",
    "void": "Invoice voided.",
    "retry": "Stripe sync queued again.",
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


PAYABLE = ("issued", "payment_failed", "overdue", "uncollectible")  # may be marked paid by hand


def _detail_context(request: ConsoleRequest, invoice: Any, payment_form: PaymentForm | None = None) -> dict:
    stripe = selectors.stripe_settings_get(organization=request.organization)
    stripe_on = bool(stripe and stripe.enabled and stripe.secret_key)
    lines = list(invoice.lines.all())
    return {
        "invoice": invoice,
        "lines": [x for x in lines if x.type != "tax"],
        "taxes": [x for x in lines if x.type == "tax"],
        # Stripe sync is offered only when Stripe is connected
        "actions": [a for a in ACTIONS.get(invoice.status, []) if a != "retry" or stripe_on],
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
    try:
        invoice = selectors.invoice_get(organization=request.organization, invoice_id=invoice_id)
    except NotFound:
        raise Http404 from None
    return render(request, "console/invoicing/invoice_detail.html", _detail_context(request, invoice))


def _mark_paid(request: ConsoleRequest, invoice: Any) -> HttpResponse:
    """Mark paid with a payment record (amount, date received, reference) through one service."""
    form = PaymentForm(request.POST)
    if form.is_valid():
        try:
            services.invoice_mark_paid(
                organization=request.organization,
                invoice=invoice,
                actor=request.user,
                **form.service_kwargs(),
            )
        except DomainError as exc:
            field = {"paidAt": "paid_on"}.get(exc.field or "", exc.field)
            form.add_error(field if field in form.fields else None, exc.detail)
    if form.errors:
        invoice = selectors.invoice_get(organization=request.organization, invoice_id=invoice.id)
        context = _detail_context(request, invoice, payment_form=form)
        return render(request, "console/invoicing/invoice_detail.html", context, status=400)
    messages.success(request, "Payment recorded; the invoice is paid.")
    return redirect("invoicing_console_invoice_detail", invoice_id=invoice.id)


@console_view()
def invoice_pdf_download(request: ConsoleRequest, invoice_id: str) -> HttpResponse:
    try:
        invoice = selectors.invoice_get(organization=request.organization, invoice_id=invoice_id)
    except NotFound:
        raise Http404 from None
    response = HttpResponse(invoice_pdf(invoice), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{invoice.number or invoice.id}.pdf"'
    return response


@console_view()
def credit_note_pdf_download(request: ConsoleRequest, invoice_id: str) -> HttpResponse:
    try:
        invoice = selectors.invoice_get(organization=request.organization, invoice_id=invoice_id)
    except NotFound:
        raise Http404 from None
    note = credit_note_of(invoice)
    if note is None:
        raise Http404
    response = HttpResponse(credit_note_pdf(note), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{note.number}.pdf"'
    return response


@require_POST
@console_view(min_role=Role.ADMIN)
def invoice_action(request: ConsoleRequest, invoice_id: str, action: str) -> HttpResponse:
    org = request.organization
    try:
        invoice = selectors.invoice_get(organization=org, invoice_id=invoice_id)
    except NotFound:
        raise Http404 from None
    if action == "mark_paid":
        return _mark_paid(request, invoice)
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
        messages.success(request, DONE[action])
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
        form = WebhookEndpointForm(request.POST, event_types=webhooks_module.EVENT_TYPES)
        if not form.is_valid():
            messages.error(request, " ".join(str(e) for errs in form.errors.values() for e in errs))
            return redirect("invoicing_console_webhooks")
        try:
            endpoint = webhooks_module.webhook_endpoint_create(
                organization=org,
                url=form.cleaned_data["url"],
                event_types=form.cleaned_data["event_types"],
                description=form.cleaned_data["description"],
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


# --- billing settings: Stripe, tax rates, invoice settings ------------------------------------------
SETTINGS_PAGE = "console/invoicing/billing_settings.html"
INVOICE_FORM_FIELDS = ("collection_delay_seconds", "draft_period_seconds", "due_days", "number_prefix")


def _errors(exc: ValidationFailed) -> dict[str, str]:
    return {e["name"]: e["reason"] for e in exc.errors} or {"form": exc.detail}


def _stripe_context(org: Organization, request: ConsoleRequest) -> dict[str, Any]:
    cfg = selectors.stripe_settings_get(organization=org)
    return {
        "stripe": cfg,
        "stripe_key_hint": selectors.secret_hint(cfg.secret_key) if cfg else "",
        "stripe_hook_hint": selectors.secret_hint(cfg.webhook_secret) if cfg else "",
        "stripe_webhook_url": selectors.stripe_webhook_url(organization=org, request=request),
        "stripe_errors": {},
    }


def _settings_context(org: Organization) -> dict[str, Any]:
    cfg = services.invoicing_settings_get(organization=org)
    return {
        "inv": {f: getattr(cfg, f) for f in (*INVOICE_FORM_FIELDS, "auto_advance")},
        "inv_errors": {},
    }


def _supplier_context(org: Organization, form: SupplierForm | None = None) -> dict[str, Any]:
    cfg = services.invoicing_settings_get(organization=org)
    initial = {f: getattr(cfg, f) for f in SupplierForm.base_fields}
    return {"supplier_form": form or SupplierForm(initial=initial), "supplier_default_name": org.name}


def _rates_context(org: Organization) -> dict[str, Any]:
    return {
        "rates": [
            _RateForm(
                r.id,
                name=r.name,
                percentage=format(r.percentage.normalize(), "f"),
                inclusive=r.inclusive,
                is_default=r.is_default,
            )
            for r in selectors.tax_rate_list(organization=org)
        ],
        "rate_errors": {},
        "new_rate": {},
    }


def _partial(
    request: ConsoleRequest, name: str, context: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    """htmx: the named partial only; otherwise the whole page (errors shown in place)."""
    org = request.organization
    if request.htmx:
        return render(request, f"{SETTINGS_PAGE}#{name}", context, status=status)
    full = {
        **_stripe_context(org, request),
        **_settings_context(org),
        **_rates_context(org),
        **_supplier_context(org),
        **context,
    }
    return render(request, SETTINGS_PAGE, full, status=status)


@console_view(min_role=Role.ADMIN)
def billing_settings(request: ConsoleRequest) -> HttpResponse:
    org = request.organization
    context = {
        **_stripe_context(org, request),
        **_settings_context(org),
        **_rates_context(org),
        **_supplier_context(org),
    }
    return render(request, SETTINGS_PAGE, context)


@require_POST
@console_view(min_role=Role.ADMIN)
def billing_settings_supplier(request: ConsoleRequest) -> HttpResponse:
    """Supplier details (name, address, tax id, e-mail, payment instructions) printed on invoices."""
    org = request.organization
    form = SupplierForm(request.POST)
    if form.is_valid():
        try:
            services.invoicing_settings_update(organization=org, actor=request.user, **form.cleaned_data)
        except ValidationFailed as exc:
            for name, reason in _errors(exc).items():
                field = SNAKE_SUPPLIER.get(name)
                form.add_error(field if field in form.fields else None, reason)
    if form.errors:
        return _partial(
            request, "supplier-card", _supplier_context(org, form), status=200 if request.htmx else 400
        )
    if not request.htmx:
        messages.success(request, "Supplier details saved.")
        return redirect("invoicing_console_billing_settings")
    return _partial(request, "supplier-card", {**_supplier_context(org), "supplier_saved": True})


SNAKE_SUPPLIER = {
    "supplierName": "supplier_name",
    "supplierAddress": "supplier_address",
    "supplierTaxId": "supplier_tax_id",
    "supplierEmail": "supplier_email",
    "paymentInstructions": "payment_instructions",
}


@require_POST
@console_view(min_role=Role.ADMIN)
def billing_settings_stripe(request: ConsoleRequest) -> HttpResponse:
    org = request.organization
    form = StripeForm(request.POST)
    form.is_valid()  # every field is optional; the service validates the values
    try:
        # empty secret inputs keep the stored secret (write-only fields are never filled back)
        services.stripe_settings_set(organization=org, actor=request.user, **form.service_kwargs())
    except ValidationFailed as exc:
        return _partial(
            request,
            "stripe-card",
            {**_stripe_context(org, request), "stripe_errors": _errors(exc)},
            status=400,
        )
    if not request.htmx:
        messages.success(request, "Stripe settings saved.")
        return redirect("invoicing_console_billing_settings")
    return _partial(request, "stripe-card", {**_stripe_context(org, request), "stripe_saved": True})


@require_POST
@console_view(min_role=Role.ADMIN)
def billing_settings_invoicing(request: ConsoleRequest) -> HttpResponse:
    org = request.organization
    form = InvoiceSettingsForm(request.POST)
    form.is_valid()  # every field is optional; the service validates the values
    fields: dict[str, Any] = {f: form.cleaned_data.get(f, "") for f in INVOICE_FORM_FIELDS}
    fields["auto_advance"] = form.cleaned_data.get("auto_advance", False)
    try:
        services.invoicing_settings_update(organization=org, actor=request.user, **fields)
    except ValidationFailed as exc:
        errors = {SNAKE.get(k, k): v for k, v in _errors(exc).items()}
        return _partial(request, "invoice-settings", {"inv": fields, "inv_errors": errors}, status=400)
    if not request.htmx:
        messages.success(request, "Invoice settings saved.")
        return redirect("invoicing_console_billing_settings")
    return _partial(request, "invoice-settings", {**_settings_context(org), "inv_saved": True})


SNAKE = {
    "collectionDelaySeconds": "collection_delay_seconds",
    "draftPeriodSeconds": "draft_period_seconds",
    "dueDays": "due_days",
    "numberPrefix": "number_prefix",
    "autoAdvance": "auto_advance",
}


@require_POST
@console_view(min_role=Role.ADMIN)
def billing_settings_tax_rate(request: ConsoleRequest, tax_rate_id: str = "") -> HttpResponse:
    """Create (no id) or edit a tax rate; answers with the tax rate table."""
    org = request.organization
    form = TaxRateForm(request.POST)
    form.is_valid()  # every field is optional; the service validates the values
    values: dict[str, Any] = form.service_kwargs()
    try:
        if tax_rate_id:
            services.tax_rate_update(organization=org, tax_rate_id=tax_rate_id, actor=request.user, **values)
        else:
            services.tax_rate_create(organization=org, actor=request.user, **values)
    except NotFound:
        raise Http404 from None
    except ValidationFailed as exc:
        context = _rates_context(org)
        if tax_rate_id:
            context["rates"] = [
                _RateForm(r.id, **values, errors=_errors(exc)) if r.id == tax_rate_id else r
                for r in context["rates"]
            ]
        else:
            context["rate_errors"] = {"new": _errors(exc)}
            context["new_rate"] = values
        return _partial(request, "tax-rates", context, status=400)
    except DomainError as exc:
        context = _rates_context(org)
        for r in context["rates"]:
            if r.id == tax_rate_id:
                r.errors = {"form": exc.detail}
        if not tax_rate_id:
            context["rate_errors"] = {"new": {"form": exc.detail}}
        return _partial(request, "tax-rates", context, status=exc.status)
    if not request.htmx:
        messages.success(request, "Tax rate saved.")
        return redirect("invoicing_console_billing_settings")
    return _partial(request, "tax-rates", _rates_context(org))


@require_POST
@console_view(min_role=Role.ADMIN)
def billing_settings_tax_rate_archive(request: ConsoleRequest, tax_rate_id: str) -> HttpResponse:
    org = request.organization
    try:
        services.tax_rate_archive(organization=org, tax_rate_id=tax_rate_id, actor=request.user)
    except NotFound:
        raise Http404 from None
    if not request.htmx:
        messages.success(request, "Tax rate removed.")
        return redirect("invoicing_console_billing_settings")
    return _partial(request, "tax-rates", _rates_context(org))


class _RateForm:
    """A tax rate row re-rendered with the values the user typed (after a validation error)."""

    def __init__(
        self,
        id: str,
        *,
        name: str,
        percentage: str,
        inclusive: bool,
        is_default: bool,
        errors: dict[str, str] | None = None,
    ) -> None:
        self.id, self.name, self.percentage = id, name, percentage
        self.inclusive, self.is_default = inclusive, is_default
        self.errors = errors or {}


# --- the customer hub's invoicing sections ------------------------------------------------------------
# The customer page (billing) loads these with htmx from their own URLs, so billing never imports
# invoicing: the upcoming invoice, the customer's invoices and its credits (create and void).
CUSTOMER_SECTIONS = "console/invoicing/customer_sections.html"


def _customer(org: Organization, customer_id: str) -> Any:
    """The organization's live customer with this id (one query, subjects not needed here), else 404."""
    from billing.models import Customer

    customer = Customer.objects.filter(organization=org, id=customer_id, deleted_at__isnull=True).first()
    if customer is None:
        raise Http404
    return customer


def _section(request: ConsoleRequest, name: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    if request.htmx:
        return render(request, f"{CUSTOMER_SECTIONS}#{name}", context, status=status)
    return render(request, CUSTOMER_SECTIONS, {**context, "section": name}, status=status)


@console_view()
def customer_upcoming(request: ConsoleRequest, customer_id: str) -> HttpResponse:
    """The customer's next invoice per currency as it stands now (nothing stored)."""
    org = request.organization
    try:
        # checks the customer through the read of its items (the section's query budget)
        upcoming = services.customer_invoice_upcoming(organization=org, customer_id=customer_id)
    except NotFound:
        raise Http404 from None
    context: dict[str, Any] = {"upcoming": upcoming}
    if not request.htmx:  # the whole page names the customer
        context["customer"] = _customer(org, customer_id)
    return _section(request, "upcoming", context)


def _billing_context(org: Organization, customer: Any, form: CreditForm | None = None) -> dict[str, Any]:
    invoices = selectors.invoice_list(organization=org, customer_id=customer.id, include_gathering=False)
    return {
        "customer": customer,
        "invoices": list(invoices.order_by("-period_start", "-id")[:24]),
        "credits": list(credits_module.customer_credit_list(organization=org, customer_id=customer.id)),
        "credit_form": form or CreditForm(initial={"description": "Credit", "priority": 1}),
    }


@console_view()
def customer_billing(request: ConsoleRequest, customer_id: str) -> HttpResponse:
    org = request.organization
    return _section(request, "billing", _billing_context(org, _customer(org, customer_id)))


@require_POST
@console_view(min_role=Role.ADMIN)
def customer_credit_create(request: ConsoleRequest, customer_id: str) -> HttpResponse:
    org = request.organization
    customer = _customer(org, customer_id)
    form = CreditForm(request.POST)
    if form.is_valid():
        try:
            credits_module.customer_credit_create(
                organization=org, customer=customer, actor=request.user, **form.service_kwargs()
            )
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.detail)
    if form.errors:
        # htmx 2 does not swap 4xx answers: the form with its errors comes back as 200
        return _section(
            request, "billing", _billing_context(org, customer, form), status=200 if request.htmx else 400
        )
    response = _section(request, "billing", _billing_context(org, customer))
    response["HX-Trigger"] = "credits-changed"
    return response


@require_POST
@console_view(min_role=Role.ADMIN)
def customer_credit_void(request: ConsoleRequest, customer_id: str, credit_id: str) -> HttpResponse:
    org = request.organization
    customer = _customer(org, customer_id)
    context_error = ""
    try:
        credit = credits_module.customer_credit_get(
            organization=org, customer_id=customer.id, credit_id=credit_id
        )
        credits_module.customer_credit_void(organization=org, credit=credit, actor=request.user)
    except NotFound:
        raise Http404 from None
    except DomainError as exc:
        context_error = exc.detail
    response = _section(
        request, "billing", {**_billing_context(org, customer), "credit_error": context_error}
    )
    if not context_error:
        response["HX-Trigger"] = "credits-changed"
    return response


@require_POST
@console_view(min_role=Role.ADMIN)
def customer_invoice_now(request: ConsoleRequest, customer_id: str) -> HttpResponse:
    """On-demand invoice: bill now what is due and not billed yet, with the usage of the open periods so
    far (the period-end invoice then bills only the rest); issued at once, one per currency."""
    org = request.organization
    customer = _customer(org, customer_id)
    try:
        issued = services.invoice_on_demand_create(organization=org, customer=customer, actor=request.user)
    except DomainError as exc:
        return _section(request, "billing", {**_billing_context(org, customer), "invoice_error": exc.detail})
    numbers = ", ".join(i.number for i in issued)
    context = {**_billing_context(org, customer), "invoice_done": f"Issued {numbers}."}
    response = _section(request, "billing", context)
    response["HX-Trigger"] = "credits-changed"  # the upcoming invoice reloads
    return response


customer_urlpatterns = [
    path(
        "console/customers/<str:customer_id>/invoice-now",
        customer_invoice_now,
        name="invoicing_console_customer_invoice_now",
    ),
    path(
        "console/customers/<str:customer_id>/upcoming/",
        customer_upcoming,
        name="invoicing_console_customer_upcoming",
    ),
    path(
        "console/customers/<str:customer_id>/billing/",
        customer_billing,
        name="invoicing_console_customer_billing",
    ),
    path(
        "console/customers/<str:customer_id>/credits/",
        customer_credit_create,
        name="invoicing_console_customer_credit_create",
    ),
    path(
        "console/customers/<str:customer_id>/credits/<str:credit_id>/void",
        customer_credit_void,
        name="invoicing_console_customer_credit_void",
    ),
]
