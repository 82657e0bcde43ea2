"""Console pages for metering: meters (list with last-24h usage, create/edit) and the event log.

Query budget per page is constant in the number of rows (see tests/metering/test_console.py).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render

from core.console import console_view
from core.errors import DomainError, NotFound, ValidationFailed
from core.http import ConsoleRequest
from core.models import Role
from metering import selectors, services
from metering.models import Aggregation


@console_view()
def meter_list(request: ConsoleRequest) -> HttpResponse:
    org = request.organization
    meters = list(selectors.meter_list(organization=org))
    usage = selectors.meters_usage_last_24h(organization=org, meters=meters)
    rows = [{"meter": m, "usage": usage.get(m.id)} for m in meters]
    return render(request, "console/metering/meters.html", {"rows": rows})


def _parse_group_by(text: str) -> dict[str, str]:
    """`model=$.model` lines; a line without `=` becomes an empty path, which validation names."""
    out: dict[str, str] = {}
    for line in text.replace(",", "\n").splitlines():
        if line.strip():
            dim, _, path = line.partition("=")
            out[dim.strip()] = path.strip()
    return out


@console_view(min_role=Role.PRICING_EDITOR)
def meter_edit(request: ConsoleRequest, meter_id: str | None = None) -> HttpResponse:
    org = request.organization
    try:
        meter = selectors.meter_get(organization=org, id_or_slug=meter_id) if meter_id else None
    except NotFound:
        raise Http404("No such meter in this organization.") from None
    errors: dict[str, str] = {}
    form: dict[str, Any]
    if meter is not None:
        form = {
            "slug": meter.slug,
            "name": meter.name,
            "description": meter.description,
            "event_type": meter.event_type,
            "aggregation": meter.aggregation,
            "value_property": meter.value_property,
            "group_by": "\n".join(f"{k}={v}" for k, v in meter.group_by.items()),
        }
    else:
        form = {
            "slug": "",
            "name": "",
            "description": "",
            "event_type": "",
            "aggregation": "SUM",
            "value_property": "$.",
            "group_by": "",
        }
    if request.method == "POST":
        form.update({k: request.POST.get(k, "").strip() for k in form if k in request.POST})
        group_by = _parse_group_by(form["group_by"])
        try:
            if meter is None:
                meter = services.meter_create(
                    organization=org,
                    slug=form["slug"],
                    event_type=form["event_type"],
                    aggregation=form["aggregation"],
                    value_property=form["value_property"] if form["aggregation"] != "COUNT" else None,
                    group_by=group_by,
                    name=form["name"],
                    description=form["description"],
                    actor=request.user,
                )
                messages.success(request, f"Meter {meter.slug} created.")
            else:
                services.meter_update(
                    organization=org,
                    id_or_slug=meter.id,
                    name=form["name"],
                    description=form["description"],
                    group_by=group_by,
                    actor=request.user,
                )
                messages.success(request, f"Meter {meter.slug} saved.")
            if request.htmx:
                response = HttpResponse(status=204)
                response["HX-Redirect"] = "/console/meters/"
                return response
            return redirect("metering_console_meters")
        except ValidationFailed as exc:
            for e in exc.errors or [{"name": exc.field or "form", "reason": exc.detail}]:
                key = {"eventType": "event_type", "valueProperty": "value_property"}.get(e["name"], e["name"])
                if key.startswith("groupBy"):
                    key, e = "group_by", {**e, "reason": f"{e['name'][8:]}: {e['reason']}"}
                errors[key] = (errors[key] + "; " if key in errors else "") + e["reason"]
        except DomainError as exc:
            errors[exc.field or "form"] = exc.detail
    context = {"meter": meter, "form": form, "errors": errors, "aggregations": Aggregation.values}
    template = (
        "console/metering/meter_form.html#meter-form" if request.htmx else "console/metering/meter_form.html"
    )
    # htmx 2 does not swap 4xx answers, so the htmx partial with inline errors comes back as 200
    return render(request, template, context, status=400 if errors and not request.htmx else 200)


@console_view()
def event_list(request: ConsoleRequest) -> HttpResponse:
    org = request.organization
    subject = request.GET.get("subject", "").strip() or None
    type_ = request.GET.get("type", "").strip() or None
    only_errors = request.GET.get("uncounted") == "1"
    events = selectors.events_list(
        organization=org, subject=subject, type=type_, limit=100, has_error=True if only_errors else None
    )
    context = {"events": events, "subject": subject or "", "type": type_ or "", "uncounted": only_errors}
    template = "console/metering/events.html#events-table" if request.htmx else "console/metering/events.html"
    return render(request, template, context)
