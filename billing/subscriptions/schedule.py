"""When things happen to a subscription: the change timings, its billing periods, the schedule of its
plan's phases and the default timing of a plan change (upgrade now, downgrade at the period end)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from billing import sources
from billing.models import Subscription
from billing.periods import Cadence, InvalidCadence, Period, period_at, period_start
from core.errors import DomainError, ValidationFailed

IMMEDIATE = "immediate"
NEXT_BILLING_CYCLE = "next_billing_cycle"
TIMINGS = (IMMEDIATE, NEXT_BILLING_CYCLE)


class SubscriptionNotActive(DomainError):
    status = 409
    code = "subscription-not-active"
    title = "Subscription not active"


def subscription_period_at(sub: Subscription, at: datetime) -> Period:
    return period_at(sub.billing_anchor, sub.billing_cadence, at, sub.timezone)


def _phase_end(sub: Subscription, start: datetime, duration: str | None) -> datetime | None:
    """Nominal end (start + duration in the billing zone), rounded up to a billing-period boundary."""
    if not duration:
        return None
    try:
        cad = Cadence.parse(duration)
    except InvalidCadence as exc:
        raise ValidationFailed(str(exc), field="phases.duration") from None
    nominal = period_start(start, cad, 1, sub.timezone)
    p = subscription_period_at(sub, nominal)
    return p.start if p.start == nominal else p.end


@dataclass(frozen=True)
class ScheduledPhase:
    index: int
    spec: sources.PhaseSpec
    starts_at: datetime
    ends_at: datetime | None


def phase_schedule(sub: Subscription, starting_phase: int = 0) -> list[ScheduledPhase]:
    plan = sources.PlanSpec.from_json(sub.plan_snapshot)
    out: list[ScheduledPhase] = []
    start = sub.active_from
    for index, spec in enumerate(plan.phases):
        if index < starting_phase:
            continue
        end = _phase_end(sub, start, spec.duration) if index < len(plan.phases) - 1 else None
        out.append(ScheduledPhase(index, spec, start, end))
        if end is None:
            break
        start = end
    return out


def timing_resolve(sub: Subscription, timing: str | datetime, now: datetime) -> datetime:
    if isinstance(timing, datetime):
        if timing < now:
            raise ValidationFailed("A change cannot be scheduled in the past.", field="timing")
        return timing
    if timing == IMMEDIATE:
        return max(now, sub.active_from)
    if timing == NEXT_BILLING_CYCLE:
        return subscription_period_at(sub, max(now, sub.active_from)).end
    raise ValidationFailed(f"timing must be one of {', '.join(TIMINGS)} or a timestamp.", field="timing")


def _flat_per_period(plan: sources.PlanSpec) -> Decimal:
    """The recurring flat fees of the plan's last (steady-state) phase, summed."""
    total = Decimal(0)
    for card in plan.phases[-1].rate_cards if plan.phases else ():
        price = card.price or {}
        if price.get("type") == "flat" and card.billing_cadence:
            try:
                total += Decimal(str(price.get("amount", "0")))
            except (ArithmeticError, ValueError):
                continue
    return total


def change_default_timing(current: sources.PlanSpec, new: sources.PlanSpec) -> str:
    """Upgrades apply now, downgrades at the end of the billing period (Stripe's and Lago's habit): a
    change is a downgrade when the new plan's recurring flat fees are lower than the current plan's."""
    return NEXT_BILLING_CYCLE if _flat_per_period(new) < _flat_per_period(current) else IMMEDIATE
