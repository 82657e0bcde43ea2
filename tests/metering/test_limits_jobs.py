"""Tenant fault isolation in metering's background jobs (core/jobs.py): a meter or an inbox that fails for
one organization is recorded (console, /healthz), quarantined, and every other meter and organization goes
on; an operator retries after a fix."""

from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from core.models import JobFailure
from metering import drain, services, store
from metering.models import Meter
from metering.tasks import rollups_advance
from tests.conftest import PASSWORD
from tests.factories import MeterFactory

pytestmark = pytest.mark.django_db

T = datetime(2025, 1, 1, 12, tzinfo=UTC)


def ingest(tenant, *ids: str) -> None:
    services.events_ingest(
        organization=tenant.org,
        events=[("app", i, "prompt", "c", T, '{"tokens": 2, "model": "m", "type": "in"}') for i in ids],
    )


def rolled(meter) -> int:
    return store.watermark_get(meter_id=meter.id)


@pytest.fixture
def poison(tenant_a):
    """A meter saved before validation with a group-by path the rollup cannot compile."""
    meter = MeterFactory(organization=tenant_a.org, slug="poison", event_type="prompt", aggregation="COUNT")
    Meter.objects.filter(id=meter.id).update(group_by={"model": "not a path"})
    return meter


def test_one_poison_meter_does_not_stop_any_other_rollup(
    tenant_a, tenant_b, tokens_meter, tokens_meter_b, poison, client
):
    ingest(tenant_a, "a1", "a2")
    ingest(tenant_b, "b1")
    rollups_advance()
    assert rolled(tokens_meter) > 0 and rolled(tokens_meter_b) > 0
    assert rolled(poison) == 0
    failure = JobFailure.objects.get()
    assert (failure.job, failure.object_type, failure.object_id, failure.organization_id) == (
        "rollups_advance",
        "meter",
        poison.id,
        tenant_a.org.id,
    )
    assert "JsonPathError" in failure.error and failure.attempts == 1 and failure.resolved_at is None

    # quarantined: later runs skip it (no new attempt) and keep advancing the others
    ingest(tenant_b, "b2")
    before = rolled(tokens_meter_b)
    rollups_advance()
    assert rolled(tokens_meter_b) > before
    assert JobFailure.objects.get().attempts == 1

    health = client.get("/healthz").json()
    assert health["jobs"] == {"status": "degraded", "openFailures": 1, "byJob": {"rollups_advance": 1}}

    # the console shows it to A's members only
    assert client.login(username="acme-owner", password=PASSWORD)
    page = client.get("/console/")
    assert b"rollups_advance" in page.content and poison.id.encode() in page.content
    client.logout()
    assert client.login(username="globex-owner", password=PASSWORD)
    assert b"rollups_advance" not in client.get("/console/").content
    assert client.post("/console/jobs/retry/").status_code == 302
    assert JobFailure.objects.get().resolved_at is None  # B cannot retry A's failures
    client.logout()

    # after the fix, an operator retries; the next run rolls the meter up
    Meter.objects.filter(id=poison.id).update(group_by={"model": "$.model"})
    out = StringIO()
    call_command("job_failures", "--retry", stdout=out)
    assert "rollups_advance meter:" in out.getvalue() and "1 failures put back in line" in out.getvalue()
    rollups_advance()
    assert rolled(poison) == rolled(tokens_meter_b)
    assert not JobFailure.objects.filter(resolved_at__isnull=True).exists()
    assert client.get("/healthz").json()["jobs"]["status"] == "ok"


def test_console_retry_is_for_admins_of_the_organization(tenant_a, tenant_b, poison, client):
    ingest(tenant_a, "a1")
    rollups_advance()
    assert JobFailure.objects.filter(resolved_at__isnull=True).count() == 1
    assert client.login(username="acme-owner", password=PASSWORD)
    assert client.post("/console/jobs/retry/").status_code == 302
    assert JobFailure.objects.filter(resolved_at__isnull=True).count() == 0
    rollups_advance()  # still broken: quarantined again, with a second attempt counted
    assert JobFailure.objects.get().attempts == 2


