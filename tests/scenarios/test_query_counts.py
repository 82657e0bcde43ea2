"""The upcoming invoice (customer page, portal estimate, API) costs a constant number of queries."""

from __future__ import annotations

import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from invoicing.services import invoice_upcoming
from tests.scenarios.conftest import at, flat, usage


def test_upcoming_invoice_queries_are_few_and_constant_in_items(world):
    world.meter("calls")
    world.meter("tokens")
    cards = [flat("base", "10"), usage("calls", "calls", {"type": "unit", "amount": "1"})]
    world.plan("small", cards)
    world.plan(
        "big", [*cards, flat("seats", "5"), usage("tokens", "tokens", {"type": "unit", "amount": "0.1"})]
    )
    one, two = world.customer("one"), world.customer("two")
    world.subscribe(one, "small", "2026-10-01")
    world.subscribe(two, "big", "2026-10-01")
    world.use(one, "calls", "2026-10-03", 2)
    world.use(two, "calls", "2026-10-03", 2)
    world.use(two, "tokens", "2026-10-03", 9)
    with time_machine.travel(at("2026-10-20"), tick=False):
        invoice_upcoming(organization=world.org, customer=one)  # the first read drains the ingest inbox
    counts = []
    for cust in (one, two):
        with time_machine.travel(at("2026-10-20"), tick=False), CaptureQueriesContext(connection) as ctx:
            invoice_upcoming(organization=world.org, customer=cust)
        counts.append(len(ctx.captured_queries))
    # the subscription items with their current periods (one read), ledger, tax rates, the meters with
    # their features and the customer's subjects, and the usage: watermarks, one statement for every
    # window of every meter, watermarks again
    assert counts[0] <= 7, counts
    assert counts[1] == counts[0], counts  # a second meter and more items cost nothing more
