"""Entitlements and grants: writes, the value computation, snapshots and threshold notifications.

`billing.services` and `billing.selectors` re-export the public functions.

Value reads (`entitlement_value`) resume the grant engine from the newest `BalanceSnapshot` (kept fresh
by `billing.tasks.entitlement_snapshots_refresh`) and burn only the tail since it, so a check never
re-aggregates a whole period: typically one indexed usage query over a few minutes of events.
A late event (event time before a snapshot) deletes the snapshots after it, so the next read or
refresh recomputes from an older one: balances stay exact when usage arrives late and across resets.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from billing import grants_engine as engine
from billing import sources
from billing.models import (
    BalanceSnapshot,
    Customer,
    CustomerSubject,
    Entitlement,
    EntitlementReset,
    EntitlementType,
    Grant,
    NotificationEvent,
    NotificationRule,
)
from billing.periods import Cadence, InvalidCadence, boundaries_between, period_at, period_start
from core.audit import Actor, audit_record
from core.errors import Conflict, NotFound, ValidationFailed
from core.ids import is_ulid
from core.models import Organization

# Snapshots are taken this long in the past, so events still in flight (gateways batch for seconds) do
# not land before them and force a recompute.
SNAPSHOT_LAG = timedelta(minutes=2)
SNAPSHOTS_KEPT = 5
THRESHOLD_EVENT = "entitlements.balance.threshold"
EXPIRATION_UNITS = {"HOUR": "PT1H", "DAY": "P1D", "WEEK": "P1W", "MONTH": "P1M", "YEAR": "P1Y"}


# --- reads ------------------------------------------------------------------------------------------


def entitlement_get(
    *, organization: Organization, customer: Customer, id_or_feature_key: str, at: datetime | None = None
) -> Entitlement:
    """The customer's entitlement with this id, or its entitlement for this feature key active at `at`."""
    qs = Entitlement.objects.filter(organization=organization, customer=customer, deleted_at__isnull=True)
    if is_ulid(id_or_feature_key):
        found = qs.filter(id=id_or_feature_key.upper()).first()
        if found is not None:
            return found
    at = at or timezone.now()
    found = (
        qs.filter(feature_key=id_or_feature_key, active_from__lte=at)
        .filter(Q(active_to__isnull=True) | Q(active_to__gt=at))
        .order_by("-active_from")
        .first()
    )
    if found is None:
        found = qs.filter(feature_key=id_or_feature_key, active_to__isnull=True).first()
    if found is None:
        raise NotFound(f"No entitlement {id_or_feature_key!r} for this customer.")
    return found


def entitlement_list(
    *,
    organization: Organization,
    customer: Customer | None = None,
    include_deleted: bool = False,
    active_at: datetime | None = None,
):
    qs = Entitlement.objects.filter(organization=organization).select_related("customer")
    if customer is not None:
        qs = qs.filter(customer=customer)
    if not include_deleted:
        qs = qs.filter(deleted_at__isnull=True)
    if active_at is not None:
        qs = qs.filter(active_from__lte=active_at).filter(
            Q(active_to__isnull=True) | Q(active_to__gt=active_at)
        )
    return qs.order_by("feature_key", "-active_from", "id")


def grant_list(
    *, organization: Organization, entitlement: Entitlement | None = None, include_deleted: bool = False
):
    qs = Grant.objects.filter(organization=organization)
    if entitlement is not None:
        qs = qs.filter(entitlement=entitlement)
    if not include_deleted:
        qs = qs.filter(voided_at__isnull=True)
    return qs.order_by("effective_at", "id")


@dataclass(frozen=True)
class EntitlementValue:
    has_access: bool
    balance: Decimal | None = None
    usage: Decimal | None = None
    overage: Decimal | None = None
    total_available: Decimal | None = None
    grant_balances: dict[str, Decimal] | None = None
    config: str | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None

    def as_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"hasAccess": self.has_access}
        if self.balance is not None:
            out.update(
                balance=_num(self.balance),
                usage=_num(self.usage),
                overage=_num(self.overage),
                totalAvailableGrantAmount=_num(self.total_available),
            )
        if self.config is not None:
            out["config"] = self.config
        return out


def _num(value: Decimal | None) -> float | int | None:
    """OpenMeter's wire type for balances is a JSON number."""
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


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
                effective_at=_measure_from(ent),
                priority=ent.issue_after_reset_priority,
                min_rollover=amount,
                max_rollover=amount,
                voided_at=ent.deleted_at,
            )
        )
    return out


