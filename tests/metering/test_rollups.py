"""Rollups: crash mid-run then rerun (no double counting), reruns are no-ops, late events caught by
ingestion order, group-by change rebuilds; concurrent duplicate ingest counted once."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from core.jobs import job_failures_retry
from core.models import JobFailure
from metering import services, store
from metering.models import Event, Rollup, RollupState
from metering.selectors import meter_query
from metering.store import rollups as store_rollups  # the module whose private step is made to fail
from metering.tasks import rollups_advance
from tests.metering.conftest import ce, post_events

pytestmark = pytest.mark.django_db


def total(org, meter, **kw) -> Decimal:
    rows = meter_query(organization=org, meter=meter, **kw)
    return sum((r.value for r in rows), Decimal(0))


def send(tenant, n: int, prefix: str, tokens: int = 10, time: str = "2025-01-01T12:00:00Z"):
    evs = [
        ce(f"{prefix}{i}", time=time, data={"tokens": tokens, "model": "m", "type": "input"})
        for i in range(n)
    ]
    assert post_events(tenant.client("ingest"), evs).status_code == 204


def test_crash_mid_run_is_redone_without_double_counting(
    tenant_a, tenant_b, tokens_meter, tokens_meter_b, monkeypatch
):
    send(tenant_a, 40, "a")
    send(tenant_b, 3, "b", tokens=1)
    assert total(tenant_a.org, tokens_meter) == 400

    def boom(*args, **kwargs):
        raise RuntimeError("worker killed after the upsert, before the watermark moved")

    monkeypatch.setattr(store_rollups, "_watermark_set", boom)
    assert services.rollups_advance(organization_id=tenant_a.org.id) == {}  # the failure is recorded
    assert not Rollup.objects.exists()  # the upsert was rolled back with the failed run
    assert store.watermark_get(meter_id=tokens_meter.id) == 0
    assert JobFailure.objects.get().object_id == tokens_meter.id  # quarantined until retried
    monkeypatch.undo()
    assert job_failures_retry() == 1

    rollups_advance()  # the Celery task body (all organizations)
    rollups_advance()  # and again: nothing new, nothing changes
    r = Rollup.objects.get(meter=tokens_meter)
    assert (r.event_count, r.value_sum) == (40, Decimal(400))
    assert total(tenant_a.org, tokens_meter) == 400
    assert total(tenant_a.org, tokens_meter, use_rollups=False) == 400
    assert total(tenant_b.org, tokens_meter_b) == 3
    assert RollupState.objects.get(meter=tokens_meter).watermark == Event.objects.order_by("-seq").first().seq


def test_chunked_runs_and_late_events(tenant_a, tokens_meter):
    send(tenant_a, 50, "a")
    spec = store.MeterSpec.of(tokens_meter)
    horizon = store.safe_horizon()
    low, high = store.rollup_advance(spec=spec, horizon=horizon, chunk=7)
    assert high - low == 7
    assert total(tenant_a.org, tokens_meter) == 500  # 7 from rollups + 43 raw
    services.rollups_advance()
    send(tenant_a, 5, "late", tokens=1, time="2024-06-01T00:00:00Z")  # far in the past
    assert total(tenant_a.org, tokens_meter) == 505
    services.rollups_advance()
    assert total(tenant_a.org, tokens_meter) == 505
    assert Rollup.objects.filter(meter=tokens_meter).count() == 2  # two event-time hours


def test_group_by_change_rebuilds_rollups(tenant_a, tokens_meter):
    send(tenant_a, 5, "a")
    services.rollups_advance()
    services.meter_update(organization=tenant_a.org, id_or_slug="tokens", group_by={"model": "$.model"})
    assert not Rollup.objects.filter(meter=tokens_meter).exists()
    tokens_meter.refresh_from_db()
    assert total(tenant_a.org, tokens_meter, group_by=["model"]) == 50
    services.rollups_advance()
    assert total(tenant_a.org, tokens_meter, group_by=["model"]) == 50


def test_query_count_is_constant(tenant_a, tokens_meter, django_assert_max_num_queries):
    send(tenant_a, 40, "a")
    services.rollups_advance()
    send(tenant_a, 40, "b")
    # watermark read (with the inbox probe), the query (one statement), watermark re-read
    with django_assert_max_num_queries(3):
        meter_query(organization=tenant_a.org, meter=tokens_meter, window_size="DAY", group_by=["model"])


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_batches_are_counted_once(tenant_a, tenant_b, tokens_meter, tokens_meter_b):
    batches = [[ce(f"k{i}-{j}", data={"tokens": 1, "model": "m"}) for j in range(50)] for i in range(4)]
    small = [[ce(f"s{i}", data={"tokens": 1, "model": "m"})] for i in range(10)]
    work = (batches + small) * 2  # every batch sent twice
    key = tenant_a.keys["ingest"]
    errors: list = []
    barrier = threading.Barrier(6)

    def worker(idx: int):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        try:
            barrier.wait()
            for batch in work[idx::6]:
                r = post_events(client, batch)
                if r.status_code != 204:
                    errors.append(r.content)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    post_events(tenant_b.client("ingest"), [ce("k0-0", data={"tokens": 7, "model": "m"})])
    assert total(tenant_a.org, tokens_meter) == 210
    services.rollups_advance()
    assert total(tenant_a.org, tokens_meter) == 210
    assert total(tenant_b.org, tokens_meter_b) == 7
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM metering_event WHERE organization_id = %s", [tenant_a.org.id])
        assert cur.fetchone()[0] == 210
