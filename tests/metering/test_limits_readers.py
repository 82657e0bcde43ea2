"""Rows stored before the ingest limits (core/limits.py) never break a reader: an event dated 9999, a value
that cannot be summed into money (1e30, 1e400) or data nested 900 levels deep is listed, and not counted;
every page and the rollup job keep working, for this organization and the others."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from metering import selectors, services
from metering.store import events as stored_events
from metering.tasks import rollups_advance
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

T = datetime(2025, 1, 1, 12, tzinfo=UTC)
DEEP = '{"n":' * 900 + "1" + "}" * 900


def seed_bad_rows(tenant) -> None:
    services.events_ingest(
        organization=tenant.org,
        events=[
            ("app", "good", "prompt", "c", T, '{"tokens": 5, "model": "m"}'),
            ("app", "far", "prompt", "c", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), '{"tokens": 1}'),
            ("app", "e30", "prompt", "c", T, '{"tokens": 1e30}'),
            ("app", "e400", "prompt", "c", T, '{"tokens": 1e400}'),
            ("app", "text", "prompt", "c", T, '{"tokens": "1e25"}'),
            ("app", "deep", "prompt", "c", T, DEEP),
        ],
    )


def test_bad_stored_rows_are_listed_not_counted_and_break_no_page(
    tenant_a, tenant_b, tokens_meter, tokens_meter_b, client
):
    seed_bad_rows(tenant_a)
    services.events_ingest(
        organization=tenant_b.org, events=[("app", "b1", "prompt", "c", T, '{"tokens": 7, "model": "m"}')]
    )
    rollups_advance()
    read = tenant_a.client("read")
    for url in (
        "/api/v1/meters/tokens/query",
        "/api/v1/meters/tokens/query?windowSize=DAY",
        "/api/v1/meters/tokens/query?windowSize=HOUR&from=2025-01-01T00:00:00Z&to=2025-01-02T00:00:00Z",
    ):
        r = read.get(url)
        assert r.status_code == 200, (url, r.content)
        assert [row["value"] for row in r.json()["data"]] == [5], url
    [row] = selectors.meter_query(organization=tenant_a.org, meter=tokens_meter, use_rollups=False)
    assert row.value == Decimal(5)
    listed = read.get("/api/v1/events")
    assert listed.status_code == 200
    assert sorted(item["event"]["id"] for item in listed.json()) == [
        "deep",
        "e30",
        "e400",
        "far",
        "good",
        "text",
    ]
    assert tenant_b.client("read").get("/api/v1/meters/tokens/query").json()["data"][0]["value"] == 7
    assert [i["event"]["id"] for i in tenant_b.client("read").get("/api/v1/events").json()] == ["b1"]
    assert client.login(username="acme-owner", password=PASSWORD)
    page = client.get("/console/events/")
    assert page.status_code == 200
    assert b"(nested too deep to show)" in page.content or b'{"n":{"n":' in page.content
    assert b"b1" not in page.content
    assert client.get("/console/meters/").status_code == 200


def test_data_too_deep_to_decode_reads_as_a_marker_not_an_error():
    """How deep JSON may be decoded depends on the reader's own stack (a test worker's is deeper than a web
    request's): data past that depth is listed as a marker, never a RecursionError on a page."""
    far_too_deep = '{"n":' * 5000 + "1" + "}" * 5000
    assert stored_events._json(far_too_deep) == stored_events.TOO_DEEP
    assert stored_events._json('{"tokens": 1.5}') == {"tokens": Decimal("1.5")}
