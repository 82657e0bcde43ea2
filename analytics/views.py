"""Console pages of analytics: the revenue and usage dashboards (`/console/dashboards/`) and pricing
simulations (`/console/simulations/`). Every chart has a table view and a CSV export (`?format=csv&chart=`
on the same data); each page or htmx section stays within the query budget whatever the number of rows.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from analytics import revenue as revenue_data
from analytics import usage as usage_data
from analytics.datasets import Dataset, dataset_csv, dataset_pick
from analytics.forms import SimulationForm, last_full_month
from analytics.models import SimulationStatus
from analytics.selectors import simulation_run_get, simulation_run_list
from analytics.services import simulation_run_start
from analytics.simulation import run_totals
from billing.selectors import customer_list
from catalog.selectors import plan_list
from core.console import console_view
from core.errors import DomainError, NotFound
from core.forms import add_domain_error, error_map
from core.http import ConsoleRequest
from core.models import Role
from metering.selectors import meter_get, meter_list


# --- revenue -----------------------------------------------------------------------------------------
@console_view()
def revenue(request: ConsoleRequest) -> HttpResponse:
    org, now = request.organization, timezone.now()
    mrr, trend = revenue_data.mrr_datasets(organization=org, now=now)
    churn = revenue_data.churn_by_month(organization=org, now=now)
    datasets = [
        revenue_data.revenue_billed(organization=org, now=now),
        mrr,
        trend,
        revenue_data.top_customers(organization=org, now=now),
        churn,
    ]
    if request.GET.get("format") == "csv":
        return dataset_csv(dataset_pick(datasets, request.GET.get("chart", "")))
    figures = revenue_data.headline(organization=org, now=now, mrr=mrr, churn=churn)
    return render(request, "console/dashboards/revenue.html", {"datasets": datasets, "headline": figures})


# --- usage ---------------------------------------------------------------------------------------------
def _usage_params(request: ConsoleRequest) -> dict[str, Any]:
    period = request.GET.get("period", "this_month")
    if period not in usage_data.PERIODS:
        period = "this_month"
    start, end = usage_data.period_bounds(period, timezone.now())
    return {
        "period": period,
        "periods": usage_data.PERIODS,
        "start": start,
        "end": end,
        "query": request.GET.urlencode(),
    }


@console_view()
def usage(request: ConsoleRequest) -> HttpResponse:
    """The usage page shell: filters, then each section loads with htmx (each within the query budget)."""
    meters = list(meter_list(organization=request.organization))
    ctx = _usage_params(request)
    slug = request.GET.get("meter") or (meters[0].slug if meters else "")
    ctx.update(meters=meters, meter_slug=slug)
    return render(request, "console/dashboards/usage.html", ctx)


def _usage_datasets(request: ConsoleRequest, section: str, ctx: dict[str, Any]) -> list[Dataset]:
    org = request.organization
    if section == "chargeback":
        return [usage_data.chargeback(organization=org, start=ctx["start"], end=ctx["end"])]
    try:
        meter = meter_get(organization=org, id_or_slug=request.GET.get("meter", ""))
    except NotFound:
        raise Http404("No such meter.") from None
    ctx["meter"] = meter
    if section == "trend":
        return [usage_data.usage_trend(organization=org, meter=meter, now=timezone.now())]
    return usage_data.usage_datasets(organization=org, meter=meter, start=ctx["start"], end=ctx["end"])


@console_view()
def usage_section(request: ConsoleRequest, section: str) -> HttpResponse:
    """`/console/dashboards/usage/<usage|chargeback|trend>/?meter=&period=`: datasets (htmx partial, full
    page without JS, or `format=csv&chart=<key>`)."""
    if section not in ("usage", "chargeback", "trend"):
        raise Http404("No such section.")
    ctx = _usage_params(request)
    datasets = _usage_datasets(request, section, ctx)
    if request.GET.get("format") == "csv":
        return dataset_csv(dataset_pick(datasets, request.GET.get("chart", "")))
    ctx["datasets"] = datasets
    if request.htmx:
        return render(request, "console/dashboards/usage_section.html#datasets", ctx)
    return render(request, "console/dashboards/usage_section.html", ctx)


# --- pricing simulations ---------------------------------------------------------------------------------
def _simulation_form(request: ConsoleRequest, data=None) -> SimulationForm:
    customers = customer_list(organization=request.organization).only("id", "name", "key")[:500]
    choices = [(c.id, f"{c.name} ({c.key})" if c.key else c.name) for c in customers]
    start, end = last_full_month(timezone.now().date())
    initial = {"plan": request.GET.get("plan", ""), "start": start, "end": end}
    if request.GET.get("plan") and request.GET.get("version"):
        initial["plan"] = f"{request.GET['plan']}:{request.GET['version']}"
    return SimulationForm(data, initial=initial, customer_choices=choices)


def _simulation_page(request: ConsoleRequest, form: SimulationForm, status: int = 200) -> HttpResponse:
    org = request.organization
    plans = list(plan_list(organization=org).only("id", "key", "version", "status", "name", "currency"))
    for p in plans:
        p.ref = f"{p.key}:{p.version}"  # type: ignore[attr-defined]  # the option's value
    context = {
        "form": form,
        "plans": plans,
        "plan_keys": sorted({p.key for p in plans}),
        "selected": str(form["plan"].value() or ""),
        "errors": error_map(form) if form.is_bound else {},
        "runs": simulation_run_list(organization=org),
    }
    return render(request, "console/dashboards/simulation_list.html", context, status=status)


@console_view(min_role=Role.PRICING_EDITOR)
def simulation_list(request: ConsoleRequest) -> HttpResponse:
    return _simulation_page(request, _simulation_form(request))


@require_http_methods(["GET", "POST"])
@console_view(min_role=Role.PRICING_EDITOR)
def simulation_new(request: ConsoleRequest) -> HttpResponse:
    if request.method != "POST":
        return _simulation_page(request, _simulation_form(request))
    form = _simulation_form(request, request.POST)
    if form.is_valid():
        try:
            run = simulation_run_start(
                organization=request.organization, user=request.user, **form.service_kwargs()
            )
        except DomainError as exc:
            add_domain_error(form, exc)
        else:
            return redirect("analytics_simulation_detail", run_id=run.id)
    return _simulation_page(request, form, status=400)


@console_view(min_role=Role.PRICING_EDITOR)
def simulation_detail(request: ConsoleRequest, run_id: str) -> HttpResponse:
    run = simulation_run_get(organization=request.organization, run_id=run_id)
    if run is None:
        raise Http404("No such simulation.")
    ctx = {"run": run, "totals": run_totals(run) if run.status == SimulationStatus.DONE else None}
    if request.htmx:
        return render(request, "console/dashboards/simulation_detail.html#progress", ctx)
    return render(request, "console/dashboards/simulation_detail.html", ctx)
