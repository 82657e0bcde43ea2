"""The customer page's invoicing sections: the upcoming invoice, the customer's invoices and credits
(create, void) and an on-demand invoice. The customer page (billing) loads them with htmx from their own
URLs (`customer_urlpatterns`), so billing never imports invoicing."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_POST

from billing.models import Customer
from core.console import console_view
from core.errors import DomainError, NotFound
from core.forms import form_write
from core.http import ConsoleRequest
from core.models import Organization, Role
from invoicing import credits as credits_module
from invoicing import selectors, services
from invoicing.forms import CreditForm

CUSTOMER_SECTIONS = "console/invoicing/customer_sections.html"


def _customer(org: Organization, customer_id: str) -> Customer:
    """The organization's live customer with this id (one query, subjects not needed here), else 404."""
    return selectors.live_customer_get(organization=org, customer_id=customer_id)


def _section(request: ConsoleRequest, name: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    if request.htmx:
        return render(request, f"{CUSTOMER_SECTIONS}#{name}", context, status=status)
    return render(request, CUSTOMER_SECTIONS, {**context, "section": name}, status=status)


@console_view()
def customer_upcoming(request: ConsoleRequest, customer_id: str) -> HttpResponse:
    """The customer's next invoice per currency as it stands now (nothing stored)."""
    org = request.organization
    # checks the customer through the read of its items (the section's query budget): unknown is a 404
    upcoming = services.customer_invoice_upcoming(organization=org, customer_id=customer_id)
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
    saved = form_write(
        form,
        lambda: credits_module.customer_credit_create(
            organization=org, customer=customer, actor=request.user, **form.service_kwargs()
        ),
    )
    if not saved:
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
