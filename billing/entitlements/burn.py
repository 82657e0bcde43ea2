"""The grant engine run over one entitlement's rows: its grants (and issue-after-reset grant), resets,
usage and the snapshot it resumes from. `burn` is what value reads, history and snapshots share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import QuerySet

from billing import grants_engine as engine
from billing import sources
from billing.models import (
    BalanceSnapshot,
    CustomerSubject,
    Entitlement,
    EntitlementReset,
    EntitlementType,
    Grant,
)
from billing.periods import boundaries_between, period_at
from core.models import Organization


def live_metered(organization: Organization) -> QuerySet[Entitlement]:
    """The organization's metered entitlements that are not deleted."""
    return Entitlement.objects.filter(
        organization=organization, type=EntitlementType.METERED, deleted_at__isnull=True
    )


def entitlement_subjects(ent: Entitlement) -> list[str]:
    """The subject keys whose usage counts for the entitlement (its customer's)."""
    return list(
        CustomerSubject.objects.filter(customer_id=ent.customer_id).values_list("subject_key", flat=True)
    )


def _engine_grants(ent: Entitlement, grants: list[Grant]) -> list[engine.Grant]:
    out = [
        engine.Grant(
            id=g.id,
            amount=g.amount,
            effective_at=g.effective_at,
            priority=g.priority,
            expires_at=g.expires_at,
            voided_at=g.voided_at,
            min_rollover=g.min_rollover,
            max_rollover=g.max_rollover,
            recurrence_anchor=g.recurrence_anchor,
            recurrence_interval=g.recurrence_interval or None,
        )
        for g in grants
    ]
    if ent.issue_after_reset is not None and ent.issue_after_reset > 0:
        amount = ent.issue_after_reset
        out.append(
            engine.Grant(
                id=f"{ent.id}-issue-after-reset",
                amount=amount,
                effective_at=measure_from(ent),
                priority=ent.issue_after_reset_priority,
                min_rollover=amount,
                max_rollover=amount,
                voided_at=ent.deleted_at,
            )
        )
    return out


def measure_from(ent: Entitlement) -> datetime:
    return ent.measure_usage_from or ent.active_from


def active_end(ent: Entitlement) -> datetime | None:
    ends = [t for t in (ent.active_to, ent.deleted_at) if t is not None]
    return min(ends) if ends else None


def _resets(ent: Entitlement, manual: list[datetime], start: datetime, end: datetime) -> list[datetime]:
    out = set(t for t in manual if start < t <= end)
    if ent.usage_period_interval and ent.usage_period_anchor:
        out.update(
            boundaries_between(ent.usage_period_anchor, ent.usage_period_interval, start, end, ent.timezone)
        )
    return sorted(out)


def usage_window(
    ent: Entitlement, subjects: list[str], start: datetime, end: datetime
) -> sources.UsageRequest:
    """The usage of the entitlement's meter (with its group-by filters) by `subjects` in [start, end)."""
    return sources.UsageRequest(
        meter_slug=ent.meter_slug,
        subject_keys=tuple(subjects),
        start=start,
        end=end,
        group_by_filters=dict(ent.meter_group_by_filters or {}),
    )


def usage_reader(organization: Organization, ent: Entitlement, subjects: list[str]):
    def usage(a: datetime, b: datetime) -> Decimal:
        return sources.usage_total(organization=organization, window=usage_window(ent, subjects, a, b))

    return usage


def _state_from_snapshot(snap: BalanceSnapshot) -> engine.EngineState:
    return engine.EngineState(
        at=snap.at,
        period_start=snap.period_start,
        grant_balances={k: Decimal(v) for k, v in snap.grant_balances.items()},
        usage=snap.usage,
        overage=snap.overage,
    )


def _initial(ent: Entitlement) -> engine.EngineState:
    start = measure_from(ent)
    period = start
    if ent.usage_period_interval and ent.usage_period_anchor:
        period = period_at(ent.usage_period_anchor, ent.usage_period_interval, start, ent.timezone).start
    return engine.initial_state(at=start, period_start=period)


@dataclass(frozen=True)
class Preloaded:
    """What a value read needs besides usage, loaded in the same query as the entitlement."""

    snapshot: engine.EngineState | None
    grants: list[Grant]
    resets: list[datetime]


def burn(
    *,
    organization: Organization,
    ent: Entitlement,
    at: datetime,
    subjects: list[str] | None = None,
    use_snapshot: bool = True,
    preloaded: Preloaded | None = None,
    usage_fn: Callable[[datetime, datetime], Decimal] | None = None,
) -> engine.BurnResult:
    if subjects is None:
        subjects = entitlement_subjects(ent)
    start_state = _initial(ent)
    if use_snapshot:
        if preloaded is not None:
            snap_state = preloaded.snapshot
        else:
            snap = (
                BalanceSnapshot.objects.filter(entitlement=ent, at__lte=at, at__gte=start_state.at)
                .order_by("-at")
                .first()
            )
            snap_state = _state_from_snapshot(snap) if snap is not None else None
        if snap_state is not None and start_state.at <= snap_state.at <= at:
            start_state = snap_state
    end = at
    ends = active_end(ent)
    if ends is not None:
        end = min(end, ends)
    end = max(end, start_state.at)
    if preloaded is not None:
        grants = _engine_grants(ent, preloaded.grants)
        manual = preloaded.resets
    else:
        grants = _engine_grants(ent, list(Grant.objects.filter(entitlement=ent)))
        manual = list(EntitlementReset.objects.filter(entitlement=ent).values_list("at", flat=True))
    return engine.burn_down(
        grants=grants,
        resets=_resets(ent, manual, start_state.at, end),
        state=start_state,
        end=end,
        usage=usage_fn or usage_reader(organization, ent, subjects),
        preserve_overage_at_reset=ent.preserve_overage_at_reset,
    )