def test_a_meter_saved_with_event_from_before_year_one_is_repaired_by_the_migration(
    tenant_a, tenant_b, tokens_meter, tokens_meter_b
):
    """What the unvalidated API once saved (`eventFrom: 0001-01-01T00:00:00+15:00`) cannot be read back at
    all; the metering migration moves such values into range, after which everything reads again."""
    from importlib import import_module

    migration = import_module("metering.migrations.0004_meter_event_from_in_range")
    broken = MeterFactory(organization=tenant_a.org, slug="old", event_type="prompt", aggregation="COUNT")
    far = MeterFactory(organization=tenant_a.org, slug="far", event_type="prompt", aggregation="COUNT")
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE metering_meter SET event_from = '0001-01-01 00:00:00+15:00'::timestamptz WHERE id = %s",
            [broken.id],
        )
        cur.execute(
            "UPDATE metering_meter SET event_from = '9999-12-31 23:59:59+00'::timestamptz WHERE id = %s",
            [far.id],
        )
        cur.execute(migration.SQL)
    ingest(tenant_a, "a1")
    ingest(tenant_b, "b1")
    rollups_advance()
    r = tenant_a.client("read").get("/api/v1/meters")
    assert r.status_code == 200
    assert {m["slug"]: m["eventFrom"] for m in r.json()} == {
        "tokens": None,
        "old": None,
        "far": "2100-01-01T00:00:00Z",
    }
    assert tenant_a.client("read").get("/api/v1/meters/old/query").json()["data"][0]["value"] == 1
    assert tenant_a.client("read").get("/api/v1/meters/far/query").json()["data"] == []
    assert [m["slug"] for m in tenant_b.client("read").get("/api/v1/meters").json()] == ["tokens"]
    assert not JobFailure.objects.exists()


def test_an_organization_whose_drain_fails_is_skipped_and_the_others_are_stored(
    tenant_a, tenant_b, tokens_meter, tokens_meter_b, monkeypatch
):
    body = (
        b'[{"id":"x","source":"app","specversion":"1.0","type":"prompt","subject":"c","data":{"tokens":1}}]'
    )
    for tenant in (tenant_a, tenant_b):
        store.inbox_append(organization_id=tenant.org.id, body=body, event_count=1, received_at=T)
    real = store.inbox_drain

    def failing_for_a(*, organization_id, **kwargs):
        if organization_id == tenant_a.org.id:
            raise RuntimeError("disk on fire")
        return real(organization_id=organization_id, **kwargs)

    monkeypatch.setattr(store, "inbox_drain", failing_for_a)
    drain.events_drain_all()
    assert store.inbox_pending() == [(tenant_a.org.id, 1, 1)]
    failure = JobFailure.objects.get()
    assert (failure.job, failure.object_id, failure.error) == (
        "events_drain",
        tenant_a.org.id,
        "RuntimeError: disk on fire",
    )
    monkeypatch.setattr(store, "inbox_drain", real)
    drain.events_drain_all()
    assert store.inbox_pending() == [(tenant_a.org.id, 1, 1)]  # quarantined until retried
    call_command("job_failures", "--retry", "--job", "events_drain", stdout=StringIO())
    drain.events_drain_all()
    assert store.inbox_pending() == []


def test_after_its_back_off_a_failed_meter_is_tried_again_and_a_success_resolves_it(
    tenant_a, tenant_b, tokens_meter_b, poison
):
    from datetime import timedelta

    from core import jobs

    ingest(tenant_a, "a1")
    ingest(tenant_b, "b1")
    rollups_advance()
    failure = JobFailure.objects.get()
    assert jobs.backoff(1) == timedelta(minutes=1) and jobs.backoff(3) == timedelta(minutes=4)
    assert jobs.backoff(20) == timedelta(hours=1)
    # a transient cause went away; once the back-off is over the next run tries it without an operator
    Meter.objects.filter(id=poison.id).update(group_by={"model": "$.model"})
    JobFailure.objects.filter(id=failure.id).update(
        last_failed_at=failure.last_failed_at - timedelta(seconds=61)
    )
    rollups_advance()
    assert rolled(poison) == rolled(tokens_meter_b) > 0
    failure.refresh_from_db()
    assert failure.resolved_at is not None and failure.attempts == 1
