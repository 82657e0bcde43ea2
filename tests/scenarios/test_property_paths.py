"""Random schedules over three periods run through the batched run in one organization and the
one-invoice-at-a-time run in another, with the same operations: the invoices must be the same, and the
sum billed must equal the pricing of the whole usage (nothing billed twice, nothing lost)."""

from __future__ import annotations

import random

import pytest

from tests.scenarios.conftest import D, World, flat, usage

UNIT = {"type": "unit", "amount": "0.5"}
DAYS = ["2026-10-03", "2026-10-09", "2026-10-17", "2026-10-26", "2026-11-04", "2026-11-12", "2026-11-23",
        "2026-12-02", "2026-12-15", "2026-12-28"]  # fmt: skip


def _schedule(seed: int) -> list[tuple]:
    rnd = random.Random(seed)
    ops: list[tuple] = []
    plan = "small"
    for day in DAYS:
        roll = rnd.random()
        if roll < 0.25:
            plan = "large" if plan == "small" else "small"
            ops.append(("change", plan, day))
        elif roll < 0.35:
            ops.append(("credit", str(rnd.randint(1, 20)), day))
        ops.append(("use", rnd.randint(1, 40), day))
        if rnd.random() < 0.3:  # a late event for an earlier day, received now
            ops.append(("late", rnd.randint(1, 9), DAYS[0], day))
        if rnd.random() < 0.4:
            ops.append(("clock", day))
    ops.append(("clock", "2027-01-01 01:00"))
    return ops


def _play(world: World, ops: list[tuple]) -> tuple[list, int]:
    world.meter("calls")
    world.plan("small", [flat("base", "31"), usage("calls", "calls", UNIT)])
    world.plan("large", [flat("base", "62"), usage("calls", "calls", UNIT)])
    cust = world.customer("acme")
    sub = world.subscribe(cust, "small", "2026-10-01")
    used = 0
    for op in ops:
        if op[0] == "change":
            sub = world.change(sub, op[1], op[2])
        elif op[0] == "credit":
            world.credit(cust, op[1], op[2])
        elif op[0] == "use":
            world.use(cust, "calls", op[2] + " 12:00", op[1])
            used += op[1]
        elif op[0] == "late":
            world.use_late(cust, "calls", event_time=op[2] + " 06:00", received=op[3] + " 13:00", value=op[1])
            used += op[1]
        elif op[0] == "clock":
            world.clock(op[1] if " " in op[1] else op[1] + " 01:00")
    invoices = [
        (i.kind, i.period_start, i.period_end, i.amount, i.credits_total, i.total)
        for i in world.invoices(cust)
    ]
    return invoices, used


@pytest.mark.parametrize("seed", range(4))
def test_batch_and_single_paths_agree_and_bill_usage_exactly_once(tenant_a, tenant_b, seed):
    ops = _schedule(seed)
    batch, used = _play(World(tenant_a, "batch"), ops)
    single, _ = _play(World(tenant_b, "single"), ops)
    assert batch == single
    # usage lines over all invoices price the whole usage once: 0.5 per call
    from invoicing.models import InvoiceLine

    billed_usage = sum(
        (
            x.amount
            for x in InvoiceLine.objects.filter(organization=tenant_a.org, type__in=("usage", "adjustment"))
        ),
        D(0),
    )
    assert billed_usage == D(used) * D("0.5")
