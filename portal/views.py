"""Customer portal pages (`/portal/`): opened from a signed magic link, scoped to one customer.

One page template with named partials (django-htmx style): the page renders the header and plan, and
each heavier section (usage chart, estimate, balances, invoices) loads through its own htmx request
(`hx-trigger="load"`), so each request stays within the query budget. Every section URL also renders
as a full page without JS.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial, wraps
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_POST

from core import rls
from core.charts import Bar, bar_chart, brand_color, fmt_number
from core.errors import DomainError
from core.forms import add_domain_error, error_map
from portal import sources
from portal.forms import CancelForm, PlanChangeForm
from portal.selectors import (
    PortalScope,
    portal_scope_for_token,
    portal_settings_get,
    portal_token_check,
    portal_token_verify,
)
from portal.services import portal_plan_change, portal_subscription_cancel
from portal.tokens import PortalTokenInvalid, token_unsign

COOKIE = "portal_token"
WINDOWS = {"day": "Day", "week": "Week", "month": "Month"}


def _denied(request: HttpRequest, reason: str) -> HttpResponse:
    return render(request, "portal/denied.html", {"reason": reason}, status=401)


def portal_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Resolve the portal scope from the portal cookie (set by the magic link).

    The cookie holds the signed portal token itself (HttpOnly, SameSite=Lax, path /portal/, expiring with
    the token): a client-side session that costs one query per request (token row + organization +
    customer + subject keys), and every request re-checks the row, so invalidation applies at once."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        raw = request.COOKIES.get(COOKIE, "")
        if not raw:
            return _denied(request, "Open the portal from the link you were sent.")
        try:
            claims = token_unsign(raw)
            token = portal_token_check(organization_id=claims.organization_id, token_id=claims.token_id)
            scope = portal_scope_for_token(token=token)
        except PortalTokenInvalid as exc:
            response = _denied(request, exc.reason)
            response.delete_cookie(COOKIE, path="/portal/")
            return response
        request.portal = scope  # type: ignore[attr-defined]
        with rls.tenant_scope(scope.organization.id):  # the second wall (core/rls.py)
            return view(request, scope, *args, **kwargs)

    return wrapper


def _ctx(scope: PortalScope, **extra: Any) -> dict[str, Any]:
    return {
        "scope": scope,
        "org": scope.organization,
        "customer": scope.customer,
        "brand": scope.organization.brand_color or brand_color(scope.organization.id),
        "windows": WINDOWS,
        **extra,
    }


def _section(request: HttpRequest, scope: PortalScope, name: str, context: dict[str, Any]) -> HttpResponse:
    ctx = _ctx(scope, section=name, **context)
    if getattr(request, "htmx", False):
        return render(request, f"portal/home.html#{name}", ctx)
    return render(request, "portal/section.html", ctx)


@require_GET
def magic_link(request: HttpRequest, token: str) -> HttpResponse:
    """`/portal/<signed token>`: verify, keep the token in an HttpOnly cookie, redirect to the portal (so
    the token leaves the address bar and the history)."""
    try:
        row = portal_token_verify(raw=token)
    except PortalTokenInvalid as exc:
        return _denied(request, exc.reason)
    response = redirect("portal_home")
    response.set_cookie(
        COOKIE,
        token,
        expires=row.expires_at,
        path="/portal/",
        secure=request.is_secure(),
        httponly=True,
        samesite="Lax",
    )
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def logout(request: HttpRequest) -> HttpResponse:
    response = render(request, "portal/denied.html", {"reason": "You have left the portal."})
    response.delete_cookie(COOKIE, path="/portal/")
    return response


@require_GET
@portal_view
def home(request: HttpRequest, scope: PortalScope) -> HttpResponse:
    meters = [m for m in sources.meter_list(organization=scope.organization) if scope.meter_allowed(m.slug)]
    slugs = {m.slug for m in meters}
    # One chart per feature of the customer's current subscription (plan and add-ons) or entitlements on a
    # visible meter. Only a token without a customer (a bare subject) sees the meters no feature uses.
    features = [
        f
        for f in sources.feature_list(organization=scope.organization)
        if not getattr(f, "archived_at", None) and scope.feature_visible(f.key)
    ]
    charts = [
        {"slug": f.meter_slug, "feature": f.key, "title": f.name or f.key}
        for f in features
        if f.meter_slug in slugs
    ]
    if scope.feature_keys is None:
        with_feature = {c["slug"] for c in charts}
        charts += [
            {"slug": m.slug, "feature": "", "title": m.name or m.slug}
            for m in meters
            if m.slug not in with_feature
        ]
    subscription = sources.subscription_current(organization=scope.organization, customer=scope.customer)
    self_service = (
        subscription is not None and portal_settings_get(organization=scope.organization).self_service
    )
    return render(
        request,
        "portal/home.html",
        _ctx(
            scope,
            charts=charts,
            subscription=subscription,
            self_service=self_service,
            addons=_addons(subscription),
            plan_features=[f.name or f.key for f in features] if scope.feature_keys is not None else [],
        ),
    )


def _addons(subscription) -> list:
    if subscription is None:
        return []
    now = timezone.now()
    return [
        a
        for a in subscription.addons.all()
        if a.active_from <= now and (a.active_to is None or a.active_to > now)
    ]


# --- usage -----------------------------------------------------------------------------------------
def _window_range(window: str, now: datetime) -> tuple[datetime, datetime, str, int]:
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if window == "month":
        start = today.replace(day=1)
        for _ in range(11):
            start = (start - timedelta(days=1)).replace(day=1)
        return start, today + timedelta(days=1), "MONTH", 12
    if window == "week":
        monday = today - timedelta(days=today.weekday())
        return monday - timedelta(weeks=11), today + timedelta(days=1), "DAY", 12
    return today - timedelta(days=29), today + timedelta(days=1), "DAY", 30


def _parse_start(value) -> datetime:
    if isinstance(value, datetime):
        return value
    parsed = parse_datetime(str(value))
    assert parsed is not None
    return parsed


def usage_bars(*, rows: list[dict], window: str, start: datetime, count: int, aggregation: str) -> list[Bar]:
    """Bucket meter-query rows (DAY or MONTH windows, UTC) into `count` bars for the chosen window."""
    buckets: dict[datetime, Decimal] = {}
    keys: list[datetime] = []
    if window == "month":
        cursor = start
        for _ in range(count):
            keys.append(cursor)
            cursor = (cursor + timedelta(days=32)).replace(day=1)
    else:
        step = timedelta(weeks=1) if window == "week" else timedelta(days=1)
        keys = [start + step * i for i in range(count)]
    for row in rows:
        ws = _parse_start(row["windowStart"]).astimezone(start.tzinfo)
        if window == "week":
            ws = (ws - timedelta(days=ws.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
        elif window == "month":
            ws = ws.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        value = Decimal(str(row.get("value") or 0))
        if ws in buckets and aggregation in ("MAX",):
            buckets[ws] = max(buckets[ws], value)
        elif ws in buckets and aggregation in ("MIN",):
            buckets[ws] = min(buckets[ws], value)
        elif ws in buckets and aggregation in ("LATEST",):
            buckets[ws] = value
        else:
            buckets[ws] = buckets.get(ws, Decimal(0)) + value
    fmt = {"day": "%b %d", "week": "wk %b %d", "month": "%b %Y"}[window]
    out = []
    for key in keys:
        value = buckets.get(key, Decimal(0))
        out.append(
            Bar(label=key.strftime(fmt), value=value, tooltip=f"{key.strftime(fmt)}: {fmt_number(value)}")
        )
    return out


@require_GET
@portal_view
def usage(request: HttpRequest, scope: PortalScope, slug: str) -> HttpResponse:
    window = request.GET.get("window", "day")
    if window not in WINDOWS:
        window = "day"
    if not scope.meter_allowed(slug):
        return _section(
            request, scope, "usage", {"meter": None, "error": "This meter is not shared with you."}
        )
    meter = sources.meter_get(organization=scope.organization, slug=slug)
    if meter is None:
        return _section(request, scope, "usage", {"meter": None, "error": "No such meter."})
    if not request.GET.get("feature") and scope.feature_keys is not None:
        # a customer sees a meter's usage only through a feature of its subscription
        return _section(request, scope, "usage", {"meter": None, "error": "No such feature."})
    feature, filters = None, None
    if request.GET.get("feature"):
        feature = sources.feature_get(organization=scope.organization, key=request.GET["feature"])
        if feature is None or feature.meter_slug != meter.slug or not scope.feature_visible(feature.key):
            return _section(request, scope, "usage", {"meter": None, "error": "No such feature."})
        filters = {
            k: v if isinstance(v, list) else [v] for k, v in (feature.meter_group_by_filters or {}).items()
        }
    now = timezone.now()
    start, end, window_size, count = _window_range(window, now)
    # the customer's usage of this meter (the feature's filters applied), over a span
    query = partial(
        sources.meter_query,
        organization=scope.organization,
        meter=meter,
        subjects=scope.subjects,
        customer_id=scope.usage_customer_id,
        filter_group_by=filters,
    )
    result = query(start=start, end=end, window_size=window_size)
    bars = usage_bars(
        rows=result["data"], window=window, start=start, count=count, aggregation=meter.aggregation
    )
    subscription = sources.subscription_current(
        organization=scope.organization, customer=scope.customer, with_addons=False
    )
    period = sources.subscription_period(subscription=subscription, at=now)
    period_start = period.start if period else now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    so_far = query(start=period_start, end=now, window_size=None)
    period_total = sum((Decimal(str(r.get("value") or 0)) for r in so_far["data"]), Decimal(0))
    title = (feature.name or feature.key) if feature else (meter.name or meter.slug)
    chart = bar_chart(
        bars,
        color=scope.organization.brand_color or brand_color(scope.organization.id),
        label=f"{title} by {window}",
    )
    return _section(
        request,
        scope,
        "usage",
        {
            "meter": meter,
            "feature_key": feature.key if feature else "",
            "title": title,
            "window": window,
            "chart": chart,
            "bars": bars,
            "period_start": period_start,
            "period_total": period_total,
        },
    )


# --- estimate, balances, invoices -------------------------------------------------------------------
def _customer_section(name: str, key: str, read: Callable[..., Any]) -> Callable[..., HttpResponse]:
    """The view of a section that shows one read of the customer, `read(organization=, customer=)`, as
    `key` in the section's context."""

    @require_GET
    @portal_view
    def view(request: HttpRequest, scope: PortalScope) -> HttpResponse:
        rows = read(organization=scope.organization, customer=scope.customer)
        return _section(request, scope, name, {key: rows})

    view.__name__ = view.__qualname__ = name
    return view