def _measure_from(ent: Entitlement) -> datetime:
    return ent.measure_usage_from or ent.active_from


def _end(ent: Entitlement) -> datetime | None:
    ends = [t for t in (ent.active_to, ent.deleted_at) if t is not None]
    return min(ends) if ends else None


def _resets(ent: Entitlement, manual: list[datetime], start: datetime, end: datetime) -> list[datetime]:
    out = set(t for t in manual if start < t <= end)
    if ent.usage_period_interval and ent.usage_period_anchor:
        out.update(
            boundaries_between(ent.usage_period_anchor, ent.usage_period_interval, start, end, ent.timezone)
        )
    return sorted(out)


def _usage_fn(organization: Organization, ent: Entitlement, subjects: list[str]):
    def usage(a: datetime, b: datetime) -> Decimal:
        return sources.usage_total(
            organization=organization,
            meter_slug=ent.meter_slug,
            subject_keys=subjects,
            start=a,
            end=b,
            group_by_filters=ent.meter_group_by_filters,
        )

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
    start = _measure_from(ent)
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


def _dt_json(value: str | None) -> Any:
    return datetime.fromisoformat(value) if value else None


_VALUE_SELECT_SQL = """
SELECT e.*,
  ARRAY(SELECT cs.subject_key FROM billing_customersubject cs WHERE cs.customer_id = e.customer_id
        ORDER BY cs.subject_key) AS _subjects,
  ARRAY(SELECT json_build_object('id', g.id, 'amount', g.amount::text, 'priority', g.priority,
          'effective_at', g.effective_at, 'expires_at', g.expires_at, 'voided_at', g.voided_at,
          'min_rollover', g.min_rollover::text, 'max_rollover', g.max_rollover::text,
          'recurrence_interval', g.recurrence_interval, 'recurrence_anchor', g.recurrence_anchor,
          'metadata', g.metadata)
        FROM billing_grant g WHERE g.entitlement_id = e.id) AS _grants,
  ARRAY(SELECT r.at FROM billing_entitlementreset r WHERE r.entitlement_id = e.id) AS _resets,
  (SELECT json_build_object('at', s.at, 'period_start', s.period_start, 'grant_balances', s.grant_balances,
          'usage', s.usage::text, 'overage', s.overage::text)
     FROM billing_balancesnapshot s WHERE s.entitlement_id = e.id AND s.at <= %(at)s
     ORDER BY s.at DESC LIMIT 1) AS _snapshot
FROM billing_entitlement e JOIN billing_customer c ON c.id = e.customer_id
"""

_VALUE_LOOKUP_SQL = (
    _VALUE_SELECT_SQL
    + """WHERE e.organization_id = %(org)s AND c.organization_id = %(org)s AND e.deleted_at IS NULL
  AND c.deleted_at IS NULL AND (c.key = %(ckey)s OR c.id = %(cid)s)
  AND (e.feature_key = %(fkey)s OR e.id = %(eid)s)
LIMIT 20
"""
)

# Every entitlement of one customer active at %(at)s, with the same preloaded columns (the bulk read).
_CUSTOMER_VALUES_SQL = (
    _VALUE_SELECT_SQL
    + """WHERE e.organization_id = %(org)s AND c.organization_id = %(org)s AND e.customer_id = %(cid)s
  AND e.deleted_at IS NULL AND e.active_from <= %(at)s AND (e.active_to IS NULL OR e.active_to > %(at)s)
ORDER BY e.feature_key, e.active_from DESC, e.id
"""
)


