"""Outbound webhooks: Standard Webhooks signatures verified by the receiver, retries, delivery log, resend,
billing notifications forwarded once. A local HTTP server stands in for the customer's endpoint."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from celery.exceptions import Retry
from standardwebhooks.webhooks import Webhook

from billing.models import NotificationEvent
from invoicing.models import WebhookDelivery, WebhookMessage
from invoicing.webhooks import (
    billing_notifications_forward,
    webhook_delivery_attempt,
    webhook_delivery_resend,
    webhook_endpoint_create,
    webhook_event_emit,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def receiver():
    got: list[dict] = []
    statuses: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["content-length"]))
            got.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
            code = statuses.pop(0) if statuses else 200
            self.send_response(code)
            self.end_headers()
            self.wfile.write(b"ok" if code < 300 else b"nope")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", got, statuses
    server.shutdown()


def test_signed_delivery_verifies_with_standardwebhooks(tenant_a, tenant_b, receiver):
    url, got, _ = receiver
    endpoint = webhook_endpoint_create(organization=tenant_a.org, url=url, event_types=["invoice.issued"])
    webhook_endpoint_create(organization=tenant_b.org, url=url)  # B's endpoint must not get A's events
    webhook_event_emit(
        organization=tenant_a.org, type="invoice.issued", payload={"id": "inv_1", "total": "10.00"}
    )
    webhook_event_emit(
        organization=tenant_a.org, type="invoice.paid", payload={"id": "inv_1"}
    )  # not subscribed
    assert len(got) == 1
    headers, body = got[0]["headers"], got[0]["body"]
    verified = Webhook(endpoint.secret).verify(body, headers)
    assert verified["type"] == "invoice.issued" and verified["data"] == {"id": "inv_1", "total": "10.00"}
    delivery = WebhookDelivery.objects.get(organization=tenant_a.org)
    assert (delivery.status, delivery.attempts, delivery.last_status_code, delivery.response_snippet) == (
        "succeeded",
        1,
        200,
        "ok",
    )
    assert not WebhookDelivery.objects.filter(organization=tenant_b.org).exists()
    with pytest.raises(Exception):  # noqa: B017 - a forged signature fails verification
        Webhook(endpoint.secret).verify(body.replace(b"10.00", b"99.00"), headers)


def test_failures_are_logged_retried_and_resendable(tenant_a, tenant_b, receiver):
    url, got, statuses = receiver
    webhook_endpoint_create(organization=tenant_a.org, url=url)
    statuses.extend([500, 503])  # fails twice, then 200
    with pytest.raises(Retry):  # the task asks Celery to retry with backoff
        webhook_event_emit(organization=tenant_a.org, type="invoice.paid", payload={"id": "x"})
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code, delivery.response_snippet) == (
        "pending",
        1,
        500,
        "nope",
    )
    assert delivery.next_attempt_at is not None
    assert webhook_delivery_attempt(delivery_id=delivery.id) is False  # the retries, as Celery would run them
    assert webhook_delivery_attempt(delivery_id=delivery.id) is True
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 3, 200)
    assert len(got) == 3 and len({g["headers"]["webhook-id"] for g in got}) == 1  # same message id on retries
    resent = webhook_delivery_resend(organization=tenant_a.org, delivery_id=delivery.id)
    resent.refresh_from_db()
    assert resent.status == "succeeded" and len(got) == 4
    from core.errors import NotFound

    with pytest.raises(NotFound):
        webhook_delivery_resend(organization=tenant_b.org, delivery_id=delivery.id)


def test_unreachable_endpoint_records_the_error(tenant_a, tenant_b):
    webhook_endpoint_create(organization=tenant_a.org, url="http://127.0.0.1:9/nothing")
    with pytest.raises(Retry):
        webhook_event_emit(organization=tenant_a.org, type="invoice.created", payload={})
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, None)
    assert delivery.last_error
    for _ in range(7):  # MAX_ATTEMPTS in all, then it gives up
        webhook_delivery_attempt(delivery_id=delivery.id)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 8)


def test_billing_threshold_notifications_are_forwarded_once(tenant_a, tenant_b, receiver):
    url, got, _ = receiver
    webhook_endpoint_create(organization=tenant_a.org, url=url, event_types=["entitlement.balance.threshold"])
    NotificationEvent.objects.create(
        organization=tenant_a.org,
        type="entitlements.balance.threshold",
        payload={"feature": "tokens", "threshold": "75%"},
        dedupe_key="k1",
    )
    NotificationEvent.objects.create(
        organization=tenant_b.org,
        type="entitlements.balance.threshold",
        payload={"feature": "tokens"},
        dedupe_key="k1",
    )
    assert billing_notifications_forward() == 2
    assert billing_notifications_forward() == 0
    assert len(got) == 1
    assert (
        WebhookMessage.objects.filter(organization=tenant_a.org, type="entitlement.balance.threshold").count()
        == 1
    )


def test_forwarding_never_stalls_behind_already_forwarded_notifications(tenant_a, tenant_b):
    # More already-forwarded notifications than one scan window (the old scan read limit*4 rows and
    # skipped seen ones in Python, so it stalled after 4 calls) must not hide newer ones.
    for i in range(30):
        NotificationEvent.objects.create(
            organization=tenant_a.org,
            type="entitlements.balance.threshold",
            payload={"i": i},
            dedupe_key=f"old{i}",
        )
    NotificationEvent.objects.create(
        organization=tenant_b.org, type="entitlements.balance.threshold", payload={"i": "b"}, dedupe_key="b1"
    )
    forwarded = [billing_notifications_forward(limit=5) for _ in range(8)]
    assert forwarded == [5, 5, 5, 5, 5, 5, 1, 0]
    assert WebhookMessage.objects.filter(organization=tenant_a.org).count() == 30
    assert WebhookMessage.objects.filter(organization=tenant_b.org).count() == 1