estimate = _customer_section("estimate", "estimates", sources.gathering_estimate)
invoices = _customer_section("invoices", "invoices", sources.invoices_for_customer)


@require_GET
@portal_view
def balances(request: HttpRequest, scope: PortalScope) -> HttpResponse:
    rows = sources.entitlements_with_values(
        organization=scope.organization, customer=scope.customer, subjects=scope.subjects
    )
    for row in rows:
        value = row["value"]
        total = getattr(value, "total_available", None)
        usage_value = getattr(value, "usage", None)
        if total and usage_value is not None and total > 0:
            row["percent"] = min(100, int(usage_value * 100 / total))
        else:
            row["percent"] = None
    return _section(request, scope, "balances", {"entitlements": rows})


@require_GET
@portal_view
def invoice_pdf(request: HttpRequest, scope: PortalScope, invoice_id: str) -> HttpResponse:
    invoice = sources.invoice_for_customer(
        organization=scope.organization, customer=scope.customer, invoice_id=invoice_id
    )
    if invoice is None:
        return render(request, "portal/denied.html", {"reason": "No such invoice."}, status=404)
    pdf = sources.invoice_pdf(organization=scope.organization, invoice=invoice)
    if pdf is None:
        return render(request, "portal/denied.html", {"reason": "This invoice has no PDF yet."}, status=404)
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{invoice.number or invoice.id}.pdf"'
    return response