def entitlement_value_lookup(
    *, organization: Organization, customer_ref: str, entitlement_ref: str, at: datetime | None = None
) -> tuple[Entitlement, list[str], Preloaded] | None:
    """The hot path of a value check: customer (id or key), its subjects, the entitlement (id or feature key
    active at `at`), its grants, manual resets and newest snapshot before `at` — in ONE query.
    None when nothing matches (callers fall back to the regular selectors for a precise 404)."""
    at = at or timezone.now()
    customer_id = customer_ref.upper() if is_ulid(customer_ref) else ""
    entitlement_id = entitlement_ref.upper() if is_ulid(entitlement_ref) else ""
    # Hand-written SQL: this runs on every gateway request, and the ORM's compile step costs more CPU
    # than the query itself. Numerics travel as text inside JSON (no float ever).
    rows = list(
        Entitlement.objects.raw(
            _VALUE_LOOKUP_SQL,
            {
                "org": organization.id,
                "ckey": customer_ref,
                "cid": customer_id,
                "fkey": entitlement_ref,
                "eid": entitlement_id,
                "at": at,
            },
        )
    )
    if not rows:
        return None
    if is_ulid(customer_ref) and len({r.customer_id for r in rows}) > 1:  # id beats key
        rows = [r for r in rows if r.customer_id == customer_ref.upper()] or rows
    by_id = [r for r in rows if r.id == entitlement_ref.upper()]
    active = [r for r in rows if r.active_from <= at and (r.active_to is None or r.active_to > at)]
    open_ended = [r for r in rows if r.active_to is None]
    candidates = by_id or sorted(active, key=lambda r: r.active_from, reverse=True) or open_ended
    if not candidates:
        return None
    choice: Any = candidates[0]  # carries the raw columns _subjects, _grants, _resets, _snapshot
    return choice, list(choice._subjects), _preloaded(organization, choice)


def _preloaded(organization: Organization, choice: Any) -> Preloaded:
    """Parse the raw columns _grants, _resets, _snapshot of a `_VALUE_SELECT_SQL` row."""
    snap = choice._snapshot
    if isinstance(snap, str):
        snap = json.loads(snap)
    state = None
    if snap:
        state = engine.EngineState(
            at=_dt_json(snap["at"]),
            period_start=_dt_json(snap["period_start"]),
            grant_balances={k: Decimal(v) for k, v in snap["grant_balances"].items()},
            usage=Decimal(snap["usage"]),
            overage=Decimal(snap["overage"]),
        )
    grant_rows = [
        Grant(
            id=g["id"],
            organization_id=organization.id,
            entitlement_id=choice.id,
            amount=Decimal(g["amount"]),
            priority=g["priority"],
            effective_at=_dt_json(g["effective_at"]),
            expires_at=_dt_json(g["expires_at"]),
            voided_at=_dt_json(g["voided_at"]),
            min_rollover=Decimal(g["min_rollover"]),
            max_rollover=Decimal(g["max_rollover"]),
            recurrence_interval=g["recurrence_interval"] or "",
            recurrence_anchor=_dt_json(g["recurrence_anchor"]),
            metadata=g.get("metadata") or {},
        )
        for g in (json.loads(x) if isinstance(x, str) else x for x in choice._grants)
    ]
    return Preloaded(snapshot=state, grants=grant_rows, resets=list(choice._resets))


def _burn(
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
        subjects = list(
            CustomerSubject.objects.filter(customer_id=ent.customer_id).values_list("subject_key", flat=True)
        )
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
    ends = _end(ent)
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
        usage=usage_fn or _usage_fn(organization, ent, subjects),
        preserve_overage_at_reset=ent.preserve_overage_at_reset,
    )


def entitlement_value(
    *,
    organization: Organization,
    entitlement: Entitlement,
    at: datetime | None = None,
    subjects: list[str] | None = None,
    preloaded: Preloaded | None = None,
    usage_fn: Callable[[datetime, datetime], Decimal] | None = None,
) -> EntitlementValue:
    at = at or timezone.now()
    ent = entitlement
    ends = _end(ent)
    active = ent.active_from <= at and (ends is None or at < ends)
    if ent.type == EntitlementType.BOOLEAN:
        return EntitlementValue(has_access=active)
    if ent.type == EntitlementType.STATIC:
        return EntitlementValue(has_access=active, config=ent.config)
    if at < _measure_from(ent):
        return EntitlementValue(
            has_access=ent.is_soft_limit and active,
            balance=Decimal(0),
            usage=Decimal(0),
            overage=Decimal(0),
            total_available=Decimal(0),
            grant_balances={},
        )
    result = _burn(
        organization=organization, ent=ent, at=at, subjects=subjects, preloaded=preloaded, usage_fn=usage_fn
    )
    period_end = None
    if ent.usage_period_interval and ent.usage_period_anchor:
        period_end = period_at(
            ent.usage_period_anchor, ent.usage_period_interval, result.state.period_start, ent.timezone
        ).end
    return EntitlementValue(
        has_access=active and result.has_access(is_soft_limit=ent.is_soft_limit),
        balance=result.balance,
        usage=result.usage,
        overage=result.overage,
        total_available=result.total_available,
        grant_balances=result.grant_balances,
        period_start=result.state.period_start,
        period_end=period_end,
    )


