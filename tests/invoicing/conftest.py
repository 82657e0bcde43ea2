"""Invoicing fixtures: eager Celery, real billing subscription rows, an in-memory usage book, a fake Stripe
HTTP transport (the real `stripe` library runs; only the network is replaced), Stripe-signed payloads."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import pytest
import stripe

from billing.models import Customer, Subscription
from config.celery import app as celery_app
from invoicing import sources, stripe_gateway
from tests.factories import CustomerFactory, SubscriptionFactory, SubscriptionItemFactory


@pytest.fixture(autouse=True)
def eager_celery():
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = False


# --- usage ----------------------------------------------------------------------------------------
@dataclass
class UsageBook:
    """Events as (customer_id, feature_key, timestamp, value); usage sums [start, end)."""

    events: list[tuple[str, str, datetime, Decimal]] = field(default_factory=list)
    calls: int = 0

    def add(self, customer: Customer, feature: str, at: datetime, value: str | int) -> None:
        self.events.append((customer.id, feature, at, Decimal(str(value))))

    def provider(self, *, organization, customer_id, feature_key, start, end, measure="value") -> Decimal:
        self.calls += 1
        hits = [v for c, f, t, v in self.events if c == customer_id and f == feature_key and start <= t < end]
        return Decimal(len(hits)) if measure == "count" else sum(hits, Decimal(0))

    def bulk(self, *, organization, requests) -> dict:
        """The `usage_bulk` provider: every request answered from the book."""
        return {
            r: self.provider(
                organization=organization,
                customer_id=r.customer_id,
                feature_key=r.feature_key,
                start=r.start,
                end=r.end,
                measure=r.measure,
            )
            for r in requests
        }


@pytest.fixture
def usage():
    book = UsageBook()
    sources.set_provider("usage", book.provider)
    sources.set_provider("usage_bulk", book.bulk)
    yield book
    sources.set_provider("usage", None)
    sources.set_provider("usage_bulk", None)


# --- billing rows ---------------------------------------------------------------------------------
def make_customer(tenant, key: str, *, currency: str = "USD", name: str | None = None) -> Customer:
    """A customer with an address and one subject, `subj-<key>`."""
    return CustomerFactory(
        organization=tenant.org, key=key, currency=currency, **({"name": name} if name else {})
    )


GRADUATED = {
    "type": "tiered",
    "mode": "graduated",
    "tiers": [
        {"upToAmount": "1000", "unitPrice": {"type": "unit", "amount": "0.10"}},
        {"upToAmount": "5000", "unitPrice": {"type": "unit", "amount": "0.05"}},
        {"unitPrice": {"type": "unit", "amount": "0.01"}},
    ],
}


def make_subscription(
    tenant,
    customer: Customer,
    *,
    anchor: datetime,
    items: list[dict[str, Any]],
    active_from: datetime | None = None,
    active_to: datetime | None = None,
    plan_key: str = "pro",
    currency: str = "USD",
) -> Subscription:
    sub = SubscriptionFactory(
        customer=customer,
        plan_key=plan_key,
        currency=currency,
        billing_anchor=anchor,
        active_from=active_from or anchor,
        active_to=active_to,
    )
    for spec in items:
        SubscriptionItemFactory(
            subscription=sub,
            key=spec["key"],
            name=spec.get("name", spec["key"].title()),
            feature_key=spec.get("feature_key", ""),
            price=spec["price"],
            payment_term=spec.get("payment_term", "in_advance"),
            quantity=Decimal(spec.get("quantity", "1")),
            discounts=spec.get("discounts"),
            active_from=spec.get("active_from", sub.active_from),
            active_to=spec.get("active_to", active_to),
        )
    return sub


# --- Stripe -----------------------------------------------------------------------------------------
class FakeStripe(stripe.HTTPClient):
    """Records every request the real `stripe` library sends; answers with recorded-shape objects."""

    name = "fake"

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict[str, Any]] = []
        self.fail_next: list[tuple[str, int]] = []  # (path contains, http status)
        self._by_key: dict[str, tuple[str, int, dict]] = {}
        self._n = 0

    def _id(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}_{self._n:06d}"

    def request(self, method, url, headers, post_data=None):
        path = url.split("api.stripe.com", 1)[-1]
        params = (
            dict(parse_qsl(post_data or "", keep_blank_values=True)) if isinstance(post_data, str) else {}
        )
        key = headers.get("Idempotency-Key")
        record = {
            "method": method,
            "path": path,
            "params": params,
            "idempotency_key": key,
            "version": headers.get("Stripe-Version"),
            "authorization": headers.get("Authorization"),
        }
        self.requests.append(record)
        for i, (needle, status) in enumerate(self.fail_next):
            if needle in path:
                self.fail_next.pop(i)
                body = {"error": {"type": "api_error", "message": "boom"}}
                return json.dumps(body), status, {}
        if key and key in self._by_key:  # Stripe replays the stored response for a reused key
            body, status, hdrs = self._by_key[key]
            return body, status, hdrs
        obj = self._respond(method, path, params)
        out = (json.dumps(obj), 200, {"request-id": "req_fake"})
        if key:
            self._by_key[key] = out
        return out

    def _respond(self, method: str, path: str, params: dict[str, str]) -> dict[str, Any]:
        if path == "/v1/customers":
            return {"id": self._id("cus"), "object": "customer", "name": params.get("name")}
        if path == "/v1/invoices":
            return {
                "id": self._id("in"),
                "object": "invoice",
                "status": "draft",
                "currency": params.get("currency"),
                "customer": params.get("customer"),
            }
        if path == "/v1/invoiceitems":
            return {
                "id": self._id("ii"),
                "object": "invoiceitem",
                "amount": int(params["amount"]),
                "currency": params["currency"],
                "invoice": params.get("invoice"),
            }
        if path.endswith("/finalize"):
            inv = path.split("/")[3]
            return {
                "id": inv,
                "object": "invoice",
                "status": "open",
                "hosted_invoice_url": f"https://invoice.stripe.test/{inv}",
            }
        if path.endswith("/void"):
            return {"id": path.split("/")[3], "object": "invoice", "status": "void"}
        raise AssertionError(f"unexpected Stripe call {method} {path}")

    def close(self) -> None:
        pass

    def calls(self, path_part: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if path_part in r["path"]]


@pytest.fixture
def fake_stripe():
    client = FakeStripe()
    stripe_gateway.set_http_client(client)
    yield client
    stripe_gateway.set_http_client(None)


WEBHOOK_SECRET = "whsec_test_secret_123"


def stripe_signed(
    payload: dict[str, Any], *, secret: str = WEBHOOK_SECRET, at: int | None = None
) -> tuple[bytes, str]:
    """The body and a `Stripe-Signature` header made with Stripe's scheme: HMAC-SHA256 of `t.payload`."""
    body = json.dumps(payload).encode()
    ts = at if at is not None else int(time.time())
    sig = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={ts},v1={sig}"


def run_period(tenant, now: datetime, **kw: Any):
    """Run every due billing moment of the organization at `now` (single path, in order) and return the
    period invoice that ends at `now`'s latest closed boundary (a subscription's start invoice, billing its
    first in-advance fees, is built before it)."""
    from invoicing.runs import invoice_run_item_process, invoice_runs_schedule

    out = None
    for item_id in invoice_runs_schedule(now=now, organization=tenant.org, **kw):
        invoice = invoice_run_item_process(item_id=item_id, now=now)
        if invoice is not None and invoice.kind == "period":
            out = invoice
    return out