# --- self-service: change plan, cancel -----------------------------------------------------------------
DONE = {
    "changed": "Your plan has changed.",
    "scheduled": "Your plan change is scheduled.",
    "canceled": "Your subscription is canceled at the end of the billing period.",
}


def _plan_page(
    request: HttpRequest, scope: PortalScope, form: forms.Form | None = None, status: int = 200
) -> HttpResponse:
    """The plan page: the current plan and period, what is scheduled, the plans offered with when a change
    takes effect, and the cancel button. Without self-service, a page saying so."""
    settings = portal_settings_get(organization=scope.organization)
    subscription = sources.subscription_current(
        organization=scope.organization, customer=scope.customer, with_addons=False
    )
    context: dict[str, Any] = {"enabled": settings.self_service and scope.customer is not None}
    if context["enabled"] and subscription is not None:
        successor = sources.subscription_successor(organization=scope.organization, subscription=subscription)
        period = sources.subscription_period(subscription=subscription, at=timezone.now())
        context.update(
            subscription=subscription,
            successor=successor,
            period_end=period.end if period else None,
            choices=[]
            if successor or subscription.active_to
            else sources.plan_choices(
                organization=scope.organization, subscription=subscription, keys=settings.plan_keys
            ),
            errors=error_map(form) if form is not None else {},
            done=DONE.get(request.GET.get("done", "")),
        )
    return render(request, "portal/plan.html", _ctx(scope, **context), status=status)


