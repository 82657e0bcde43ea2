"""Pricing simulation: what customers would have paid under a (draft) plan version, against what they
were invoiced, over a past period, computed from their real usage.

Same engine as invoicing: for each rate card of the plan's final (steady-state) phase we build an
`invoicing.lines.BillableItem` over the whole period and ask `invoicing.lines.item_lines` for the
lines it would put on a final invoice, with usage from `invoicing.sources.usage` (feature → meter +
filters → `metering` rollups), then `invoicing.lines.totals`. Taxes are left out on both sides: the
comparison is net of tax (lines of type flat_fee/usage/commitment/discount/adjustment).

Runs of more than `INLINE_MAX` customers go to Celery (`portal.tasks.simulation_run_task`); the page polls
progress with htmx.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from core.console import console_view, flash_domain_error
from core.errors import DomainError, NotFound, ValidationFailed
from core.models import Organization, Role
from portal import sources
from portal.models import SimulationRun, SimulationStatus
from portal.selectors import simulation_run_get, simulation_run_list

INLINE_MAX = 10
NET_LINE_TYPES = ("flat_fee", "usage", "commitment", "discount", "adjustment")
MAX_CUSTOMERS = 10_000


@dataclass(frozen=True)
class CustomerResult:
    customer_id: str
    name: str
    simulated: Decimal
    actual: Decimal
    lines: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {
            "customerId": self.customer_id,
            "name": self.name,
            "simulated": str(self.simulated),
            "actual": str(self.actual),
            "difference": str(self.simulated - self.actual),
            "lines": self.lines,
        }


def _plan(organization: Organization, plan_key: str, version: int):
    from catalog.selectors import plan_get

    return plan_get(organization=organization, id_or_key=plan_key, version=version)


def plan_simulate_customer(
    *, organization: Organization, plan, customer_id: str, period_start: datetime, period_end: datetime
) -> tuple[Decimal, list[dict[str, Any]]]:
    """(net total, lines) the invoicing engine would bill this customer for [start, end) on `plan`."""
    from invoicing import lines as invoicing_lines
    from invoicing import sources as invoicing_sources

    phases = plan.phases or []
    if not phases:
        return Decimal(0), []
    phase = phases[-1]
    currency = plan.currency

    def usage(feature_key: str, start: datetime, end: datetime) -> Decimal:
        return invoicing_sources.usage(
            organization=organization, customer_id=customer_id, feature_key=feature_key, start=start, end=end
        )

    drafts = []
    for card in phase.get("rateCards", []):
        if not card.get("price"):
            continue
        item = invoicing_lines.BillableItem(
            item_id=f"sim:{card['key']}",
            subscription_id="simulation",
            key=card["key"],
            name=card.get("name") or card["key"],
            feature_key=card.get("featureKey") or "",
            price=card["price"],
            discounts=card.get("discounts"),
            commitments=card.get("commitments"),
            payment_term=card.get("paymentTerm") or card["price"].get("paymentTerm") or "in_advance",
            billing_cadence=card.get("billingCadence") or "",
            quantity=Decimal(1),
            currency=currency,
            active_from=period_start,
            active_to=period_end,
            anchor=period_start,
            timezone="UTC",
            plan_cadence=plan.billing_cadence or "P1M",
        )
        drafts.extend(
            invoicing_lines.item_lines(
                item,
                at=period_end,
                since=period_start,
                usage_upto=period_end,
                progressive=False,
                currency=currency,
                usage=usage,
                count=lambda f, s, e: int(
                    invoicing_sources.usage(
                        organization=organization,
                        customer_id=customer_id,
                        feature_key=f,
                        start=s,
                        end=e,
                        measure="count",
                    )
                ),
                ledger=invoicing_lines.Ledger(),
            )
        )
    net = [d for d in drafts if d.type in NET_LINE_TYPES]
    total = invoicing_lines.totals(net)
    lines = [
        {
            "description": d.description,
            "type": d.type,
            "quantity": str(d.quantity) if d.quantity is not None else "",
            "amount": str(d.amount),
        }
        for d in net
    ]
    return total.amount - total.discounts_total, lines


def actual_billed(
    *, organization: Organization, customer_ids: list[str], period_start: datetime, period_end: datetime
) -> dict[str, Decimal]:
    """Net (pre-tax) amounts invoiced per customer for service inside [start, end). One query."""
    qs = sources.invoice_lines_queryset(organization=organization)
    if qs is None:
        return {}
    rows = (
        qs.filter(invoice__customer_id__in=customer_ids, type__in=NET_LINE_TYPES)
        .exclude(invoice__status__in=("voided",))
        .filter(period_start__gte=period_start, period_end__lte=period_end)
        .values("invoice__customer_id")
        .annotate(total=Sum("amount"))
    )
    return {r["invoice__customer_id"]: r["total"] or Decimal(0) for r in rows}


# --- services ------------------------------------------------------------------------------------
def simulation_customers(*, organization: Organization, customer_ids: list[str], all_on_plan: str) -> list:
    if all_on_plan:
        qs = sources.subscriptions_queryset(organization=organization, status="active")
        ids = (
            set(qs.filter(plan_key=all_on_plan).values_list("customer_id", flat=True))
            if qs is not None
            else set()
        )
    else:
        ids = set(customer_ids)
    customers = [c for c in sources.customer_list(organization=organization).filter(id__in=ids)]
    return customers[:MAX_CUSTOMERS]


def simulation_run_start(
    *,
    organization: Organization,
    plan_key: str,
    plan_version: int,
    period_start: datetime,
    period_end: datetime,
    customer_ids: list[str] | None = None,
    all_on_plan: str = "",
    user=None,
) -> SimulationRun:
    """Validate and record a simulation; small ones run now, larger ones in Celery after commit."""
    try:
        plan = _plan(organization, plan_key, plan_version)
    except NotFound:
        raise ValidationFailed(f"No plan {plan_key!r} version {plan_version}.", field="plan") from None
    if period_end <= period_start:
        raise ValidationFailed("The period must end after it starts.", field="period_end")
    if period_end > timezone.now() + timedelta(days=1):
        raise ValidationFailed("Simulate a past period (real usage).", field="period_end")
    if not customer_ids and not all_on_plan:
        raise ValidationFailed("Pick customers, or all customers on a plan.", field="customers")
    customers = simulation_customers(
        organization=organization, customer_ids=customer_ids or [], all_on_plan=all_on_plan
    )
    with transaction.atomic():
        run = SimulationRun.objects.create(
            organization=organization,
            plan_key=plan.key,
            plan_version=plan.version,
            period_start=period_start,
            period_end=period_end,
            customer_ids=[c.id for c in customers],
            all_on_plan=all_on_plan,
            total=len(customers),
            currency=plan.currency,
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        if len(customers) > INLINE_MAX:
            from portal.tasks import simulation_run_task

            transaction.on_commit(lambda: simulation_run_task.delay(run.id))
    if len(customers) <= INLINE_MAX:
        simulation_run_execute(run_id=run.id)
        run.refresh_from_db()
    return run


def simulation_run_execute(*, run_id: str) -> None:
    """Compute a run (idempotent: a finished run is left alone; a crashed one starts over)."""
    claimed = SimulationRun.objects.filter(
        id=run_id, status__in=(SimulationStatus.PENDING, SimulationStatus.RUNNING)
    ).update(status=SimulationStatus.RUNNING, done=0)
    if not claimed:
        return
    run = SimulationRun.objects.select_related("organization").get(id=run_id)
    organization = run.organization
    try:
        plan = _plan(organization, run.plan_key, run.plan_version)
        customers = {
            c.id: c for c in sources.customer_list(organization=organization).filter(id__in=run.customer_ids)
        }
        actual = actual_billed(
            organization=organization,
            customer_ids=list(customers),
            period_start=run.period_start,
            period_end=run.period_end,
        )
        results = []
        for customer_id in run.customer_ids:
            customer = customers.get(customer_id)
            if customer is None:
                continue
            simulated, lines = plan_simulate_customer(
                organization=organization,
                plan=plan,
                customer_id=customer_id,
                period_start=run.period_start,
                period_end=run.period_end,
            )
            results.append(
                CustomerResult(
                    customer_id, customer.name, simulated, actual.get(customer_id, Decimal(0)), lines
                )
            )
            SimulationRun.objects.filter(id=run_id).update(done=F("done") + 1)
        results.sort(key=lambda r: r.name)
        SimulationRun.objects.filter(id=run_id).update(
            status=SimulationStatus.DONE,
            results=[r.as_json() for r in results],
            finished_at=timezone.now(),
        )
    except DomainError as exc:
        SimulationRun.objects.filter(id=run_id).update(
            status=SimulationStatus.FAILED, error=exc.detail, finished_at=timezone.now()
        )


def run_totals(run: SimulationRun) -> dict[str, Decimal]:
    simulated = sum((Decimal(r["simulated"]) for r in run.results), Decimal(0))
    actual = sum((Decimal(r["actual"]) for r in run.results), Decimal(0))
    return {"simulated": simulated, "actual": actual, "difference": simulated - actual}


# --- console views -------------------------------------------------------------------------------------
def _last_full_month(now: datetime) -> tuple[date, date]:
    first = now.date().replace(day=1)
    return (first - timedelta(days=1)).replace(day=1), first


def _form_context(request: HttpRequest, errors: dict[str, str] | None = None) -> dict[str, Any]:
    from catalog.selectors import plan_list

    org = request.organization  # type: ignore[attr-defined]
    plans = list(plan_list(organization=org).only("id", "key", "version", "status", "name", "currency"))
    start, end = _last_full_month(timezone.now())
    data = request.POST if request.method == "POST" else request.GET
    return {
        "plans": plans,
        "plan_keys": sorted({p.key for p in plans}),
        "customers": list(sources.customer_list(organization=org).only("id", "name", "key")[:500]),
        "selected_plan": data.get("plan", ""),
        "selected_version": data.get("version", ""),
        "start": data.get("start", start.isoformat()),
        "end": data.get("end", end.isoformat()),
        "errors": errors or {},
        "runs": simulation_run_list(organization=org),
    }


def _parse_date(value: str, name: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(value), time.min, tzinfo=UTC)
    except (TypeError, ValueError):
        raise ValidationFailed("Give a date as YYYY-MM-DD.", field=name) from None


@console_view(min_role=Role.PRICING_EDITOR)
def simulation_list(request: HttpRequest) -> HttpResponse:
    return render(request, "console/dashboards/simulation_list.html", _form_context(request))


@console_view(min_role=Role.PRICING_EDITOR)
def simulation_new(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return render(request, "console/dashboards/simulation_list.html", _form_context(request))
    org = request.organization  # type: ignore[attr-defined]
    try:
        plan_ref = request.POST.get("plan", "")
        key, _, version = (
            plan_ref.rpartition(":") if ":" in plan_ref else (plan_ref, "", request.POST.get("version", ""))
        )
        if not key or not str(version).isdigit():
            raise ValidationFailed("Pick a plan version.", field="plan")
        run = simulation_run_start(
            organization=org,
            plan_key=key,
            plan_version=int(version),
            period_start=_parse_date(request.POST.get("start", ""), "start"),
            period_end=_parse_date(request.POST.get("end", ""), "end"),
            customer_ids=request.POST.getlist("customers"),
            all_on_plan=request.POST.get("all_on_plan", ""),
            user=request.user,
        )
    except DomainError as exc:
        flash_domain_error(request, exc)
        ctx = _form_context(request, {getattr(exc, "field", "") or "form": exc.detail})
        return render(request, "console/dashboards/simulation_list.html", ctx, status=400)
    return redirect("portal_simulation_detail", run_id=run.id)


@console_view(min_role=Role.PRICING_EDITOR)
def simulation_detail(request: HttpRequest, run_id: str) -> HttpResponse:
    run = simulation_run_get(organization=request.organization, run_id=run_id)  # type: ignore[attr-defined]
    if run is None:
        raise Http404("No such simulation.")
    ctx = {"run": run, "totals": run_totals(run) if run.status == SimulationStatus.DONE else None}
    if getattr(request, "htmx", False):
        return render(request, "console/dashboards/simulation_detail.html#progress", ctx)
    return render(request, "console/dashboards/simulation_detail.html", ctx)