def customer_access(
    *, organization: Organization, customer: Customer, at: datetime | None = None
) -> dict[str, EntitlementValue]:
    """{feature key: value} of every entitlement active at `at` (`customer_entitlement_values`: a
    constant number of queries per distinct meter, not per entitlement)."""
    rows = customer_entitlement_values(organization=organization, customer=customer, at=at)
    return {row.entitlement.feature_key: row.value for row in rows}


@dataclass(frozen=True)
class EntitlementWithValue:
    entitlement: Entitlement
    value: EntitlementValue
    grants: list[Grant]  # live (not voided) grants, oldest first


def customer_entitlement_values(
    *, organization: Organization, customer: Customer, at: datetime | None = None
) -> list[EntitlementWithValue]:
    """Every entitlement of the customer active at `at`, with its value and live grants, in a number of
    queries that does not grow with rows or with entitlements on the same meter:

    1. one statement: the entitlements, the customer's subjects, their grants, manual resets and newest
       balance snapshot at or before `at` (the snapshots billing's beat task keeps fresh);
    2. a planning pass of the grant engine from each snapshot records the usage windows it needs (only
       the tail since the snapshot, cut at resets and grant boundaries; the engine's breakpoints never
       depend on usage);
    3. `sources.usage_totals` answers all windows at once (one metering query per meter and window);
    4. the engine burns again with those numbers (pure, no queries).
    Values equal `entitlement_value` for each entitlement (tested)."""
    at = at or timezone.now()
    rows: list[Any] = list(
        Entitlement.objects.raw(_CUSTOMER_VALUES_SQL, {"org": organization.id, "cid": customer.id, "at": at})
    )
    plans: list[tuple[Entitlement, Preloaded, list[str]]] = []
    requests: list[sources.UsageRequest] = []
    for row in rows:
        pre = _preloaded(organization, row)
        subjects = list(row._subjects)
        plans.append((row, pre, subjects))
        if row.type != EntitlementType.METERED or at < _measure_from(row):
            continue

        def record(a: datetime, b: datetime, ent: Entitlement = row, subj: list[str] = subjects) -> Decimal:
            requests.append(
                sources.UsageRequest(
                    ent.meter_slug, tuple(subj), a, b, dict(ent.meter_group_by_filters or {})
                )
            )
            return Decimal(0)

        _burn(organization=organization, ent=row, at=at, subjects=subjects, preloaded=pre, usage_fn=record)
    known = dict(
        zip(requests, sources.usage_totals(organization=organization, requests=requests), strict=True)
    )
    out = []
    for row, pre, subjects in plans:

        def lookup(a: datetime, b: datetime, ent: Entitlement = row, subj: list[str] = subjects) -> Decimal:
            req = sources.UsageRequest(
                ent.meter_slug, tuple(subj), a, b, dict(ent.meter_group_by_filters or {})
            )
            if req in known:
                return known[req]
            return _usage_fn(organization, ent, subj)(a, b)  # not planned (never expected): ask directly

        value = entitlement_value(
            organization=organization,
            entitlement=row,
            at=at,
            subjects=subjects,
            preloaded=pre,
            usage_fn=lookup,
        )
        out.append(
            EntitlementWithValue(
                entitlement=row,
                value=value,
                grants=sorted(
                    (g for g in pre.grants if g.voided_at is None), key=lambda g: (g.effective_at, g.id)
                ),
            )
        )
    return out


def entitlement_history(
    *,
    organization: Organization,
    entitlement: Entitlement,
    start: datetime,
    end: datetime,
    window_size: str = "DAY",
    tz: str = "UTC",
) -> dict[str, Any]:
    """Windowed usage and the burn-down segments between start and end (OpenMeter's history shape)."""
    ent = entitlement
    subjects = list(
        CustomerSubject.objects.filter(customer_id=ent.customer_id).values_list("subject_key", flat=True)
    )
    usage = _usage_fn(organization, ent, subjects)
    try:
        cad = Cadence.parse({"MINUTE": "PT1M"}.get(window_size.upper(), window_size))
    except InvalidCadence as exc:
        raise ValidationFailed(str(exc), field="windowSize") from None
    windows = []
    k = 0
    first = period_at(start, cad, start, tz).start
    while True:
        ws = period_start(first, cad, k, tz)
        if ws >= end:
            break
        we = min(period_start(first, cad, k + 1, tz), end)
        windows.append({"from": ws, "to": we, "usage": _num(usage(max(ws, start), we))})
        k += 1
        if k > 2000:
            raise ValidationFailed("Too many windows; use a larger windowSize.", field="windowSize")
    burndown = []
    if ent.type == EntitlementType.METERED:
        result = _burn(organization=organization, ent=ent, at=end, subjects=subjects, use_snapshot=False)
        for seg in result.segments:
            if seg.end <= start:
                continue
            burndown.append(
                {
                    "period": {"from": seg.start, "to": seg.end},
                    "usage": _num(seg.usage),
                    "overage": _num(seg.overage_added),
                    "balanceAtEnd": _num(seg.balance_at_end),
                }
            )
    return {"windowedHistory": windows, "burndownHistory": burndown}


