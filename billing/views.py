"""Console (HTML, htmx): customers (list, detail, create, edit), subscriptions (list), and one view per
subscription operation (assign, change, cancel, unschedule a cancelation), each with its Django form."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from billing import selectors, services, sources
from billing.forms import (
    CustomerCreateForm,
    CustomerDetailsForm,
    SubscriptionAssignForm,
    SubscriptionCancelForm,
    SubscriptionChangeForm,
    SubscriptionUnscheduleForm,
)
from billing.models import Customer
from core.console import console_view
from core.errors import DomainError
from core.forms import add_domain_error, form_write
from core.http import ConsoleRequest
from core.models import Role

PAGE_SIZE = 50


@console_view()
def customers(request: ConsoleRequest) -> HttpResponse:
    org = request.organization  # type: ignore[attr-defined]
    q = request.GET.get("q", "").strip()
    qs = selectors.customer_list(organization=org, search=q)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = selectors.customers_annotate_current_subscription(
        organization=org, customers=list(page.object_list)
    )
    context = {"customers": rows, "page": page, "q": q}
    template = (
        "console/billing/customers.html#customer-table" if request.htmx else "console/billing/customers.html"
    )
    return render(request, template, context)


@console_view(min_role=Role.ADMIN)
def customer_create(request: HttpRequest) -> HttpResponse:
    org = request.organization  # type: ignore[attr-defined]
    form = CustomerCreateForm(request.POST if request.method == "POST" else None)
    context: dict = {"form": request.POST}
    if request.method == "POST":
        if form.is_valid():
            try:
                cust = services.customer_create(organization=org, actor=request.user, **form.service_kwargs())
                messages.success(request, f"Customer {cust.name} created.")
                return redirect("billing_console_customer", customer_id=cust.id)
            except DomainError as exc:
                context["form_error"] = exc.detail
        else:
            context["form_error"] = _form_error(form)
    return render(
        request,
        "console/billing/customer_new.html",
        context,
        status=400 if context.get("form_error") else 200,
    )


def _form_error(form: Any) -> str:
    """A form's errors as one sentence per field ("Email: Enter a valid email address.")."""
    parts = []
    for name, errors in form.errors.items():
        label = form.fields[name].label or name.replace("_", " ").capitalize() if name in form.fields else ""
        parts.append(f"{label}: {' '.join(errors)}" if label else " ".join(errors))
    return " ".join(parts)


def _detail_context(request: HttpRequest, customer_id: str) -> dict:
    """The hub's own data in a constant number of queries: the customer with its subjects, its last
    subscriptions (the current, the scheduled and the history come from the same read), the current
    one's phases and items, and the plans to pick from. Usage, the upcoming invoice, invoices, credits
    and the portal link load as sections of their own (htmx) from the apps that own them."""
    org = request.organization  # type: ignore[attr-defined]
    cust = selectors.customer_get(organization=org, id_or_key=customer_id)
    now = timezone.now()
    history = list(
        selectors.subscription_list(organization=org, customer=cust).prefetch_related("phases", "items")[:20]
    )
    current = [s for s in history if s.active_from <= now and (s.active_to is None or s.active_to > now)]
    sub = min(current, key=lambda s: s.active_from) if current else None
    scheduled = sorted((s for s in history if s.active_from > now), key=lambda s: s.active_from)
    period = selectors.subscription_current_period(subscription=sub, at=now) if sub else None
    return {
        "customer": cust,
        "subjects": selectors.customer_subject_keys(customer=cust),
        "subscription": sub,
        "upcoming": scheduled[0] if scheduled else None,
        "period": period,
        "phases": list(sub.phases.all()) if sub else [],
        "items": [i for i in sub.items.all() if i.active_to is None or i.active_to > now] if sub else [],
        "plans": sources.plan_choices(organization=org),
        "subscriptions": [{"sub": s, "status": selectors.subscription_status(s, at=now)} for s in history],
    }


