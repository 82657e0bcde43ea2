"""Subscription changes write `subscription.*` NotificationEvents in the same transaction, and invoicing's
existing consumer (`billing_notifications_forward`) delivers them as signed webhooks to an endpoint
subscribed to those types. A local HTTP server stands in for the tenant's endpoint."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from billing import services
from billing.models import NotificationEvent, Subscription
from billing.sources import AddonSpec, RateCardSpec
from config.celery import app as celery_app
from core.errors import Conflict
from invoicing.models import WebhookDelivery, WebhookMessage
from invoicing.webhooks import billing_notifications_forward, webhook_endpoint_create
from tests.billing.conftest import flat, pro_plan

pytestmark = pytest.mark.django_db(transaction=True)

SUBSCRIPTION_TYPES = ["subscription.created", "subscription.changed", "subscription.canceled"]


@pytest.fixture(autouse=True)
def eager_celery():
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # the stand-in endpoint listens on 127.0.0.1
    got: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["content-length"]))
            got.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", got
    server.shutdown()


def _customer(tenant, key="acme"):
    return services.customer_create(
        organization=tenant.org, name=key.title(), key=key, currency="USD", subject_keys=[f"{key}-s1"]
    )


def test_subscription_lifecycle_reaches_subscribed_webhook_endpoint(tenant_a, tenant_b, catalog, receiver):
    url, got = receiver
    org = tenant_a.org
    endpoint = webhook_endpoint_create(organization=org, url=url, event_types=SUBSCRIPTION_TYPES)
    other = webhook_endpoint_create(organization=org, url=url, event_types=["invoice.issued"])
    webhook_endpoint_create(organization=tenant_b.org, url=url)  # B's endpoint must never get A's events
    pro_plan(org, catalog)
    pro_plan(org, catalog, key="max", fee="90")
    cust = _customer(tenant_a)

    sub = services.subscription_create(organization=org, customer=cust, plan_key="pro")
    old, new = services.subscription_change(organization=org, subscription=sub, plan_key="max")
    canceled = services.subscription_cancel(organization=org, subscription=new, timing="next_billing_cycle")
    with pytest.raises(Conflict):  # a failed change stores nothing
        services.subscription_create(organization=org, customer=cust, plan_key="pro")

    events = list(NotificationEvent.objects.filter(organization=org).order_by("created_at", "id"))
    assert [e.type for e in events] == SUBSCRIPTION_TYPES
    created, changed, cancel = (e.payload for e in events)
    assert created["subscriptionId"] == sub.id
    assert (created["customerId"], created["customerKey"]) == (cust.id, "acme")
    assert created["plan"] == {"key": "pro", "version": 1}
    assert (created["timing"], created["effectiveAt"]) == ("immediate", sub.active_from.isoformat())
    assert changed["subscriptionId"] == new.id and changed["previousSubscriptionId"] == old.id
    assert (changed["plan"], changed["previousPlan"]) == (
        {"key": "max", "version": 1},
        {"key": "pro", "version": 1},
    )
    assert (changed["timing"], changed["effectiveAt"]) == ("immediate", new.active_from.isoformat())
    assert changed["action"] == "subscription.changed"
    assert cancel["subscriptionId"] == new.id and cancel["plan"] == {"key": "max", "version": 1}
    assert cancel["timing"] == "next_billing_cycle"
    assert cancel["effectiveAt"] == canceled.active_to.isoformat() and canceled.active_to > timezone.now()
    assert not NotificationEvent.objects.filter(organization=tenant_b.org).exists()

    # invoicing's existing consumer (beat task, 30 s) forwards them once each
    assert billing_notifications_forward() == 3
    assert billing_notifications_forward() == 0
    assert len(got) == 3
    bodies = [Webhook(endpoint.secret).verify(g["body"], g["headers"]) for g in got]
    assert [b["type"] for b in bodies] == SUBSCRIPTION_TYPES
    assert [b["data"] for b in bodies] == [created, changed, cancel]
    assert WebhookDelivery.objects.filter(endpoint=endpoint, status="succeeded").count() == 3
    assert not WebhookDelivery.objects.filter(endpoint=other).exists()  # not subscribed to these types
    assert not WebhookMessage.objects.filter(organization=tenant_b.org).exists()


def test_migrate_addon_and_unschedule_are_changes(tenant_a, catalog):
    org = tenant_a.org
    pro_plan(org, catalog)
    catalog.add_addon(
        org,
        AddonSpec(
            id="01ADDON0000000000000000000",
            key="seats",
            version=1,
            name="Seats",
            rate_cards=(RateCardSpec(key="seat", name="Seat", price=flat("5")),),
        ),
    )
    cust = _customer(tenant_a)
    sub = services.subscription_create(organization=org, customer=cust, plan_key="pro")
    services.subscription_addon_set(organization=org, subscription=sub, addon_key="seats", quantity=3)
    services.subscription_cancel(organization=org, subscription=sub, timing="next_billing_cycle")
    services.subscription_unschedule_cancelation(organization=org, subscription=sub)
    pro_plan(org, catalog, version=2, fee="40")
    _, new = services.subscription_migrate(organization=org, subscription=sub)
    rows = [
        (e.type, e.payload["action"], e.payload["subscriptionId"])
        for e in NotificationEvent.objects.filter(organization=org).order_by("created_at", "id")
    ]
    assert rows == [
        ("subscription.created", "subscription.created", sub.id),
        ("subscription.changed", "subscription.addon_changed", sub.id),
        ("subscription.canceled", "subscription.canceled", sub.id),
        ("subscription.changed", "subscription.cancelation_unscheduled", sub.id),
        ("subscription.changed", "subscription.migrated", new.id),
    ]
    addon = NotificationEvent.objects.get(organization=org, payload__action="subscription.addon_changed")
    assert addon.payload["addon"] == {"key": "seats", "quantity": 3, "previousQuantity": 0}
    migrated = NotificationEvent.objects.get(organization=org, payload__action="subscription.migrated")
    assert (migrated.payload["plan"], migrated.payload["previousPlan"]) == (
        {"key": "pro", "version": 2},
        {"key": "pro", "version": 1},
    )
    json.dumps([e.payload for e in NotificationEvent.objects.all()])  # plain JSON


def test_notification_is_written_in_the_change_transaction(tenant_a, catalog, monkeypatch):
    """If storing the notification fails, the subscription is not created either (one transaction)."""
    pro_plan(tenant_a.org, catalog)
    cust = _customer(tenant_a)

    def boom(*args, **kwargs):
        raise RuntimeError("notification store down")

    monkeypatch.setattr(NotificationEvent.objects, "create", boom)
    with pytest.raises(RuntimeError):
        services.subscription_create(organization=tenant_a.org, customer=cust, plan_key="pro")
    assert not Subscription.objects.filter(organization=tenant_a.org).exists()