# --- writes -----------------------------------------------------------------------------------------


def _parse_interval(value: str, field: str) -> str:
    try:
        Cadence.parse(value)
    except InvalidCadence as exc:
        raise ValidationFailed(str(exc), field=field) from None
    return {"DAY": "P1D", "WEEK": "P1W", "MONTH": "P1M", "YEAR": "P1Y"}.get(value.upper(), value.upper())


def entitlement_create(
    *,
    organization: Organization,
    customer: Customer,
    feature_key: str,
    type: str,
    usage_period_interval: str | None = None,
    usage_period_anchor: datetime | None = None,
    is_soft_limit: bool = False,
    issue_after_reset: Decimal | None = None,
    issue_after_reset_priority: int = 1,
    preserve_overage_at_reset: bool = False,
    measure_usage_from: str | datetime | None = None,
    config: str | None = None,
    metadata: dict | None = None,
    grants: list[dict[str, Any]] | None = None,
    actor: Actor = None,
    _audit_action: str = "entitlement.created",
) -> Entitlement:
    now = timezone.now()
    if customer.deleted_at is not None:
        raise NotFound("No such customer.")
    if type not in EntitlementType.values:
        raise ValidationFailed(f"type must be one of {', '.join(EntitlementType.values)}.", field="type")
    feature = sources.feature_spec_get(organization=organization, key_or_id=feature_key)
    ent = Entitlement(
        organization=organization,
        customer=customer,
        feature_id=feature.id,
        feature_key=feature.key,
        type=type,
        active_from=now,
        metadata=metadata or {},
        timezone=customer.timezone or organization.timezone,
    )
    if type == EntitlementType.STATIC:
        if config is None:
            raise ValidationFailed("config is required for static entitlements.", field="config")
        try:
            json.loads(config)
        except (TypeError, ValueError):
            raise ValidationFailed("config must be a JSON string.", field="config") from None
        ent.config = config
    if type == EntitlementType.METERED:
        if not feature.meter_slug:
            raise ValidationFailed(
                f"Feature {feature.key!r} has no meter; metered entitlements need one.", field="featureKey"
            )
        if not usage_period_interval:
            raise ValidationFailed(
                "usagePeriod.interval is required for metered entitlements.", field="usagePeriod.interval"
            )
        ent.meter_slug = feature.meter_slug
        ent.meter_group_by_filters = feature.meter_group_by_filters
        ent.usage_period_interval = _parse_interval(usage_period_interval, "usagePeriod.interval")
        ent.usage_period_anchor = usage_period_anchor or now
        ent.is_soft_limit = is_soft_limit
        ent.issue_after_reset = issue_after_reset
        ent.issue_after_reset_priority = issue_after_reset_priority
        ent.preserve_overage_at_reset = preserve_overage_at_reset
        if measure_usage_from in (None, "", "CURRENT_PERIOD_START"):
            ent.measure_usage_from = period_at(
                ent.usage_period_anchor, ent.usage_period_interval, now, ent.timezone
            ).start
        elif measure_usage_from == "NOW":
            ent.measure_usage_from = now
        elif isinstance(measure_usage_from, datetime):
            ent.measure_usage_from = measure_usage_from
        else:
            raise ValidationFailed(
                "measureUsageFrom must be CURRENT_PERIOD_START, NOW or a timestamp.", field="measureUsageFrom"
            )
        ent.active_from = min(now, ent.measure_usage_from)
    try:
        with transaction.atomic():
            ent.save()
            for index, g in enumerate(grants or []):
                try:
                    _grant_insert(organization=organization, entitlement=ent, **g)
                except ValidationFailed as exc:
                    raise ValidationFailed(
                        exc.detail, field=f"grants[{index}].{exc.field or ''}".rstrip(".")
                    ) from None
            audit_record(
                organization=organization,
                actor=actor,
                action=_audit_action,
                object_type="entitlement",
                object_id=ent.id,
                after={"customerId": customer.id, "featureKey": ent.feature_key, "type": ent.type},
            )
    except IntegrityError:
        raise Conflict(
            f"The customer already has an active entitlement for feature {feature.key!r}.", field="featureKey"
        ) from None
    return ent


