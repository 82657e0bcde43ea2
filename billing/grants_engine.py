"""Grant burn-down: pure, no database. The single source of truth for entitlement balances.

Inputs: grants, the reset instants of the usage period, and usage per segment. The engine splits
[start, end) at every instant where something changes (grant effective / expiry / void / recurrence,
usage-period reset); inside one segment the set of active grants is fixed, so usage of the segment can
be burnt as one amount.

Rules (OpenMeter's, see ../shared/reference/openmeter-api.md §1.5):

- Usage burns active grants in order: `priority` ascending (lower first), then nearest `expires_at`
  (never-expiring last), then oldest (`effective_at`, then creation order).
- A grant's balance never goes below 0; usage that no grant covers is **overage**. Overage still
  outstanding when a new grant becomes active (or a recurring grant refills) in the same usage period
  is paid first from that grant.
- At each usage-period reset every active grant's balance becomes
  `min(max_rollover, max(balance, min_rollover))`, and usage and overage restart at 0 (unless
  `preserve_overage_at_reset`, in which case the overage is carried and paid from the new balance at
  the reset instant: `issueAfterReset 100`, usage 150 → next period balance 50, overage 0; usage 250
  → balance 0, overage 50 still outstanding, paid by the next grant or reset).
- A grant stops counting at `expires_at` or `voided_at` (its balance is dropped); a grant with a
  recurrence refills to `amount` at each recurrence instant after it became effective.
- Balance = sum of active grant balances (never negative). `has_access = is_soft_limit or balance > 0`.

The engine can resume from a saved `EngineState` (the snapshot a Celery task maintains), so a value
check only burns the tail since the snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from billing.periods import Cadence, boundaries_between

ZERO = Decimal(0)


@dataclass(frozen=True)
class Grant:
    id: str
    amount: Decimal
    effective_at: datetime
    priority: int = 0
    expires_at: datetime | None = None
    voided_at: datetime | None = None
    min_rollover: Decimal = ZERO
    max_rollover: Decimal = ZERO
    created_seq: int = 0  # creation order (e.g. the ULID or a counter); the last tie-breaker
    recurrence_anchor: datetime | None = None
    recurrence_interval: str | None = None

    @property
    def ends_at(self) -> datetime | None:
        ends = [t for t in (self.expires_at, self.voided_at) if t is not None]
        return min(ends) if ends else None

    def active_at(self, at: datetime) -> bool:
        end = self.ends_at
        return self.effective_at <= at and (end is None or at < end)

    def burn_key(self) -> tuple:
        far = datetime.max.replace(tzinfo=self.effective_at.tzinfo)
        return (self.priority, self.expires_at or far, self.effective_at, self.created_seq, self.id)

    def recurrences(self, start: datetime, end: datetime) -> list[datetime]:
        if not self.recurrence_interval or self.recurrence_anchor is None:
            return []
        lo = max(start, self.effective_at)
        return boundaries_between(self.recurrence_anchor, Cadence.parse(self.recurrence_interval), lo, end)


@dataclass
class EngineState:
    """Balances at instant `at` (after applying everything that happens at `at` itself)."""

    at: datetime
    period_start: datetime
    grant_balances: dict[str, Decimal] = field(default_factory=dict)  # active, already-effective grants
    usage: Decimal = ZERO  # in the current usage period, up to `at`
    overage: Decimal = ZERO  # outstanding overage in the current usage period

    def copy(self) -> EngineState:
        return replace(self, grant_balances=dict(self.grant_balances))

    @property
    def balance(self) -> Decimal:
        return sum(self.grant_balances.values(), ZERO)


@dataclass(frozen=True)
class Segment:
    start: datetime
    end: datetime
    usage: Decimal
    overage_added: Decimal
    balance_at_end: Decimal


@dataclass(frozen=True)
class BurnResult:
    state: EngineState
    segments: list[Segment]
    # balance at period start (after paying a carried overage) + grants added since
    # (= balance + usage - overage when no overage was carried into the period)
    total_available: Decimal

    @property
    def balance(self) -> Decimal:
        return self.state.balance

    @property
    def usage(self) -> Decimal:
        return self.state.usage

    @property
    def overage(self) -> Decimal:
        return self.state.overage

    @property
    def grant_balances(self) -> dict[str, Decimal]:
        return dict(self.state.grant_balances)

    def has_access(self, *, is_soft_limit: bool) -> bool:
        return is_soft_limit or self.state.balance > 0


def initial_state(*, at: datetime, period_start: datetime | None = None) -> EngineState:
    return EngineState(at=at, period_start=period_start or at)


def _burn(balances: dict[str, Decimal], grants_by_id: dict[str, Grant], amount: Decimal) -> Decimal:
    """Burn `amount` from balances in burn order; return what no grant covered."""
    if amount <= 0:
        return ZERO
    for gid in sorted(balances, key=lambda g: grants_by_id[g].burn_key()):
        if amount <= 0:
            break
        take = min(balances[gid], amount)
        if take > 0:
            balances[gid] -= take
            amount -= take
    return amount


def breakpoints(
    *,
    grants: Iterable[Grant],
    resets: Iterable[datetime],
    start: datetime,
    end: datetime,
    recurrences: dict[str, set[datetime]] | None = None,
) -> list[datetime]:
    """Sorted instants in (start, end] where the set of grants, a balance or the period changes."""
    points: set[datetime] = set()
    for g in grants:
        for t in (g.effective_at, g.expires_at, g.voided_at):
            if t is not None and start < t <= end:
                points.add(t)
        points.update((recurrences or {}).get(g.id, ()))
    points.update(t for t in resets if start < t <= end)
    return sorted(points)


def burn_down(
    *,
    grants: Sequence[Grant],
    resets: Iterable[datetime],
    state: EngineState,
    end: datetime,
    usage: Callable[[datetime, datetime], Decimal],
    preserve_overage_at_reset: bool = False,
) -> BurnResult:
    """Advance `state` to `end`. `usage(a, b)` returns the metered usage in [a, b).

    `resets` are the usage-period reset instants (any order; only those in (state.at, end] apply).
    `grants` may include grants already in `state.grant_balances` and grants effective later; a grant
    effective exactly at `state.at` and missing from the state is added.
    """
    by_id = {g.id: g for g in grants}
    st = state.copy()
    start = st.at
    if end < start:
        raise ValueError("Cannot burn backwards: end is before the state instant.")
    reset_set = {t for t in resets if start < t <= end}
    recurrences = {g.id: {t for t in g.recurrences(start, end) if start < t <= end} for g in grants}
    # available in the current period so far (never negative: an overage carried into the period and
    # not yet paid is not part of this period's usage)
    added = max(ZERO, st.balance + st.usage - st.overage)
    # Grants active at the start but unknown to the state: effective before the first measured instant
    # (or exactly at it). Grants that ended are not active, burnt ones stay in the state at 0.
    for g in grants:
        if g.id not in st.grant_balances and g.active_at(start):
            st.grant_balances[g.id] = g.amount
            added += g.amount
    segments: list[Segment] = []
    cursor = start
    points = breakpoints(grants=grants, resets=reset_set, start=start, end=end, recurrences=recurrences)
    for point in sorted({*points, end}):
        if point > cursor:
            used = usage(cursor, point)
            if used < 0:
                raise ValueError("Usage must not be negative.")
            st.usage += used
            uncovered = _burn(st.grant_balances, by_id, used)
            st.overage += uncovered
            segments.append(Segment(cursor, point, used, uncovered, st.balance))
            cursor = point
        elif point == start:
            continue
        # What happens at `point`, in a fixed order: ends, reset, refills and new grants, overage payback.
        for gid in list(st.grant_balances):
            ends = by_id[gid].ends_at
            if ends is not None and ends <= point:
                del st.grant_balances[gid]
        reset = point in reset_set
        if reset:
            for gid, bal in st.grant_balances.items():
                g = by_id[gid]
                st.grant_balances[gid] = min(g.max_rollover, max(bal, g.min_rollover))
            st.usage = ZERO
            st.overage = st.overage if preserve_overage_at_reset else ZERO
            st.period_start = point
            added = st.balance
        # A carried overage is paid from the new period's balance at the reset instant itself.
        changed = reset and st.overage > 0
        for g in grants:
            if not g.active_at(point):
                continue
            if g.id in st.grant_balances and point in recurrences[g.id]:
                added += g.amount - st.grant_balances[g.id]
                st.grant_balances[g.id] = g.amount
                changed = True
            elif g.id not in st.grant_balances and g.effective_at == point:
                st.grant_balances[g.id] = g.amount
                added += g.amount
                changed = True
        if changed and st.overage > 0:
            before = st.balance
            st.overage = _burn(st.grant_balances, by_id, st.overage)
            if reset:  # what paid the previous period's overage is not available to this period
                added -= before - st.balance
    st.at = end
    return BurnResult(state=st, segments=segments, total_available=added)
