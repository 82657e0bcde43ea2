"""A deliberately naive reference model of grant burn-down, used by property tests.

It walks every usage event one at a time and, for each unit-sized piece, picks the grant to burn
with a linear scan; it shares no code with billing.grants_engine.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

FAR = datetime.max  # noqa: DTZ901 - compared with naive copies only


def brute_force(*, grants, events, resets, start, end, preserve_overage=False):
    """grants: engine Grant objects (read as plain data); events: [(time, amount)]; returns
    (balances, usage, overage) at `end`, starting from nothing at `start` (a period start)."""
    balances: dict[str, Decimal] = {}
    usage = Decimal(0)
    overage = Decimal(0)

    def key(g):
        exp = g.expires_at.replace(tzinfo=None) if g.expires_at else FAR
        return (g.priority, exp, g.effective_at, g.created_seq, g.id)

    def pay(amount):
        # one grant at a time, chosen by a linear scan every time
        while amount > 0:
            candidates = [g for g in grants if balances.get(g.id, 0) > 0]
            if not candidates:
                return amount
            best = candidates[0]
            for g in candidates[1:]:
                if key(g) < key(best):
                    best = g
            take = min(balances[best.id], amount)
            balances[best.id] -= take
            amount -= take
        return Decimal(0)

    def ends(g):
        options = [t for t in (g.expires_at, g.voided_at) if t is not None]
        return min(options) if options else None

    instants = sorted(
        {
            start,
            end,
            *[t for t, _ in events],
            *resets,
            *[g.effective_at for g in grants],
            *[t for g in grants for t in (g.expires_at, g.voided_at) if t],
        }
    )
    for t in instants:
        if t < start or t > end:
            continue
        # happenings at t: ends, reset, new grants (+ pay back overage, also a carried one at a reset)
        for g in grants:
            e = ends(g)
            if g.id in balances and e is not None and e <= t:
                del balances[g.id]
        new = False
        if t in resets and t > start:
            for g in grants:
                if g.id in balances:
                    balances[g.id] = min(g.max_rollover, max(balances[g.id], g.min_rollover))
            usage = Decimal(0)
            if not preserve_overage:
                overage = Decimal(0)
            new = True  # a carried overage is paid from the rolled-over balances
        for g in grants:
            e = ends(g)
            if g.effective_at == t and g.id not in balances and (e is None or t < e):
                balances[g.id] = g.amount
                new = True
        if new and overage > 0:
            overage = pay(overage)
        if t == end:
            break
        for when, amount in events:
            if when == t:
                usage += amount
                overage += pay(amount)
    return balances, usage, overage