def entitlement_delete(*, organization: Organization, entitlement: Entitlement, actor: Actor = None) -> None:
    now = timezone.now()
    with transaction.atomic():
        updated = Entitlement.objects.filter(
            pk=entitlement.pk, organization=organization, deleted_at__isnull=True
        ).update(deleted_at=now)
        if updated:
            audit_record(
                organization=organization,
                actor=actor,
                action="entitlement.deleted",
                object_type="entitlement",
                object_id=entitlement.id,
                before={"featureKey": entitlement.feature_key},
            )


def entitlement_override(
    *, organization: Organization, customer: Customer, old: Entitlement, actor: Actor = None, **fields: Any
) -> Entitlement:
    """Replace an entitlement (OpenMeter's PUT .../override): soft-delete the old one, create the new one."""
    with transaction.atomic():
        entitlement_delete(organization=organization, entitlement=old, actor=actor)
        return entitlement_create(
            organization=organization,
            customer=customer,
            actor=actor,
            _audit_action="entitlement.overridden",
            **fields,
        )


def entitlement_reset(
    *, organization: Organization, entitlement: Entitlement, at: datetime | None = None, actor: Actor = None
) -> None:
    """Start a new usage period now (grants roll over). The usage-period anchor is kept (retainAnchor)."""
    if entitlement.type != EntitlementType.METERED:
        raise ValidationFailed("Only metered entitlements can be reset.", field="entitlement")
    at = at or timezone.now()
    if at < _measure_from(entitlement):
        raise ValidationFailed("A reset cannot be before usage is measured.", field="effectiveAt")
    with transaction.atomic():
        EntitlementReset.objects.create(organization=organization, entitlement=entitlement, at=at)
        BalanceSnapshot.objects.filter(entitlement=entitlement, at__gt=at).delete()
        audit_record(
            organization=organization,
            actor=actor,
            action="entitlement.reset",
            object_type="entitlement",
            object_id=entitlement.id,
            after={"at": at.isoformat()},
        )


def _grant_insert(
    *,
    organization: Organization,
    entitlement: Entitlement,
    amount: Decimal,
    effective_at: datetime | None = None,
    priority: int = 1,
    expiration: dict | None = None,
    min_rollover: Decimal | None = None,
    max_rollover: Decimal | None = None,
    recurrence: dict | None = None,
    metadata: dict | None = None,
    source: str = "api",
) -> Grant:
    if entitlement.type != EntitlementType.METERED:
        raise ValidationFailed("Grants can only be added to metered entitlements.", field="entitlement")
    if amount is None or Decimal(amount) <= 0:
        raise ValidationFailed("amount must be greater than 0.", field="amount")
    effective_at = effective_at or timezone.now()
    # OpenMeter ceils effectiveAt to the minute.
    if effective_at.second or effective_at.microsecond:
        effective_at = effective_at.replace(second=0, microsecond=0) + timedelta(minutes=1)
    expires_at = None
    duration, count = "", None
    if expiration:
        duration = str(expiration.get("duration", "")).upper()
        count = int(expiration.get("count") or 0)
        if duration not in EXPIRATION_UNITS or count <= 0:
            raise ValidationFailed(
                "expiration needs duration HOUR|DAY|WEEK|MONTH|YEAR and count > 0.", field="expiration"
            )
        expires_at = period_start(
            effective_at, Cadence.parse(EXPIRATION_UNITS[duration]), count, entitlement.timezone
        )
    rec_interval, rec_anchor = "", None
    if recurrence:
        rec_interval = _parse_interval(str(recurrence.get("interval", "")), "recurrence.interval")
        rec_anchor = recurrence.get("anchor") or effective_at
    max_r = Decimal(max_rollover) if max_rollover is not None else Decimal(0)
    min_r = Decimal(min_rollover) if min_rollover is not None else Decimal(0)
    if min_r < 0 or max_r < 0:
        raise ValidationFailed("Rollover amounts must not be negative.", field="minRolloverAmount")
    grant = Grant.objects.create(
        organization=organization,
        entitlement=entitlement,
        amount=Decimal(amount),
        priority=priority,
        effective_at=effective_at,
        expiration_duration=duration,
        expiration_count=count,
        expires_at=expires_at,
        min_rollover=min_r,
        max_rollover=max_r,
        recurrence_interval=rec_interval,
        recurrence_anchor=rec_anchor,
        metadata=metadata or {},
        source=source,
    )
    # A back-dated grant changes balances after its effective time.
    BalanceSnapshot.objects.filter(entitlement=entitlement, at__gt=effective_at).delete()
    return grant


