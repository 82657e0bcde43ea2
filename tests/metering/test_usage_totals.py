"""`meter_usage_totals` (the bulk total billing's entitlements use) equals `meter_query` for random events,
spans, subjects and filters, across rollups, the raw tail and late events, in a constant number of
statements; tenant B's events never count for A."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.errors import NotFound, ValidationFailed
from metering import selectors, services
from tests.factories import MeterFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, tzinfo=UTC)
SUBJECTS = ["s1", "s2", "s3", "s4"]
MODELS = ["a", "b", "c"]


def meters(org):
    return [
        MeterFactory(
            organization=org,
            slug="tok",
            event_type="prompt",
            aggregation="SUM",
            value_property="$.tokens",
            group_by={"model": "$.model", "kind": "$.kind"},
        ),
        MeterFactory(
            organization=org,
            slug="req",
            event_type="request",
            aggregation="COUNT",
            group_by={"model": "$.model"},
        ),
        MeterFactory(
            organization=org, slug="peak", event_type="prompt", aggregation="MAX", value_property="$.tokens"
        ),
    ]


def events(rng, n, prefix):
    out = []
    for i in range(n):
        t = T0 + timedelta(minutes=rng.randrange(0, 3 * 24 * 60), seconds=rng.randrange(60))
        etype = rng.choice(["prompt", "request"])
        data = {"model": rng.choice(MODELS), "kind": rng.choice(["in", "out"])}
        if etype == "prompt":
            data["tokens"] = rng.choice([rng.randrange(1, 500), "12.5", "x"])  # "x": not counted
        out.append(("src", f"{prefix}-{i}", etype, rng.choice(SUBJECTS), t, json.dumps(data)))
    return out


def random_request(rng, ms):
    meter = rng.choice(ms)
    a = T0 + timedelta(minutes=rng.randrange(-60, 3 * 24 * 60))
    b = a + timedelta(minutes=rng.randrange(1, 3 * 24 * 60))
    subjects = rng.choice([None, [], rng.sample(SUBJECTS, rng.randrange(1, 5))])
    filters: dict = {}
    if meter.group_by and rng.random() < 0.5:
        filters["model"] = rng.choice([rng.choice(MODELS), rng.sample(MODELS, 2)])
    if "kind" in meter.group_by and rng.random() < 0.3:
        filters["kind"] = "out"
    return (meter, subjects, rng.choice([a, None]) if rng.random() < 0.1 else a, b, filters)


def expected(org, req):
    meter, subjects, a, b, filters = req
    if subjects is not None and not subjects:
        return Decimal(0)
    rows = selectors.meter_query(
        organization=org,
        meter=meter,
        from_=a,
        to=b,
        subjects=subjects,
        filter_group_by={k: [v] if isinstance(v, str) else v for k, v in filters.items()},
    )
    return sum((r.value for r in rows), Decimal(0))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bulk_totals_equal_meter_query(tenant_a, tenant_b, seed):
    rng = random.Random(seed)
    ms = meters(tenant_a.org)
    meters(tenant_b.org)
    services.events_ingest(organization=tenant_a.org, events=events(rng, 300, "a"))
    services.events_ingest(organization=tenant_b.org, events=events(rng, 300, "a"))  # same ids, other tenant
    services.rollups_advance(organization_id=tenant_a.org.id)
    # above the watermark: fresh events and late ones (old event times, new seqs)
    services.events_ingest(organization=tenant_a.org, events=events(rng, 60, "fresh"))
    services.events_ingest(organization=tenant_b.org, events=events(rng, 60, "fresh"))
    requests = [random_request(rng, ms) for _ in range(40)]
    bulk = selectors.meter_usage_totals(organization=tenant_a.org, requests=requests)
    assert bulk == [expected(tenant_a.org, r) for r in requests]
    assert any(v > 0 for v in bulk)
    # by slug too
    by_slug = [(m.slug, *rest) for m, *rest in requests]
    assert selectors.meter_usage_totals(organization=tenant_a.org, requests=by_slug) == bulk


def test_constant_statements_and_tenant_isolation(tenant_a, tenant_b):
    rng = random.Random(7)
    ms = meters(tenant_a.org)[:2]  # SUM and COUNT: the bulk path
    ms_b = meters(tenant_b.org)
    services.events_ingest(organization=tenant_a.org, events=events(rng, 200, "a"))
    services.rollups_advance(organization_id=tenant_a.org.id)
    services.events_ingest(organization=tenant_a.org, events=events(rng, 20, "late"))
    counts = []
    for n in (2, 30):
        reqs = [random_request(rng, ms) for _ in range(n)]
        with CaptureQueriesContext(connection) as ctx:
            selectors.meter_usage_totals(organization=tenant_a.org, requests=reqs)
        counts.append(len(ctx.captured_queries))
    assert counts == [3, 3]  # watermarks (with the inbox probe), the UNION ALL, watermarks again
    # B has no events: every total is 0, whatever A stored
    reqs = [(ms_b[0], None, T0 - timedelta(days=1), T0 + timedelta(days=5), None)]
    assert selectors.meter_usage_totals(organization=tenant_b.org, requests=reqs) == [Decimal(0)]
    with pytest.raises(NotFound):  # A's meter object through B's organization
        selectors.meter_usage_totals(
            organization=tenant_b.org, requests=[(ms[0], None, T0, T0 + timedelta(1), None)]
        )
    with pytest.raises(NotFound):
        selectors.meter_usage_totals(
            organization=tenant_a.org, requests=[("nope", None, T0, T0 + timedelta(1), None)]
        )
    with pytest.raises(ValidationFailed):
        selectors.meter_usage_totals(
            organization=tenant_a.org, requests=[(ms[0], None, T0, T0 + timedelta(1), {"nope": "x"})]
        )
