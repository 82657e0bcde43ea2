"""Entitlement values: `entitlement_value` for one entitlement, the one-query lookup of the gateway's hot
path (`entitlement_value_lookup`) and the bulk read of every entitlement of a customer
(`customer_entitlement_values`).

Value reads resume the grant engine from the newest `BalanceSnapshot` (kept fresh by
`billing.tasks.entitlement_snapshots_refresh`) and burn only the tail since it, so a check never
re-aggregates a whole period: typically one indexed usage query over a few minutes of events.
A late event (event time before a snapshot) deletes the snapshots after it, so the next read or
refresh recomputes from an older one: balances stay exact when usage arrives late and across resets.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from billing import grants_engine as engine
from billing import sources
from billing.entitlements.burn import Preloaded, active_end, burn, measure_from, usage_reader, usage_window
from billing.models import Customer, Entitlement, EntitlementType, Grant
from billing.periods import period_at
from core.ids import is_ulid
from core.models import Organization


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
                balance=wire_number(self.balance),
                usage=wire_number(self.usage),
                overage=wire_number(self.overage),
                totalAvailableGrantAmount=wire_number(self.total_available),
            )
        if self.config is not None:
            out["config"] = self.config
        return out


def wire_number(value: Decimal | None) -> float | int | None:
    """OpenMeter's wire type for balances is a JSON number."""
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


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
    ends = active_end(ent)
    active = ent.active_from <= at and (ends is None or at < ends)
    if ent.type == EntitlementType.BOOLEAN:
        return EntitlementValue(has_access=active)
    if ent.type == EntitlementType.STATIC:
        return EntitlementValue(has_access=active, config=ent.config)
    if at < measure_from(ent):
        return EntitlementValue(
            has_access=ent.is_soft_limit and active,
            balance=Decimal(0),
            usage=Decimal(0),
            overage=Decimal(0),
            total_available=Decimal(0),
            grant_balances={},
        )
    result = burn(
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
        if row.type != EntitlementType.METERED or at < measure_from(row):
            continue

        def record(a: datetime, b: datetime, ent: Entitlement = row, subj: list[str] = subjects) -> Decimal:
            requests.append(usage_window(ent, subj, a, b))
            return Decimal(0)

        burn(organization=organization, ent=row, at=at, subjects=subjects, preloaded=pre, usage_fn=record)
    known = dict(
        zip(requests, sources.usage_totals(organization=organization, requests=requests), strict=True)
    )
    out = []
    for row, pre, subjects in plans:

        def lookup(a: datetime, b: datetime, ent: Entitlement = row, subj: list[str] = subjects) -> Decimal:
            req = usage_window(ent, subj, a, b)
            if req in known:
                return known[req]
            return usage_reader(organization, ent, subj)(a, b)  # not planned (never expected): ask directly

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