def grant_create(
    *, organization: Organization, entitlement: Entitlement, actor: Actor = None, **fields: Any
) -> Grant:
    with transaction.atomic():
        grant = _grant_insert(organization=organization, entitlement=entitlement, **fields)
        audit_record(
            organization=organization,
            actor=actor,
            action="grant.created",
            object_type="grant",
            object_id=grant.id,
            after={
                "entitlementId": entitlement.id,
                "amount": str(grant.amount),
                "priority": grant.priority,
                "effectiveAt": grant.effective_at.isoformat(),
            },
        )
    transaction.on_commit(
        lambda: entitlement_thresholds_check(organization=organization, entitlement_ids=[entitlement.id])
    )
    return grant


def grant_void(*, organization: Organization, grant_id: str, actor: Actor = None) -> Grant:
    now = timezone.now()
    with transaction.atomic():
        grant = Grant.objects.select_for_update().filter(organization=organization, id=grant_id).first()
        if grant is None:
            raise NotFound(f"No such grant: {grant_id!r}.")
        if grant.voided_at is not None:
            return grant
        grant.voided_at = now
        grant.save(update_fields=["voided_at", "updated_at"])
        BalanceSnapshot.objects.filter(entitlement_id=grant.entitlement_id, at__gt=now).delete()
        audit_record(
            organization=organization,
            actor=actor,
            action="grant.voided",
            object_type="grant",
            object_id=grant.id,
            after={"voidedAt": now.isoformat()},
        )
    return grant


# --- snapshots and usage-landed hook ----------------------------------------------------------------


def entitlement_snapshot_refresh(
    *, organization: Organization, entitlement_id: str, now: datetime | None = None
) -> BalanceSnapshot | None:
    """Recompute the entitlement's state at `now - SNAPSHOT_LAG` and store it as the newest snapshot
    (idempotent; safe to run twice). Older snapshots beyond SNAPSHOTS_KEPT are pruned."""
    ent = Entitlement.objects.filter(
        organization=organization, id=entitlement_id, type=EntitlementType.METERED
    ).first()
    if ent is None:
        return None
    at = (now or timezone.now()) - SNAPSHOT_LAG
    at = at.replace(second=0, microsecond=0)
    ends = _end(ent)
    if ends is not None:
        at = min(at, ends)
    if at <= _measure_from(ent):
        return None
    # A full recompute (not from the previous snapshot): a late event that arrived since then is picked up
    # even when metering did not call `entitlements_usage_landed` (bounded staleness: one beat interval).
    result = _burn(organization=organization, ent=ent, at=at, use_snapshot=False)
    BalanceSnapshot.objects.filter(entitlement=ent, at__gt=at).delete()
    snap, _ = BalanceSnapshot.objects.update_or_create(
        entitlement=ent,
        at=result.state.at,
        defaults={
            "organization": organization,
            "period_start": result.state.period_start,
            "grant_balances": {k: str(v) for k, v in result.state.grant_balances.items()},
            "usage": result.state.usage,
            "overage": result.state.overage,
            "total_available": result.total_available,
        },
    )
    old = list(
        BalanceSnapshot.objects.filter(entitlement=ent)
        .order_by("-at")
        .values_list("id", flat=True)[SNAPSHOTS_KEPT:]
    )
    if old:
        BalanceSnapshot.objects.filter(id__in=old).delete()
    # Thresholds are also checked here, so they fire within a beat interval even when metering does not
    # call `entitlements_usage_landed` at ingest (deduplicated: each fires once per period).
    entitlement_thresholds_check(organization=organization, entitlement_ids=[ent.id], at=now)
    return snap