@require_GET
@portal_view
def plan(request: HttpRequest, scope: PortalScope) -> HttpResponse:
    return _plan_page(request, scope)


@require_POST
@portal_view
def plan_change(request: HttpRequest, scope: PortalScope) -> HttpResponse:
    settings = portal_settings_get(organization=scope.organization)
    form = PlanChangeForm(request.POST, plan_keys=settings.plan_keys)
    if form.is_valid():
        try:
            _old, new = portal_plan_change(scope=scope, plan_key=form.cleaned_data["plan"])
        except DomainError as exc:
            add_domain_error(form, exc)
        else:
            done = "changed" if new.active_from <= timezone.now() else "scheduled"
            return redirect(f"{reverse('portal_plan')}?done={done}")
    return _plan_page(request, scope, form, status=400)


@require_POST
@portal_view
def plan_cancel(request: HttpRequest, scope: PortalScope) -> HttpResponse:
    form = CancelForm(request.POST)
    form.is_valid()
    try:
        portal_subscription_cancel(scope=scope)
    except DomainError as exc:
        add_domain_error(form, exc)
        return _plan_page(request, scope, form, status=400)
    return redirect(f"{reverse('portal_plan')}?done=canceled")


@require_GET
@portal_view
def credit_note_pdf(request: HttpRequest, scope: PortalScope, invoice_id: str) -> HttpResponse:
    """The credit note of the customer's voided invoice (issued when it was voided)."""
    invoice = sources.invoice_for_customer(
        organization=scope.organization, customer=scope.customer, invoice_id=invoice_id
    )
    note = sources.credit_note_pdf(organization=scope.organization, invoice=invoice) if invoice else None
    if note is None:
        return render(
            request, "portal/denied.html", {"reason": "This invoice has no credit note."}, status=404
        )
    number, pdf = note
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{number}.pdf"'
    return response
