"""Console pages for metering: meters (list with last-24h usage, create/edit) and the event log.

Query budget per page is constant in the number of rows (see tests/metering/test_console.py).
"""

from __future__ import annotations

import importlib
import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from core.console import console_view
from core.errors import DomainError, NotFound, ValidationFailed
from core.http import ConsoleRequest
from core.models import Role
from metering import forms, hooks, selectors, services
from metering.models import Aggregation


@console_view()
def meter_list(request: ConsoleRequest) -> HttpResponse:
    org = request.organization
    meters = list(selectors.meter_list(organization=org))
    usage = selectors.meters_usage_last_24h(organization=org, meters=meters)
    rows = [{"meter": m, "usage": usage.get(m.id)} for m in meters]
    return render(request, "console/metering/meters.html", {"rows": rows})


def _errors_from(exc: ValidationFailed) -> dict[str, str]:
    """The service's camelCase error names onto the form's fields."""
    errors: dict[str, str] = {}
    for e in exc.errors or [{"name": exc.field or "form", "reason": exc.detail}]:
        key = {"eventType": "event_type", "valueProperty": "value_property"}.get(e["name"], e["name"])
        reason = e["reason"]
        if key.startswith("groupBy"):
            key, reason = "group_by", f"{e['name'][8:]}: {reason}"
        errors[key] = (errors[key] + "; " if key in errors else "") + reason
    return errors


@console_view(min_role=Role.PRICING_EDITOR)
def meter_edit(request: ConsoleRequest, meter_id: str | None = None) -> HttpResponse:
    """Create a meter, or edit what does not rewrite history (name, description, new dimensions)."""
    org = request.organization
    try:
        meter = selectors.meter_get(organization=org, id_or_slug=meter_id) if meter_id else None
    except NotFound:
        raise Http404("No such meter in this organization.") from None
    form: forms.MeterCreateForm | forms.MeterEditForm
    if meter is not None:
        initial = {
            "name": meter.name,
            "description": meter.description,
            "group_by": forms.group_by_text(meter.group_by),
        }
        form = forms.MeterEditForm(
            request.POST if request.method == "POST" else None,
            initial=initial,
            existing_group_by=meter.group_by,
        )
    else:
        form = forms.MeterCreateForm(request.POST if request.method == "POST" else None)
    errors: dict[str, str] = {}
    if request.method == "POST" and form.is_valid():
        try:
            if meter is None:
                meter = services.meter_create(organization=org, actor=request.user, **form.service_kwargs())
                messages.success(request, f"Meter {meter.slug} created.")
            else:
                services.meter_update(
                    organization=org, id_or_slug=meter.id, actor=request.user, **form.service_kwargs()
                )
                messages.success(request, f"Meter {meter.slug} saved.")
            if request.htmx:
                response = HttpResponse(status=204)
                response["HX-Redirect"] = "/console/meters/"
                return response
            return redirect("metering_console_meters")
        except ValidationFailed as exc:
            errors = _errors_from(exc)
        except DomainError as exc:
            errors[exc.field or "form"] = exc.detail
    if form.is_bound:
        for name, field_errors in form.errors.items():
            errors[name if name != "__all__" else "form"] = " ".join(str(e) for e in field_errors)
    context = {
        "meter": meter,
        "form": form,
        "errors": errors,
        "aggregations": Aggregation.values,
        "test_form": forms.PathTestForm(),
    }
    template = (
        "console/metering/meter_form.html#meter-form" if request.htmx else "console/metering/meter_form.html"
    )
    # htmx 2 does not swap 4xx answers, so the htmx partial with inline errors comes back as 200
    return render(request, template, context, status=400 if errors and not request.htmx else 200)


@require_POST
@console_view(min_role=Role.PRICING_EDITOR)
def meter_paths_test(request: ConsoleRequest) -> HttpResponse:
    """The path tester: what the value path and each dimension read from a pasted sample event (nothing
    is saved). On an existing meter, the meter's own aggregation and value path are used."""
    form = forms.PathTestForm(request.POST)
    context: dict[str, Any] = {"test_form": form}
    if form.is_valid():
        d = form.cleaned_data
        aggregation, value_property = d.get("aggregation") or "SUM", d.get("value_property", "")
        if request.POST.get("meter"):
            try:
                meter = selectors.meter_get(
                    organization=request.organization, id_or_slug=request.POST["meter"]
                )
            except NotFound:
                raise Http404 from None
            aggregation, value_property = meter.aggregation, meter.value_property
        data, readings = selectors.meter_paths_try(
            sample=d["sample"], aggregation=aggregation, value_property=value_property, group_by=d["group_by"]
        )
        context.update(data=json.dumps(data, indent=2, sort_keys=True, default=str), readings=readings)
    return render(request, "console/metering/meter_form.html#path-result", context)


def _dependents(org: Any, meter: Any) -> list[Any]:
    """The live catalog features that read this meter (a cross-app read, imported lazily: catalog
    depends on metering, never the other way at import time)."""
    catalog = importlib.import_module("catalog.selectors")
    return list(catalog.feature_list(organization=org, meter_slug=meter.slug))