def _not_found(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return render(request, "console/billing/not_found.html", {"detail": exc.detail}, status=404)


def _customer_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A page of the URL's customer (its id or key): the view gets the customer after the id; one the
    organization does not have is the not-found page."""

    @wraps(view)
    def wrapper(request: ConsoleRequest, customer_id: str) -> HttpResponse:
        org = request.organization  # type: ignore[attr-defined]
        try:
            customer = selectors.customer_get(organization=org, id_or_key=customer_id)
        except DomainError as exc:
            return _not_found(request, exc)
        return view(request, customer_id, customer)

    return wrapper


@console_view()
def customer_detail(request: HttpRequest, customer_id: str) -> HttpResponse:
    try:
        context = _detail_context(request, customer_id)
    except DomainError as exc:
        return _not_found(request, exc)
    return render(request, "console/billing/customer_detail.html", context)


@console_view()
@_customer_page
def customer_usage(request: ConsoleRequest, _customer_id: str, cust: Customer) -> HttpResponse:
    """Usage this period: every live entitlement with its balance, usage and overage (one bulk read)."""
    org = request.organization  # type: ignore[attr-defined]
    rows = selectors.customer_entitlement_values(organization=org, customer=cust)
    template = "console/billing/customer_detail.html#usage-section"
    return render(
        request,
        template if request.htmx else "console/billing/customer_section.html",
        {
            "customer": cust,
            "entitlements": rows,
            "section": "usage-section",
        },
    )


@console_view(min_role=Role.ADMIN)
@_customer_page
def customer_edit(request: ConsoleRequest, _customer_id: str, cust: Customer) -> HttpResponse:
    """Edit details (name, e-mail, address, tax ids, subjects): GET the form, POST saves it."""
    org = request.organization  # type: ignore[attr-defined]
    subjects = selectors.customer_subject_keys(customer=cust)
    if request.method == "POST":
        form = CustomerDetailsForm(request.POST)
        saved = form_write(
            form,
            lambda: services.customer_update(
                organization=org, customer=cust, actor=request.user, **form.service_kwargs()
            ),
            fields=_FORM_FIELDS,
        )
        if saved:
            messages.success(request, "Customer details saved.")
            if request.htmx:
                response = HttpResponse(status=204)
                response["HX-Redirect"] = reverse("billing_console_customer", args=[cust.id])
                return response
            return redirect("billing_console_customer", customer_id=cust.id)
    else:
        form = CustomerDetailsForm(initial=CustomerDetailsForm.initial_for(customer=cust, subjects=subjects))
    context = {"customer": cust, "form": form, "section": "details-form"}
    if request.htmx:
        return render(request, "console/billing/customer_detail.html#details-form", context)
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "console/billing/customer_section.html", context, status=status)


_FORM_FIELDS = {  # service field names -> form fields, for domain errors
    "name": "name",
    "primary_email": "primary_email",
    "primaryEmail": "primary_email",
    "subject_keys": "subjects",
    "subjectKeys": "subjects",
    "usageAttribution.subjectKeys": "subjects",
    "tax_ids": "tax_ids",
}


# --- the subscription panel: one view and one form per operation ------------------------------------
# Each write validates its form, finds the customer's current subscription, calls one service and
# renders the panel again (htmx) or redirects to the customer page; a domain error lands on the form.
# A write takes (request, organization, customer, subscription, form) and answers the success message.
SubscriptionWrite = Callable[[ConsoleRequest, Any, Any, Any, Any], str]


def _subscription_write(
    request: ConsoleRequest,
    customer_id: str,
    cust: Customer,
    form: forms.Form,
    write: SubscriptionWrite,
    *,
    needs_sub: bool = True,
) -> HttpResponse:
    org = request.organization  # type: ignore[attr-defined]
    if form.is_valid():
        try:
            selectors.customers_annotate_current_subscription(organization=org, customers=[cust])
            sub = cust.current_subscription  # type: ignore[attr-defined]
            if needs_sub and sub is None:
                raise services.Conflict("The customer has no active subscription.")
            messages.success(request, write(request, org, cust, sub, form))
        except DomainError as exc:
            add_domain_error(form, exc)
    error = _form_error(form) if form.errors else None
    if request.htmx:
        context = _detail_context(request, customer_id)
        context["form_error"] = error
        response = render(
            request,
            "console/billing/customer_detail.html#subscription-panel",
            context,
            status=400 if error else 200,
        )
        if not error:
            response["HX-Trigger"] = "subscription-changed"  # usage and the upcoming invoice reload
        return response
    if error:
        messages.error(request, error)
    return redirect("billing_console_customer", customer_id=customer_id)


def _assign(request: ConsoleRequest, org: Any, cust: Any, _sub: Any, form: Any) -> str:
    services.subscription_create(
        organization=org, customer=cust, plan_key=form.cleaned_data["plan"], actor=request.user
    )
    return "Plan assigned."


def _change(request: ConsoleRequest, org: Any, _cust: Any, sub: Any, form: Any) -> str:
    timing = form.cleaned_data["timing"]
    services.subscription_change(
        organization=org,
        subscription=sub,
        plan_key=form.cleaned_data["plan"],
        timing=timing,
        actor=request.user,
    )
    return "Plan changed." if timing == "immediate" else "Plan change scheduled."


def _cancel(request: ConsoleRequest, org: Any, _cust: Any, sub: Any, form: Any) -> str:
    timing = form.cleaned_data["timing"]
    services.subscription_cancel(organization=org, subscription=sub, timing=timing, actor=request.user)
    return "Subscription canceled." if timing == "immediate" else "Cancelation scheduled."


def _unschedule(request: ConsoleRequest, org: Any, _cust: Any, sub: Any, _form: Any) -> str:
    services.subscription_unschedule_cancelation(organization=org, subscription=sub, actor=request.user)
    return "Cancelation unscheduled."


# (operation, its form, its write, whether it needs a current subscription): one POST view each.
SUBSCRIPTION_OPERATIONS: tuple[tuple[str, type[forms.Form], SubscriptionWrite, bool], ...] = (
    ("assign", SubscriptionAssignForm, _assign, False),
    ("change", SubscriptionChangeForm, _change, True),
    ("cancel", SubscriptionCancelForm, _cancel, True),
    ("unschedule", SubscriptionUnscheduleForm, _unschedule, True),
)


def _subscription_view(
    form_class: type[forms.Form], write: SubscriptionWrite, needs_sub: bool
) -> Callable[..., HttpResponse]:
    @require_POST
    @console_view(min_role=Role.ADMIN)
    @_customer_page
    def view(request: ConsoleRequest, customer_id: str, cust: Customer) -> HttpResponse:
        form = form_class(request.POST)
        return _subscription_write(request, customer_id, cust, form, write, needs_sub=needs_sub)

    return view


@console_view()
def subscriptions(request: HttpRequest) -> HttpResponse:
    org = request.organization  # type: ignore[attr-defined]
    status = request.GET.get("status", "")
    qs = selectors.subscription_list(organization=org, status=status)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [{"sub": s, "status": selectors.subscription_status(s)} for s in page.object_list]
    return render(
        request, "console/billing/subscriptions.html", {"rows": rows, "page": page, "status": status}
    )


urlpatterns = [
    path("console/customers/", customers, name="billing_console_customers"),
    path("console/customers/new/", customer_create, name="billing_console_customer_new"),
    path("console/customers/<str:customer_id>/", customer_detail, name="billing_console_customer"),
    *[
        path(
            f"console/customers/<str:customer_id>/subscription/{operation}/",
            _subscription_view(form_class, write, needs_sub),
            name=f"billing_console_subscription_{operation}",
        )
        for operation, form_class, write, needs_sub in SUBSCRIPTION_OPERATIONS
    ],
    path("console/customers/<str:customer_id>/usage/", customer_usage, name="billing_console_customer_usage"),
    path("console/customers/<str:customer_id>/edit/", customer_edit, name="billing_console_customer_edit"),
    path("console/subscriptions/", subscriptions, name="billing_console_subscriptions"),
]
