"""Console pages: meters list (last-24h usage), create/edit form with inline errors, events with reasons.
Query budgets are constant in the number of rows; tenant B's data never shows for tenant A."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from core import demo as core_demo
from metering.models import Event, Meter
from tests.factories import MeterFactory
from tests.metering.conftest import ce, post_events

pytestmark = pytest.mark.django_db


def console(tenant) -> Client:
    c = Client()
    c.force_login(tenant.user)
    return c


def now_iso(minutes_ago: int = 5) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")


def make_meters(tenant, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        MeterFactory(
            organization=tenant.org,
            slug=f"m{i}",
            event_type="prompt",
            aggregation=["SUM", "COUNT", "MAX", "UNIQUE_COUNT"][i % 4],
            value_property=None if i % 4 == 1 else "$.tokens",
            group_by={"model": "$.model"},
        )


def test_meter_list_shows_last_24h_usage_with_constant_queries(
    tenant_a, tenant_b, django_assert_max_num_queries
):
    make_meters(tenant_a, 2)
    MeterFactory(organization=tenant_b.org, slug="secret_b", event_type="prompt", aggregation="COUNT")
    post_events(
        tenant_a.client("ingest"),
        [ce(f"e{i}", time=now_iso(), data={"tokens": 10, "model": "x"}) for i in range(3)],
    )
    post_events(tenant_a.client("ingest"), [ce("old", time=now_iso(60 * 30), data={"tokens": 1000})])
    post_events(tenant_b.client("ingest"), [ce("b1", time=now_iso(), data={"tokens": 7777})])
    c = console(tenant_a)
    with django_assert_max_num_queries(12) as small:
        r = c.get("/console/meters/")
    html = r.content.decode()
    assert r.status_code == 200
    assert 'id="meter-m0"' in html and "secret_b" not in html and "7777" not in html
    assert '<td class="num usage">30</td>' in html  # SUM of the last 24 h only
    assert '<td class="num usage">3</td>' in html  # COUNT
    make_meters(tenant_a, 8, start=2)  # 10 meters now
    with CaptureQueriesContext(connection) as big:
        assert c.get("/console/meters/").status_code == 200
    assert len(big.captured_queries) <= len(small.captured_queries)  # first visit also writes the session
    assert console(tenant_b).get("/console/meters/").content.decode().count('id="meter-') == 1


def test_create_meter_with_inline_errors_then_success(tenant_a, tenant_b):
    c = console(tenant_a)
    assert c.get("/console/meters/new/").status_code == 200
    r = c.post(
        "/console/meters/new/",
        {
            "slug": "Bad Slug",
            "event_type": "",
            "aggregation": "SUM",
            "value_property": "tokens",
            "group_by": "model",
        },
        HTTP_HX_REQUEST="true",
    )
    assert r.status_code == 200  # htmx 2 swaps only 2xx answers; without htmx the same errors are a 400
    html = r.content.decode()
    assert (
        'id="error-slug"' in html and 'id="error-event_type"' in html and 'id="error-value_property"' in html
    )
    assert 'id="error-group_by"' in html
    assert "<html" not in html  # the htmx partial only
    no_js = c.post("/console/meters/new/", {"slug": "", "event_type": "x", "aggregation": "COUNT"})
    assert no_js.status_code == 400 and 'id="error-slug"' in no_js.content.decode()
    r = c.post(
        "/console/meters/new/",
        {
            "slug": "llm",
            "name": "LLM",
            "event_type": "prompt",
            "aggregation": "SUM",
            "value_property": "$.tokens",
            "group_by": "model=$.model\ntype=$.type",
        },
        HTTP_HX_REQUEST="true",
    )
    assert r.status_code == 204 and r["HX-Redirect"] == "/console/meters/"
    m = Meter.objects.get(organization=tenant_a.org, slug="llm")
    assert m.group_by == {"model": "$.model", "type": "$.type"}
    # editing keeps the existing dimensions (removing one is refused) and may add new ones
    r = c.post(f"/console/meters/{m.id}/edit/", {"name": "Tokens", "group_by": "model=$.model"})
    assert (
        r.status_code == 400
        and "Existing dimensions cannot be removed or changed (type)" in r.content.decode()
    )
    r = c.post(
        f"/console/meters/{m.id}/edit/",
        {"name": "Tokens", "group_by": "model=$.model\ntype=$.type\nregion=$.region"},
    )
    assert r.status_code == 302
    m.refresh_from_db()
    assert (m.name, m.group_by) == ("Tokens", {"model": "$.model", "type": "$.type", "region": "$.region"})
    assert console(tenant_b).get(f"/console/meters/{m.id}/edit/").status_code in (404, 400)


def test_events_page_shows_reasons_with_constant_queries(
    tenant_a, tenant_b, tokens_meter, django_assert_max_num_queries
):
    post_events(
        tenant_a.client("ingest"),
        [
            ce("ok", data={"tokens": 1, "model": "m"}),
            ce("nonum", data={"tokens": "lots"}),
            ce("nometer", type_="unknown", data={}),
        ],
    )
    post_events(tenant_a.client("ingest"), [ce("ok", data={"tokens": 2})])  # conflicting duplicate
    post_events(tenant_b.client("ingest"), [ce("b-only", data={"tokens": 1})])
    c = console(tenant_a)
    with django_assert_max_num_queries(12) as first:
        r = c.get("/console/events/")
    html = r.content.decode()
    assert "b-only" not in html
    assert html.count("badge red") == 3
    assert "matched no meter" in html and "not a number" in html and "duplicate_conflict" in html
    post_events(tenant_a.client("ingest"), [ce(f"more{i}", data={"tokens": i}) for i in range(40)])
    with CaptureQueriesContext(connection) as second:
        r = c.get("/console/events/?uncounted=1", HTTP_HX_REQUEST="true")
    assert len(second.captured_queries) <= len(first.captured_queries)
    assert r.content.decode().count("badge red") == 3


def test_demo_loader_is_registered_and_idempotent(tenant_a):
    from metering.demo import demo_load

    assert demo_load in core_demo.DEMO_LOADERS
    demo_load(tenant_a.org)
    counts = (
        Meter.objects.filter(organization=tenant_a.org).count(),
        Event.objects.filter(organization=tenant_a.org).count(),
    )
    demo_load(tenant_a.org)
    assert counts[0] == 2 and counts[1] > 0
    assert (
        Meter.objects.filter(organization=tenant_a.org).count(),
        Event.objects.filter(organization=tenant_a.org).count(),
    ) == counts