@console_view(min_role=Role.PRICING_EDITOR)
def meter_archive(request: ConsoleRequest, meter_id: str) -> HttpResponse:
    """Archive (delete) a meter once nothing depends on it: GET shows what would break, POST archives.
    Its events stay stored; a meter with the same slug can be created again."""
    org = request.organization
    try:
        meter = selectors.meter_get(organization=org, id_or_slug=meter_id)
    except NotFound:
        raise Http404("No such meter in this organization.") from None
    dependents = _dependents(org, meter)
    if request.method == "POST" and not dependents:
        services.meter_delete(organization=org, id_or_slug=meter.id, actor=request.user)
        messages.success(request, f"Meter {meter.slug} archived.")
        return redirect("metering_console_meters")
    status = 409 if request.method == "POST" else 200
    return render(
        request,
        "console/metering/meter_archive.html",
        {"meter": meter, "dependents": dependents},
        status=status,
    )


@console_view()
def meter_explore(request: ConsoleRequest, slug: str) -> HttpResponse:
    """The meter explorer: the API's meter query (`metering.selectors.meter_query`) as a page, a time
    series by window with group-by and filters, and the equivalent API call."""
    org = request.organization
    try:
        meter = selectors.meter_get(organization=org, id_or_slug=slug)
    except NotFound:
        raise Http404("No such meter in this organization.") from None
    dims = sorted(meter.group_by)
    form = forms.ExplorerForm(request.GET or None, dimensions=dims)
    query = form.query(timezone.now())
    try:
        rows = selectors.meter_query(organization=org, meter=meter, **query)
        error = ""
    except DomainError as exc:
        rows, error = [], exc.detail
    series = _series(rows, query)
    context = {
        "meter": meter,
        "form": form,
        "series": series,
        "error": error,
        "query": query,
        "api_url": _api_url(meter.slug, query),
        "total": sum((r.value for r in rows), Decimal(0)),
    }
    template = (
        "console/metering/meter_explore.html#explore-result"
        if request.htmx
        else "console/metering/meter_explore.html"
    )
    return render(request, template, context)


def _window_starts(start: datetime, end: datetime, size: str, limit: int = 1000) -> list[datetime]:
    """Every window of the period (UTC), so the chart shows empty windows as gaps, not as nothing."""
    out: list[datetime] = []
    cursor = start
    while cursor < end and len(out) < limit:
        out.append(cursor)
        if size == "HOUR":
            cursor += timedelta(hours=1)
        elif size == "MONTH":
            cursor = (cursor.replace(day=1) + timedelta(days=32)).replace(day=1)
        else:
            cursor += timedelta(days=1)
    return out


def _series(rows: list[Any], query: dict[str, Any]) -> dict[str, Any]:
    """Rows as a table (one row per window with usage, one column per group: dimension values joined) and
    bars for every window of the period, each relative to the largest window total."""
    group_by = query["group_by"]
    groups: list[str] = []
    windows: dict[datetime, dict[str, Decimal]] = {}
    for r in rows:
        label = " · ".join(str(r.subject if g == "subject" else (r.group_by or {}).get(g)) for g in group_by)
        label = label or "total"
        if label not in groups:
            groups.append(label)
        cell = windows.setdefault(r.window_start, {})
        cell[label] = cell.get(label, Decimal(0)) + r.value
    table = [
        {"start": start, "cells": [cells.get(g) for g in groups], "total": sum(cells.values(), Decimal(0))}
        for start, cells in sorted(windows.items())
    ]
    totals: dict[datetime, Decimal] = {s: sum(c.values(), Decimal(0)) for s, c in windows.items()}
    peak = max(totals.values(), default=Decimal(0))
    bars = [
        {
            "start": start,
            "total": totals.get(start, Decimal(0)),
            "percent": int(totals.get(start, Decimal(0)) * 100 / peak) if peak > 0 else 0,
        }
        for start in _window_starts(query["from_"], query["to"], query["window_size"])
    ]
    return {"groups": groups, "rows": table, "bars": bars}


def _api_url(slug: str, query: dict[str, Any]) -> str:
    params: list[tuple[str, str]] = [
        ("from", query["from_"].isoformat().replace("+00:00", "Z")),
        ("to", query["to"].isoformat().replace("+00:00", "Z")),
        ("windowSize", query["window_size"]),
    ]
    params += [("groupBy", g) for g in query["group_by"]]
    params += [("subject", s) for s in query["subjects"] or []]
    for dim, values in (query["filter_group_by"] or {}).items():
        params += [(f"filterGroupBy[{dim}]", v) for v in values]
    return f"/api/v1/meters/{slug}/query?{urlencode(params, safe=':')}"


@console_view()
def event_list(request: ConsoleRequest) -> HttpResponse:
    """The latest 100 events, each saying whether it counted, and whether its subject belongs to a
    customer (asked through `metering.hooks`, one query; without billing no subject is flagged)."""
    org = request.organization
    form = forms.EventFilterForm(request.GET)
    query = form.selector_kwargs()
    events = selectors.events_list(organization=org, limit=100, **query)
    owned = hooks.resolve_customers(
        organization=org, subjects=sorted({e.event["subject"] for e in events if e.event["subject"]})
    )
    known = {s for subjects in owned.values() for s in subjects} if owned is not None else None
    rows = [
        {"e": e, "unknown_subject": known is not None and e.event["subject"] not in known} for e in events
    ]
    only_unknown = form.only_unknown_subjects
    if only_unknown:
        rows = [r for r in rows if r["unknown_subject"]]
    context = {
        "rows": rows,
        "form": form,
        "subject": query["subject"] or "",
        "type": query["type"] or "",
        "uncounted": bool(query["has_error"]),
        "unknown_subject": only_unknown,
        "subjects_checked": known is not None,
        "filtered": only_unknown or any(v is not None for v in query.values()),
    }
    template = "console/metering/events.html#events-table" if request.htmx else "console/metering/events.html"
    return render(request, template, context)
