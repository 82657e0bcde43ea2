"""Outbound webhooks: Standard Webhooks signatures verified by the receiver, retries, delivery log, resend,
billing notifications forwarded once. A local HTTP server stands in for the customer's endpoint; the
server-side request forgery guard, which refuses it by default, is in the second half of this module."""

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


@pytest.fixture(autouse=True)
def private_targets_allowed(settings):
    """The stand-in endpoint listens on 127.0.0.1: allowed as on premises (the guard tests below set the
    default back, which refuses it)."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True


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


# --- server-side request forgery guard (the default: WEBHOOK_ALLOW_PRIVATE_TARGETS false) --------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/hook",
        "http://192.168.1.1/hook",
        "http://172.16.0.1/hook",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://localhost:9000/hook",
        "http://[::1]/hook",
        "http://[fe80::1]/hook",
        "http://[fd00::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://2130706433/hook",
        "http://user:pass@example.test/hook",
    ],
)
def test_endpoints_must_be_public_addresses(tenant_a, tenant_b, settings, url):
    from core.errors import ValidationFailed
    from invoicing.models import WebhookEndpoint

    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(ValidationFailed) as refused:
        webhook_endpoint_create(organization=tenant_a.org, url=url)
    assert [e["name"] for e in refused.value.errors] == ["url"]
    assert not WebhookEndpoint.objects.exists()


def test_api_refuses_private_targets_on_create_and_update(tenant_a, tenant_b, settings):
    from invoicing.models import WebhookEndpoint

    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    client = tenant_a.client()
    r = client.post("/api/v1/notification/endpoints", {"url": "http://169.254.169.254/x"}, format="json")
    assert r.status_code == 400 and r["Content-Type"] == "application/problem+json"
    assert r.json()["invalid_params"][0]["name"] == "url"
    assert "169.254.169.254 is not a public address" in r.json()["invalid_params"][0]["reason"]
    ok = client.post("/api/v1/notification/endpoints", {"url": "https://hooks.acme.test/in"}, format="json")
    assert ok.status_code == 201, ok.content  # a name that does not resolve yet: checked when sending
    url = f"/api/v1/notification/endpoints/{ok.json()['id']}"
    r = client.patch(url, {"url": "http://[::1]:8000/"}, format="json")
    assert r.status_code == 400 and r.json()["invalid_params"][0]["name"] == "url"
    assert list(WebhookEndpoint.objects.values_list("url", flat=True)) == ["https://hooks.acme.test/in"]
    assert tenant_b.client().get("/api/v1/notification/endpoints").json()["items"] == []


def test_delivery_checks_the_address_it_connects_to(tenant_a, tenant_b, receiver, settings):
    """An endpoint stored while allowed (or whose DNS changed since) is refused at send time, before a
    byte is sent; allowing private targets again delivers it."""
    url, got, _ = receiver
    endpoint = webhook_endpoint_create(organization=tenant_a.org, url=url)
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(Retry):
        webhook_event_emit(organization=tenant_a.org, type="invoice.created", payload={"id": "inv_1"})
    assert got == []
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, None)
    assert delivery.last_error.startswith("Refused to deliver: 127.0.0.1 is not a public address")
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    assert webhook_delivery_attempt(delivery_id=delivery.id) is True
    assert len(got) == 1


@pytest.fixture
def redirecting_receiver():
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            hits.append(self.path)
            self.rfile.read(int(self.headers["content-length"]))
            if self.path == "/hook":
                self.send_response(302)
                self.send_header("Location", "/internal")
                self.end_headers()
                self.wfile.write(b"x" * 5000)
            else:
                self.send_response(200)
                self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", hits
    server.shutdown()


def test_redirects_are_not_followed_and_the_snippet_is_short(tenant_a, tenant_b, redirecting_receiver):
    url, hits = redirecting_receiver
    webhook_endpoint_create(organization=tenant_a.org, url=url)
    with pytest.raises(Retry):
        webhook_event_emit(organization=tenant_a.org, type="invoice.created", payload={})
    assert hits == ["/hook"]
    delivery = WebhookDelivery.objects.get()
    assert (delivery.last_status_code, delivery.last_error) == (302, "HTTP 302")
    assert delivery.response_snippet == "x" * 200


def test_a_notification_that_cannot_be_forwarded_is_quarantined_and_the_others_go_on(
    tenant_a, tenant_b, monkeypatch
):
    from core.models import JobFailure
    from invoicing import webhooks

    for tenant in (tenant_a, tenant_b):
        NotificationEvent.objects.create(
            organization=tenant.org,
            type="entitlements.balance.threshold",
            payload={"feature": "tokens"},
            dedupe_key="k1",
        )
    real = webhooks.webhook_event_emit

    def poison_for_a(*, organization, **kwargs):
        if organization.id == tenant_a.org.id:
            raise TypeError("payload cannot be serialised")
        return real(organization=organization, **kwargs)

    monkeypatch.setattr(webhooks, "webhook_event_emit", poison_for_a)
    assert billing_notifications_forward() == 1
    assert WebhookMessage.objects.filter(organization=tenant_b.org).count() == 1
    failure = JobFailure.objects.get()
    assert (failure.job, failure.organization_id, failure.error) == (
        "billing_notifications_forward",
        tenant_a.org.id,
        "TypeError: payload cannot be serialised",
    )
    monkeypatch.setattr(webhooks, "webhook_event_emit", real)
    assert billing_notifications_forward() == 0  # quarantined until retried
    from core.jobs import job_failures_retry

    assert job_failures_retry(job="billing_notifications_forward") == 1
    assert billing_notifications_forward() == 1
    assert WebhookMessage.objects.filter(organization=tenant_a.org).count() == 1


def test_a_delivery_that_fails_before_sending_is_logged_and_others_go_on(tenant_a, tenant_b, receiver):
    from invoicing.models import WebhookEndpoint

    url, got, _ = receiver
    broken = webhook_endpoint_create(organization=tenant_a.org, url=url)
    webhook_endpoint_create(organization=tenant_b.org, url=url)
    WebhookEndpoint.objects.filter(id=broken.id).update(secret="whsec_not-base64!")
    with pytest.raises(Retry):
        webhook_event_emit(organization=tenant_a.org, type="invoice.created", payload={"n": 1})
    webhook_event_emit(organization=tenant_b.org, type="invoice.created", payload={"n": 2})
    failed = WebhookDelivery.objects.get(organization=tenant_a.org)
    assert (failed.status, failed.attempts, failed.last_status_code) == ("pending", 1, None)
    assert failed.last_error
    assert WebhookDelivery.objects.get(organization=tenant_b.org).status == "succeeded"
    assert len(got) == 1
