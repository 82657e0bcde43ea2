"""Writes owned by analytics: pricing simulation runs (start, execute).

Runs of more than `INLINE_MAX` customers go to Celery (`analytics.tasks.simulation_run_task`, queued by
name through `core.enqueue`); the page polls progress with htmx.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from analytics.models import SimulationRun, SimulationStatus
from analytics.simulation import CustomerResult, actual_billed, plan_simulate_customer
from billing.models import Customer
from billing.selectors import customer_list, subscription_list
from catalog.models import PlanVersion
from catalog.selectors import plan_get
from core.enqueue import enqueue_on_commit
from core.errors import DomainError, NotFound, ValidationFailed
from core.models import Organization

INLINE_MAX = 10
MAX_CUSTOMERS = 10_000
TASK = "analytics.tasks.simulation_run_task"


def simulation_customers(
    *, organization: Organization, customer_ids: list[str], all_on_plan: str
) -> list[Customer]:
    if all_on_plan:
        active = subscription_list(organization=organization, status="active")
        ids = set(active.filter(plan_key=all_on_plan).values_list("customer_id", flat=True))
    else:
        ids = set(customer_ids)
    return list(customer_list(organization=organization).filter(id__in=ids)[:MAX_CUSTOMERS])


def _plan(organization: Organization, plan_key: str, version: int) -> PlanVersion:
    return plan_get(organization=organization, id_or_key=plan_key, version=version)


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
        raise ValidationFailed("The period must end after it starts.", field="end")
    if period_end > timezone.now() + timedelta(days=1):
        raise ValidationFailed("Simulate a past period (real usage).", field="end")
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
            enqueue_on_commit(TASK, run.id)
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
            c.id: c for c in customer_list(organization=organization).filter(id__in=run.customer_ids)
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
