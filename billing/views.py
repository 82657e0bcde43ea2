"""Console (HTML, htmx): customers (list, detail, create), subscriptions (list), assign/change/cancel plans."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_POST

from billing import selectors, services, sources
from billing.models import Subscription
from core.console import console_view
from core.errors import DomainError
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
    context: dict = {"form": request.POST}
    if request.method == "POST":
        subjects = [s.strip() for s in request.POST.get("subjects", "").split(",") if s.strip()]
        try:
            cust = services.customer_create(
                organization=org,
                name=request.POST.get("name", "").strip(),
                key=request.POST.get("key", "").strip() or None,
                primary_email=request.POST.get("email", "").strip(),
                currency=request.POST.get("currency", "").strip().upper(),
                subject_keys=subjects,
                actor=request.user,
            )
            messages.success(request, f"Customer {cust.name} created.")
            return redirect("billing_console_customer", customer_id=cust.id)
        except DomainError as exc:
            context["form_error"] = exc.detail
    return render(
        request,
        "console/billing/customer_new.html",
        context,
        status=400 if context.get("form_error") else 200,
    )


def _detail_context(request: HttpRequest, customer_id: str) -> dict:
    org = request.organization  # type: ignore[attr-defined]
    cust = selectors.customer_get(organization=org, id_or_key=customer_id)
    now = timezone.now()
    selectors.customers_annotate_current_subscription(organization=org, customers=[cust])
    sub = cust.current_subscription  # type: ignore[attr-defined]
    upcoming = (
        Subscription.objects.filter(organization=org, customer=cust, active_from__gt=now)
        .order_by("active_from")
        .first()
    )
    entitlements = []
    subjects = selectors.customer_subject_keys(customer=cust)
    for ent in selectors.entitlement_list(organization=org, customer=cust, active_at=now):
        try:
            value = selectors.entitlement_value(organization=org, entitlement=ent, at=now, subjects=subjects)
        except DomainError:
            value = None
        entitlements.append({"entitlement": ent, "value": value})
    period = selectors.subscription_current_period(subscription=sub, at=now) if sub else None
    return {
        "customer": cust,
        "subjects": subjects,
        "subscription": sub,
        "upcoming": upcoming,
        "period": period,
        "phases": list(sub.phases.all()) if sub else [],
        "items": [i for i in sub.items.all() if i.active_to is None or i.active_to > now] if sub else [],
        "entitlements": entitlements,
        "plans": sources.plan_choices(organization=org),
        "subscriptions": selectors.subscription_list(organization=org, customer=cust)[:20],
    }


@console_view()
def customer_detail(request: HttpRequest, customer_id: str) -> HttpResponse:
    try:
        context = _detail_context(request, customer_id)
    except DomainError as exc:
        return render(request, "console/billing/not_found.html", {"detail": exc.detail}, status=404)
    return render(request, "console/billing/customer_detail.html", context)


@require_POST
@console_view(min_role=Role.ADMIN)
def customer_subscription(request: ConsoleRequest, customer_id: str) -> HttpResponse:
    """One form endpoint for assign / change / cancel / unschedule (field `action`); htmx swaps the panel."""
    org = request.organization  # type: ignore[attr-defined]
    action = request.POST.get("action", "assign")
    error = None
    try:
        cust = selectors.customer_get(organization=org, id_or_key=customer_id)
    except DomainError as exc:
        return render(request, "console/billing/not_found.html", {"detail": exc.detail}, status=404)
    try:
        selectors.customers_annotate_current_subscription(organization=org, customers=[cust])
        sub = cust.current_subscription  # type: ignore[attr-defined]
        timing = request.POST.get("timing") or "immediate"
        if action == "assign":
            plan_key = request.POST.get("plan", "")
            if not plan_key:
                raise services.ValidationFailed("Choose a plan.", field="plan")
            services.subscription_create(
                organization=org, customer=cust, plan_key=plan_key, actor=request.user
            )
            messages.success(request, "Plan assigned.")
        elif sub is None:
            raise services.Conflict("The customer has no active subscription.")
        elif action == "change":
            services.subscription_change(
                organization=org,
                subscription=sub,
                plan_key=request.POST.get("plan", ""),
                timing=timing,
                actor=request.user,
            )
            messages.success(request, "Plan changed." if timing == "immediate" else "Plan change scheduled.")
        elif action == "cancel":
            services.subscription_cancel(
                organization=org, subscription=sub, timing=timing, actor=request.user
            )
            messages.success(
                request, "Subscription canceled." if timing == "immediate" else "Cancelation scheduled."
            )
        elif action == "unschedule":
            services.subscription_unschedule_cancelation(
                organization=org, subscription=sub, actor=request.user
            )
            messages.success(request, "Cancelation unscheduled.")
        else:
            raise services.ValidationFailed("Unknown action.", field="action")
    except DomainError as exc:
        error = exc.detail
    if request.htmx:
        context = _detail_context(request, customer_id)
        context["form_error"] = error
        response = render(
            request,
            "console/billing/customer_detail.html#subscription-panel",
            context,
            status=400 if error else 200,
        )
        return response
    if error:
        messages.error(request, error)
    return redirect("billing_console_customer", customer_id=customer_id)


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
    path(
        "console/customers/<str:customer_id>/subscription/",
        customer_subscription,
        name="billing_console_customer_subscription",
    ),
    path("console/subscriptions/", subscriptions, name="billing_console_subscriptions"),
]
