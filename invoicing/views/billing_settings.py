"""Console page of billing settings, one card and one form per write: supplier details printed on
invoices, the Stripe connection, invoice terms and numbering, tax rates (create, edit, archive). With htmx
a write answers with its card only; without, with the whole page (errors shown in place)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.console import console_view
from core.errors import DomainError, NotFound, ValidationFailed
from core.forms import form_write
from core.http import ConsoleRequest
from core.models import Organization, Role
from invoicing import selectors, services
from invoicing.forms import INVOICE_FORM_FIELDS, InvoiceSettingsForm, StripeForm, SupplierForm, TaxRateForm

SETTINGS_PAGE = "console/invoicing/billing_settings.html"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


# the services name fields as the API does (`supplierTaxId`); the forms' fields are snake_case
SNAKE_SUPPLIER = {_camel(name): name for name in SupplierForm.base_fields}
SNAKE = {_camel(name): name for name in (*INVOICE_FORM_FIELDS, "auto_advance")}


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


def _saved(
    request: ConsoleRequest, message: str, name: str, context: Callable[[], dict[str, Any]]
) -> HttpResponse:
    """After a write: with htmx the named card again (its `context()`); otherwise `message` and the page."""
    if not request.htmx:
        messages.success(request, message)
        return redirect("invoicing_console_billing_settings")
    return _partial(request, name, context())


def _card_write(
    request: ConsoleRequest,
    name: str,
    write: Callable[[], Any],
    *,
    failed: Callable[[dict[str, str]], dict[str, Any]],
    done: str,
    saved: Callable[[], dict[str, Any]],
) -> HttpResponse:
    """Call `write()`; on ValidationFailed the named card again with `failed(errors by field)` (400),
    else `_saved` with `done` and the card's `saved()` context."""
    try:
        write()
    except ValidationFailed as exc:
        return _partial(request, name, failed(_errors(exc)), status=400)
    return _saved(request, done, name, saved)


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
    saved = form_write(
        form,
        lambda: services.invoicing_settings_update(organization=org, actor=request.user, **form.cleaned_data),
        fields=SNAKE_SUPPLIER,
    )
    if not saved:
        return _partial(
            request, "supplier-card", _supplier_context(org, form), status=200 if request.htmx else 400
        )
    done = "Supplier details saved."
    return _saved(request, done, "supplier-card", lambda: {**_supplier_context(org), "supplier_saved": True})


@require_POST
@console_view(min_role=Role.ADMIN)
def billing_settings_stripe(request: ConsoleRequest) -> HttpResponse:
    org = request.organization
    # empty secret inputs keep the stored secret (write-only fields are never filled back)
    values = StripeForm.values(request.POST)
    return _card_write(
        request,
        "stripe-card",
        lambda: services.stripe_settings_set(organization=org, actor=request.user, **values),
        failed=lambda errors: {**_stripe_context(org, request), "stripe_errors": errors},
        done="Stripe settings saved.",
        saved=lambda: {**_stripe_context(org, request), "stripe_saved": True},
    )


@require_POST
@console_view(min_role=Role.ADMIN)
def billing_settings_invoicing(request: ConsoleRequest) -> HttpResponse:
    org = request.organization
    fields = InvoiceSettingsForm.values(request.POST)
    return _card_write(
        request,
        "invoice-settings",
        lambda: services.invoicing_settings_update(organization=org, actor=request.user, **fields),
        failed=lambda errors: {"inv": fields, "inv_errors": {SNAKE.get(k, k): v for k, v in errors.items()}},
        done="Invoice settings saved.",
        saved=lambda: {**_settings_context(org), "inv_saved": True},
    )


@require_POST
@console_view(min_role=Role.ADMIN)
def billing_settings_tax_rate(request: ConsoleRequest, tax_rate_id: str = "") -> HttpResponse:
    """Create (no id) or edit a tax rate; answers with the tax rate table."""
    org = request.organization
    values = TaxRateForm.values(request.POST)
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
    return _saved(request, "Tax rate saved.", "tax-rates", lambda: _rates_context(org))


@require_POST
@console_view(min_role=Role.ADMIN)
def billing_settings_tax_rate_archive(request: ConsoleRequest, tax_rate_id: str) -> HttpResponse:
    org = request.organization
    services.tax_rate_archive(organization=org, tax_rate_id=tax_rate_id, actor=request.user)
    return _saved(request, "Tax rate removed.", "tax-rates", lambda: _rates_context(org))


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
