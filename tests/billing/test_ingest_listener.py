"""Metering's ingest listener drives billing: `POST /api/v1/events` evaluates threshold rules and drops the
balance snapshots a late event invalidates, with no snapshot refresh run by hand. Real metering and catalog;
Celery eager; on_commit callbacks executed (the listener runs after the ingest transaction commits)."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing import services, tasks
from billing.entitlements.lifecycle import entitlement_create
from billing.entitlements.values import entitlement_value
from billing.models import BalanceSnapshot, NotificationEvent
from catalog import services as catalog_services
from config.celery import app as celery_app
from metering import hooks
from metering import services as metering_services

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def eager_celery():
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = False


def setup_tenant(tenant, *, measure_from=None, rule=True):
    org = tenant.org
    metering_services.meter_create(
        organization=org,
        slug="tokens_total",
        event_type="prompt",
        aggregation="SUM",
        value_property="$.tokens",
    )
    catalog_services.feature_create(organization=org, key="tokens", name="Tokens", meter_slug="tokens_total")
    # the same customer key and subject key in both tenants, to catch any lookup across organizations
    cust = services.customer_create(organization=org, name="Acme", key="acme", subject_keys=["acme-subj"])
    now = timezone.now()
    ent = entitlement_create(
        organization=org,
        customer=cust,
        feature_key="tokens",
        type="metered",
        usage_period_interval="MONTH",
        usage_period_anchor=measure_from or now - timedelta(days=3),
        measure_usage_from=measure_from,
        issue_after_reset=Decimal(100),
    )
    if rule:
        services.notification_rule_create(
            organization=org,
            name="full",
            feature_key="tokens",
            thresholds=[{"type": "PERCENT", "value": 100}],
        )
    return ent


_seq = iter(range(10**6))


def post(tenant, tokens, *, time=None, subject="acme-subj", capture):
    ev = {
        "id": f"ev-{next(_seq)}",
        "source": "app",
        "specversion": "1.0",
        "type": "prompt",
        "subject": subject,
        "data": {"tokens": tokens},
    }
    if time is not None:
        ev["time"] = time.isoformat()
    with capture(execute=True):
        r = tenant.client("ingest").post(
            "/api/v1/events", data=json.dumps(ev), content_type="application/cloudevents+json"
        )
    assert r.status_code == 204
    return r


def thresholds(tenant):
    return list(
        NotificationEvent.objects.filter(organization=tenant.org, type="entitlements.balance.threshold")
    )


def test_listener_registered_once():
    assert hooks.ingest_listeners().count(tasks.usage_landed_listener) == 1


def test_ingest_crossing_100_percent_notifies_once(tenant_a, tenant_b, django_capture_on_commit_callbacks):
    cap = django_capture_on_commit_callbacks
    setup_tenant(tenant_a)
    setup_tenant(tenant_b)
    post(tenant_a, 60, capture=cap)
    assert thresholds(tenant_a) == []
    post(tenant_a, 45, capture=cap)  # 105 of 100
    events = thresholds(tenant_a)
    assert len(events) == 1
    assert events[0].payload["threshold"] == {"type": "PERCENT", "value": "100"}
    assert events[0].payload["value"]["usage"] == 105
    post(tenant_a, 10, capture=cap)  # still over: deduplicated per period
    assert len(thresholds(tenant_a)) == 1
    # tenant B: the same subject key and far over its limit; A's notifications are untouched
    before = {e.id for e in thresholds(tenant_a)}
    post(tenant_b, 500, capture=cap)
    assert {e.id for e in thresholds(tenant_a)} == before
    b_events = thresholds(tenant_b)
    assert len(b_events) == 1 and b_events[0].payload["value"]["usage"] == 500
    assert not NotificationEvent.objects.filter(organization=tenant_b.org, id__in=before).exists()


def test_tenant_b_ingest_never_notifies_a(tenant_a, tenant_b, django_capture_on_commit_callbacks):
    setup_tenant(tenant_a)
    setup_tenant(tenant_b, rule=False)
    post(tenant_b, 1000, capture=django_capture_on_commit_callbacks)
    assert NotificationEvent.objects.count() == 0


def test_late_event_drops_later_snapshots(tenant_a, django_capture_on_commit_callbacks):
    now = timezone.now()
    start = now - timedelta(days=50)
    ent = setup_tenant(tenant_a, measure_from=start, rule=False)
    metering_services.events_ingest(
        organization=tenant_a.org,
        events=[("app", "early", "prompt", "acme-subj", start + timedelta(days=2), '{"tokens": 30}')],
    )
    metering_services.rollups_advance(organization_id=tenant_a.org.id)
    for days in (40, 20, 0):
        services.entitlement_snapshot_refresh(
            organization=tenant_a.org, entitlement_id=ent.id, now=now - timedelta(days=days)
        )
    assert BalanceSnapshot.objects.filter(entitlement=ent).count() == 3
    late = start + timedelta(days=35)  # second usage period: after the snapshots at start+10d, start+30d
    post(tenant_a, 50, time=late, capture=django_capture_on_commit_callbacks)
    kept = sorted(BalanceSnapshot.objects.filter(entitlement=ent).values_list("at", flat=True))
    assert len(kept) == 2 and kept[-1] < late  # the newest one (after the late event) is gone
    assert (
        entitlement_value(organization=tenant_a.org, entitlement=ent, at=late + timedelta(days=1)).usage == 50
    )


def test_listener_errors_never_break_ingest(tenant_a, django_capture_on_commit_callbacks):
    calls = []

    def broken(**kwargs):
        calls.append(kwargs)
        raise RuntimeError("boom")

    hooks.add_ingest_listener(broken)
    try:
        post(tenant_a, 1, capture=django_capture_on_commit_callbacks)
        post(tenant_a, 2, capture=django_capture_on_commit_callbacks)
    finally:
        hooks.remove_ingest_listener(broken)
    assert len(calls) == 2  # once per request
    assert calls[0]["subjects"] == ["acme-subj"] and calls[0]["event_types"] == ["prompt"]
    assert calls[0]["organization"] == tenant_a.org


def test_one_call_per_request_and_none_for_duplicates(tenant_a, django_capture_on_commit_callbacks):
    calls = []

    def spy(**kwargs):
        calls.append(kwargs)

    hooks.add_ingest_listener(spy)
    t0 = timezone.now() - timedelta(hours=3)
    batch = [
        {
            "id": f"b{i}",
            "source": "app",
            "specversion": "1.0",
            "type": t,
            "subject": s,
            "time": (t0 + timedelta(minutes=i)).isoformat(),
        }
        for i, (t, s) in enumerate([("prompt", "x"), ("prompt", "y"), ("request", "x")])
    ]
    try:
        for _ in range(2):  # the second time every event is a duplicate: nothing landed, no call
            with django_capture_on_commit_callbacks(execute=True):
                r = tenant_a.client("ingest").post(
                    "/api/v1/events",
                    data=json.dumps(batch),
                    content_type="application/cloudevents-batch+json",
                )
            assert r.status_code == 204
    finally:
        hooks.remove_ingest_listener(spy)
    assert len(calls) == 1
    assert calls[0]["subjects"] == ["x", "y"] and calls[0]["event_types"] == ["prompt", "request"]
    assert calls[0]["earliest_event_time"] == t0


def test_non_eager_listener_queues_one_task_per_organization(tenant_a, tenant_b, monkeypatch):
    celery_app.conf.task_always_eager = False
    sent = []
    monkeypatch.setattr(tasks.usage_landed, "apply_async", lambda args, **kw: sent.append((args, kw)))
    monkeypatch.setattr(tasks._publisher, "poke", lambda: None)  # flush by hand, no thread
    t = timezone.now()
    tasks.usage_landed_listener(organization=tenant_a.org, subjects=["a"], earliest_event_time=t)
    tasks.usage_landed_listener(
        organization=tenant_a.org,
        subjects=["b"],
        earliest_event_time=t - timedelta(hours=1),
        event_types=["x"],
    )
    tasks.usage_landed_listener(organization=tenant_b.org, subjects=["a"], earliest_event_time=t)
    assert sent == []  # nothing published in the request
    assert tasks.usage_landed_flush() == 2
    by_org = {args[0]: args for args, _ in sent}
    assert by_org[tenant_a.org.id] == (tenant_a.org.id, ["a", "b"], (t - timedelta(hours=1)).isoformat())
    assert by_org[tenant_b.org.id] == (tenant_b.org.id, ["a"], t.isoformat())
    assert all(kw == {"queue": "billing"} for _, kw in sent)
    assert tasks.usage_landed_flush() == 0
