"""Stripe webhooks with a valid signature but a body that is not a Stripe event, or a signature dated in the
future: 400 problem+json naming the field, nothing stored, and the processing task never crashes."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from rest_framework.test import APIClient

from core.models import JobFailure
from invoicing.models import StripeEvent
from invoicing.services import stripe_settings_set
from invoicing.stripe_events import stripe_event_process
from tests.invoicing.conftest import WEBHOOK_SECRET

pytestmark = pytest.mark.django_db


@pytest.fixture
def stripe_on(tenant_a, tenant_b):
    for tenant in (tenant_a, tenant_b):
        stripe_settings_set(
            organization=tenant.org,
            secret_key="sk_test_123",
            webhook_secret=WEBHOOK_SECRET,
            api_version="2026-10-28.endive",
        )


def signed(body: bytes, *, at: int | None = None) -> str:
    ts = at if at is not None else int(time.time())
    sig = hmac.new(WEBHOOK_SECRET.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={sig}"


def post(org: str, body: bytes, sig: str):
    return APIClient().post(
        f"/api/v1/apps/stripe/webhook/{org}",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sig,
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"[]", "body"),
        (b"null", "body"),
        (b'"evt_1"', "body"),
        (b'{"type": "invoice.paid"}', "id"),
        (b'{"id": 5, "type": "invoice.paid"}', "id"),
        (json.dumps({"id": "e" * 256, "type": "invoice.paid"}).encode(), "id"),
        (json.dumps({"id": "evt_1", "type": "t" * 101}).encode(), "type"),
        (b'{"id": "evt_\\u0000", "type": "invoice.paid"}', "body"),
        (b'{"id": "evt_1", "type": "invoice.paid", "data": []}', "data.object"),
        (b'{"id": "evt_1", "type": "invoice.paid", "data": {"object": "in_1"}}', "data.object"),
        (b'{"id": "evt_1", "x": ' + b"[" * 950 + b"]" * 950 + b"}", "body"),
        (b"{not json", "body"),
    ],
)
def test_signed_payloads_that_are_not_stripe_events_answer_400(tenant_a, tenant_b, stripe_on, body, field):
    r = post("acme", body, signed(body))
    assert r.status_code == 400, r.content
    assert r["Content-Type"] == "application/problem+json"
    assert [p["name"] for p in r.json()["invalid_params"]] == [field]
    assert not StripeEvent.objects.exists()


def test_a_signature_dated_in_the_future_is_refused(tenant_a, tenant_b, stripe_on):
    body = json.dumps({"id": "evt_future", "type": "customer.created", "data": {"object": {}}}).encode()
    r = post("acme", body, signed(body, at=int(time.time()) + 3600))
    assert r.status_code == 400
    assert r.json()["invalid_params"] == [
        {
            "name": "Stripe-Signature",
            "reason": "The signature timestamp is in the future (beyond the 300 s tolerance).",
        }
    ]
    assert not StripeEvent.objects.exists()
    # within the tolerance (a clock a little ahead) it is accepted, for A only
    r = post("acme", body, signed(body, at=int(time.time()) + 60))
    assert r.status_code == 200, r.content
    assert list(StripeEvent.objects.values_list("organization_id", "stripe_event_id")) == [
        (tenant_a.org.id, "evt_future")
    ]


def test_processing_a_malformed_stored_event_never_crashes(tenant_a, tenant_b, stripe_on):
    """Rows stored before the payload checks: the task records an outcome and returns."""
    odd = StripeEvent.objects.create(
        organization=tenant_a.org,
        stripe_event_id="evt_odd",
        type="invoice.paid",
        payload={"id": "evt_odd", "data": {"object": {"metadata": ["x"], "id": {"a": 1}}}},
    )
    listed = StripeEvent.objects.create(
        organization=tenant_b.org,
        stripe_event_id="evt_list",
        type="invoice.paid",
        payload=["not", "an", "object"],
    )
    assert stripe_event_process(event_row_id=odd.id) == "ignored: unknown invoice"
    assert stripe_event_process(event_row_id=listed.id) == "ignored: unknown invoice"
    assert not JobFailure.objects.exists()


def test_a_failing_event_is_recorded_and_requeued_when_retried(
    tenant_a, tenant_b, stripe_on, monkeypatch, django_capture_on_commit_callbacks
):
    from core.jobs import job_failures_retry
    from invoicing import stripe_events

    row = StripeEvent.objects.create(
        organization=tenant_a.org,
        stripe_event_id="evt_x",
        type="invoice.paid",
        payload={"id": "evt_x", "data": {"object": {"id": "in_1"}}},
    )

    def broken(organization_id, obj):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(stripe_events, "_find_invoice", broken)
    assert stripe_event_process(event_row_id=row.id) == "failed: RuntimeError"
    row.refresh_from_db()
    assert row.processed_at is None and row.result == ""
    failure = JobFailure.objects.get()
    assert (failure.job, failure.object_id, failure.organization_id, failure.error) == (
        "stripe_event_process",
        row.id,
        tenant_a.org.id,
        "RuntimeError: database hiccup",
    )
    monkeypatch.undo()
    assert job_failures_retry(organization=tenant_b.org) == 0  # B cannot retry A's
    with django_capture_on_commit_callbacks(execute=True):
        assert job_failures_retry(organization=tenant_a.org) == 1
    row.refresh_from_db()
    assert row.processed_at is not None and row.result == "ignored: unknown invoice"