def entitlements_usage_landed(
    *, organization: Organization, subject_keys: list[str], earliest_event_time: datetime
) -> list[str]:
    """Called when usage is ingested: drop snapshots that the new events invalidate (late events) and
    evaluate threshold rules for the affected entitlements. Returns the affected entitlement ids."""
    customer_ids = list(
        CustomerSubject.objects.filter(organization=organization, subject_key__in=subject_keys)
        .values_list("customer_id", flat=True)
        .distinct()
    )
    if not customer_ids:
        return []
    ids = list(
        Entitlement.objects.filter(
            organization=organization,
            customer_id__in=customer_ids,
            type=EntitlementType.METERED,
            deleted_at__isnull=True,
        ).values_list("id", flat=True)
    )
    BalanceSnapshot.objects.filter(entitlement_id__in=ids, at__gt=earliest_event_time).delete()
    entitlement_thresholds_check(organization=organization, entitlement_ids=ids)
    return ids


def _threshold_crossed(kind: str, target: Decimal, value: EntitlementValue) -> bool:
    usage = value.usage or Decimal(0)
    if kind == "PERCENT":
        total = value.total_available or Decimal(0)
        if total <= 0:
            return usage > 0 and target >= 0
        return usage * 100 / total >= target
    if kind == "USAGE_VALUE" or kind == "NUMBER":
        return usage >= target
    if kind == "BALANCE_VALUE":
        return (value.balance or Decimal(0)) <= target
    return False


def entitlement_thresholds_check(
    *, organization: Organization, entitlement_ids: list[str], at: datetime | None = None
) -> int:
    """Evaluate threshold rules for these entitlements; store one notification event per threshold
    crossed per usage period (idempotent through `dedupe_key`). Returns how many were created."""
    at = at or timezone.now()
    ents = list(
        Entitlement.objects.filter(
            organization=organization,
            id__in=entitlement_ids,
            type=EntitlementType.METERED,
            deleted_at__isnull=True,
        ).select_related("customer")
    )
    if not ents:
        return 0
    rules = list(
        NotificationRule.objects.filter(
            organization=organization, disabled=False, feature_key__in={e.feature_key for e in ents}
        )
    )
    if not rules:
        return 0
    created = 0
    for ent in ents:
        matching = [r for r in rules if r.feature_key == ent.feature_key]
        if not matching:
            continue
        value = entitlement_value(organization=organization, entitlement=ent, at=at)
        events = []
        for rule in matching:
            for th in rule.thresholds:
                kind, target = str(th.get("type", "PERCENT")).upper(), Decimal(str(th.get("value")))
                if not _threshold_crossed(kind, target, value):
                    continue
                events.append(
                    NotificationEvent(
                        organization=organization,
                        type=THRESHOLD_EVENT,
                        rule=rule,
                        dedupe_key=f"{rule.id}:{ent.id}:{value.period_start.isoformat() if value.period_start else ''}:"
                        f"{kind}:{target}",
                        payload={
                            "entitlement": {"id": ent.id, "featureKey": ent.feature_key},
                            "customer": {"id": ent.customer_id, "key": ent.customer.key},
                            "threshold": {"type": kind, "value": str(target)},
                            "value": value.as_api(),
                            "period": {
                                "from": value.period_start.isoformat() if value.period_start else None,
                                "to": value.period_end.isoformat() if value.period_end else None,
                            },
                        },
                    )
                )
        if events:
            before = NotificationEvent.objects.filter(organization=organization).count()
            NotificationEvent.objects.bulk_create(events, ignore_conflicts=True)
            created += NotificationEvent.objects.filter(organization=organization).count() - before
    return created


def notification_rule_create(
    *,
    organization: Organization,
    name: str,
    feature_key: str,
    thresholds: list[dict[str, Any]],
    actor: Actor = None,
) -> NotificationRule:
    if not thresholds:
        raise ValidationFailed("At least one threshold is required.", field="thresholds")
    for i, th in enumerate(thresholds):
        if str(th.get("type", "")).upper() not in ("PERCENT", "USAGE_VALUE", "NUMBER", "BALANCE_VALUE"):
            raise ValidationFailed(
                "type must be PERCENT, USAGE_VALUE or BALANCE_VALUE.", field=f"thresholds[{i}].type"
            )
        try:
            Decimal(str(th.get("value")))
        except Exception:
            raise ValidationFailed("value must be a number.", field=f"thresholds[{i}].value") from None
    with transaction.atomic():
        rule = NotificationRule.objects.create(
            organization=organization,
            name=name,
            feature_key=feature_key,
            thresholds=[{"type": str(t["type"]).upper(), "value": str(t["value"])} for t in thresholds],
        )
        audit_record(
            organization=organization,
            actor=actor,
            action="notification_rule.created",
            object_type="notification_rule",
            object_id=rule.id,
            after={"featureKey": feature_key, "thresholds": rule.thresholds},
        )
    return rule
