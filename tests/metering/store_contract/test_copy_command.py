"""`manage.py events_copy_clickhouse`: an organization's history copied from PostgreSQL answers every meter
the same on ClickHouse, per day (checked by the command and again here through the normal selectors); a
second run copies nothing twice; a day that differs makes the command fail. Tenant B is never copied."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from metering import selectors, services
from metering.clickhouse import rollups, schema
from metering.clickhouse.schema import client

pytestmark = pytest.mark.django_db
T0 = datetime(2025, 5, 30, 22, tzinfo=UTC)


def _history(org, prefix: str, scale: int) -> None:
    services.events_ingest(
        organization=org,
        events=[
            (
                "app",
                f"{prefix}{i}",
                "prompt",
                f"s{i % 3}",
                T0 + timedelta(minutes=37 * i),
                json.dumps({"tokens": scale * (i + 1), "model": ["gpt", "llama"][i % 2]}),
            )
            for i in range(120)
        ],
    )


@pytest.fixture
def pg_history(settings, chdb_url, tenant_a, tenant_b):
    settings.METERING_STORE = "postgres"
    settings.CLICKHOUSE_URL = chdb_url
    schema.truncate(client())
    rollups._seen_ready.clear()
    for t in (tenant_a, tenant_b):
        for slug, agg, path in (
            ("tokens", "SUM", "$.tokens"),
            ("calls", "COUNT", None),
            ("last", "LATEST", "$.tokens"),
        ):
            services.meter_create(
                organization=t.org, slug=slug, event_type="prompt", aggregation=agg, value_property=path
            )
    _history(tenant_a.org, "a", 1)
    _history(tenant_b.org, "a", 1000)  # the same ids
    services.rollups_advance()
    return settings


def _daily(org, slug):
    meter = selectors.meter_get(organization=org, id_or_slug=slug)
    return [
        (r.window_start, r.value)
        for r in selectors.meter_query(organization=org, meter=meter, window_size="DAY")
    ]


def test_copy_then_verify_then_switch(pg_history, tenant_a, tenant_b):
    before = {slug: _daily(tenant_a.org, slug) for slug in ("tokens", "calls", "last")}
    # 120 events 37 minutes apart from May 30 22:00 to June 2 23:23
    assert [d.day for d, _v in before["tokens"]] == [30, 31, 1, 2]
    assert sum(v for _d, v in before["tokens"]) == Decimal(120 * 121 // 2)
    out = StringIO()
    call_command("events_copy_clickhouse", organization="acme", batch=50, stdout=out)
    text = out.getvalue()
    assert "50 / 120 events" in text and "100 / 120 events" in text and "120 / 120 events (100.0%)" in text
    assert "copied: 120 read, 120 inserted, 0 already there" in text
    assert "tokens: 4 days, all match" in text and "verified: 3 meters, every day matches" in text

    again = StringIO()
    call_command("events_copy_clickhouse", organization=tenant_a.org.id, stdout=again)
    assert "copied: 120 read, 0 inserted, 120 already there" in again.getvalue()

    pg_history.METERING_STORE = "clickhouse"
    assert {slug: _daily(tenant_a.org, slug) for slug in before} == before
    assert (
        selectors.meter_subjects(
            organization=tenant_b.org,
            meter=selectors.meter_get(organization=tenant_b.org, id_or_slug="tokens"),
        )
        == []
    )  # B was not copied
    log = selectors.events_list(organization=tenant_a.org, limit=2)
    assert [e.event["id"] for e in log] == ["a119", "a118"]  # ingestion order kept


def test_a_day_that_differs_fails_the_command(pg_history, tenant_a):
    call_command("events_copy_clickhouse", organization="acme", stdout=StringIO())
    pg_history.METERING_STORE = "clickhouse"
    services.events_ingest(
        organization=tenant_a.org,
        events=[("app", "extra", "prompt", "s1", T0 + timedelta(days=1), json.dumps({"tokens": 5}))],
    )
    out = StringIO()
    with pytest.raises(CommandError, match="meter-days differ"):
        call_command("events_copy_clickhouse", organization="acme", verify_only=True, stdout=out)
    text = out.getvalue()
    assert "MISMATCH tokens 2025-05-31" in text and "MISMATCH calls 2025-05-31" in text
    assert "last: 4 days, all match" in text  # the extra event is not the latest of its day


def test_an_unknown_organization_is_refused(pg_history):
    with pytest.raises(CommandError, match="No organization"):
        call_command("events_copy_clickhouse", organization="nope", stdout=StringIO())
