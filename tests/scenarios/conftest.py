"""Billing stories end to end: catalog plans published through services, customers and subscriptions
through billing services, usage through `POST /api/v1/events` (drained inline by eager Celery), and the
invoice run at frozen instants. Every story runs on both invoice paths: the batched run the clock uses
(`invoicing.tasks.invoice_clock`) and the one-invoice-at-a-time path (`runs.invoice_run_item_process`)."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine

from billing.models import Customer, Subscription
from billing.services import customer_create
from billing.subscriptions.addons import subscription_addon_set
from billing.subscriptions.cancel import subscription_cancel
from billing.subscriptions.change import subscription_change
from billing.subscriptions.create import subscription_create
from catalog import services as catalog
from config.celery import app as celery_app
from invoicing.credits import customer_credit_create
from invoicing.models import Invoice, InvoiceLine
from invoicing.runs import invoice_run_item_process, invoice_runs_schedule
from invoicing.services import invoice_on_demand_create
from invoicing.tasks import invoice_clock
from metering import services as metering

D = Decimal
_ids = itertools.count(1)


def at(text: str) -> datetime:
    """'2026-10-16' or '2026-10-16 12:30' as UTC."""
    fmt = "%Y-%m-%d %H:%M" if " " in text else "%Y-%m-%d"
    return datetime.strptime(text, fmt).replace(tzinfo=UTC)


@pytest.fixture(autouse=True)
def eager_celery():
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture(params=["batch", "single"])
def path(request) -> str:
    return request.param


def flat(
    key: str, amount: str, *, term: str = "in_advance", cadence: str | None = "P1M", name: str = ""
) -> dict:
    card: dict[str, Any] = {
        "type": "flat_fee",
        "key": key,
        "name": name or key.replace("_", " ").title(),
        "price": {"type": "flat", "amount": amount, "paymentTerm": term},
    }
    if cadence:
        card["billingCadence"] = cadence
    return card


def usage(key: str, feature: str, price: dict, *, cadence: str = "P1M", **extra: Any) -> dict:
    return {
        "type": "usage_based",
        "key": key,
        "name": key.replace("_", " ").title(),
        "featureKey": feature,
        "billingCadence": cadence,
        "price": price,
        **extra,
    }


@dataclass
class World:
    """One organization's billing world, driven at explicit instants."""

    tenant: Any
    path: str
    currency: str = "USD"
    subjects: dict[str, str] = field(default_factory=dict)

    @property
    def org(self):
        return self.tenant.org

    def meter(self, slug: str, *, aggregation: str = "SUM", value: str | None = "$.value") -> None:
        with time_machine.travel(at("2026-01-01"), tick=False):
            metering.meter_create(
                organization=self.org,
                slug=slug,
                event_type=slug,
                aggregation=aggregation,
                value_property=value if aggregation != "COUNT" else None,
            )
            catalog.feature_create(organization=self.org, key=slug, name=slug.title(), meter_slug=slug)

    def plan(
        self,
        key: str,
        cards: list[dict],
        *,
        cadence: str = "P1M",
        currency: str | None = None,
        phases: list[dict] | None = None,
    ) -> str:
        """Publish a plan with one phase of `cards` (or the given `phases`)."""
        with time_machine.travel(at("2026-01-01"), tick=False):
            plan = catalog.plan_create(
                organization=self.org,
                key=key,
                data={
                    "key": key,
                    "name": key.title(),
                    "currency": currency or self.currency,
                    "billingCadence": cadence,
                    "phases": phases
                    or [{"key": "default", "name": "Default", "duration": None, "rateCards": cards}],
                },
            )
            catalog.plan_publish(organization=self.org, plan_id=plan.id)
        return key

    def addon(self, key: str, cards: list[dict]) -> str:
        with time_machine.travel(at("2026-01-01"), tick=False):
            addon = catalog.addon_create(
                organization=self.org,
                key=key,
                data={
                    "key": key,
                    "name": key.title(),
                    "currency": self.currency,
                    "instanceType": "multiple",
                    "rateCards": cards,
                },
            )
            catalog.addon_publish(organization=self.org, addon_id=addon.id)
        return key

    def addon_set(self, sub: Subscription, addon: str, quantity: int, when: str) -> None:
        with time_machine.travel(at(when), tick=False):
            subscription_addon_set(
                organization=self.org, subscription=sub, addon_key=addon, quantity=quantity
            )

    def customer(self, key: str, *, currency: str | None = None, timezone_name: str = "") -> Customer:
        with time_machine.travel(at("2026-01-01"), tick=False):
            cust = customer_create(
                organization=self.org,
                name=key.title(),
                key=key,
                timezone_name=timezone_name,
                currency=currency or self.currency,
                subject_keys=[f"{key}-subject"],
            )
        self.subjects[cust.id] = f"{key}-subject"
        return cust

    def subscribe(self, cust: Customer, plan: str, when: str, *, anchor: str | None = None) -> Subscription:
        moment = at(when)
        with time_machine.travel(moment, tick=False):
            return subscription_create(
                organization=self.org,
                customer=cust,
                plan_key=plan,
                active_from=moment,
                billing_anchor=at(anchor) if anchor else moment,
            )

    def change(self, sub: Subscription, plan: str, when: str, *, timing: str = "immediate") -> Subscription:
        with time_machine.travel(at(when), tick=False):
            _old, new = subscription_change(
                organization=self.org, subscription=sub, plan_key=plan, timing=timing
            )
        return new

    def cancel(self, sub: Subscription, when: str, *, timing: Any = "immediate") -> None:
        with time_machine.travel(at(when), tick=False):
            subscription_cancel(organization=self.org, subscription=sub, timing=timing)

    def use(self, cust: Customer, meter: str, when: str, value: str | int = 1, **data: Any) -> None:
        """One event through the ingest API, received at `when` (its time too, unless `time=` is given)."""
        moment = at(when)
        event_time = data.pop("time", None) or moment.isoformat()
        body = {
            "id": f"evt-{next(_ids)}",
            "source": "scenario",
            "specversion": "1.0",
            "type": meter,
            "subject": self.subjects[cust.id],
            "time": event_time,
            "data": {"value": str(value), **data},
        }
        with time_machine.travel(max(moment, at("2026-01-01")), tick=False):
            r = self.tenant.client("ingest").post(
                "/api/v1/events", data=json.dumps(body), content_type="application/cloudevents+json"
            )
        assert r.status_code == 204, r.content

    def use_late(
        self, cust: Customer, meter: str, *, event_time: str, received: str, value: str | int
    ) -> None:
        self.use(cust, meter, received, value, time=at(event_time).isoformat())

    def clock(self, when: str) -> list[Invoice]:
        """The invoice run at `when`; returns the invoices it created, oldest moment first."""
        moment = at(when)
        before = set(Invoice.objects.filter(organization=self.org).values_list("id", flat=True))
        with time_machine.travel(moment, tick=False):
            if self.path == "batch":
                invoice_clock()
            else:
                for item_id in invoice_runs_schedule(now=moment):
                    invoice_run_item_process(item_id=item_id, now=moment)
        return _by_moment(
            Invoice.objects.filter(organization=self.org).exclude(id__in=before).exclude(status="gathering")
        )

    def on_demand(self, cust: Customer, when: str) -> Invoice:
        moment = at(when)
        with time_machine.travel(moment, tick=False):
            (invoice,) = invoice_on_demand_create(organization=self.org, customer=cust, now=moment)
        return invoice

    def credit(self, cust: Customer, amount: str, when: str, **kw: Any) -> Any:
        with time_machine.travel(at(when), tick=False):
            return customer_credit_create(
                organization=self.org, customer=cust, amount=amount, currency=cust.currency, **kw
            )

    def invoices(self, cust: Customer) -> list[Invoice]:
        return _by_moment(
            Invoice.objects.filter(organization=self.org, customer=cust).exclude(status="gathering")
        )

    def billed(self, cust: Customer) -> Decimal:
        return sum((i.total for i in self.invoices(cust)), D(0))


def _by_moment(invoices: Any) -> list[Invoice]:
    """Invoices in the order they bill: by billing moment (a start invoice bills at its start), starts first."""
    return sorted(
        invoices,
        key=lambda i: (i.period_start if i.kind == "start" else i.period_end, i.kind != "start", i.id),
    )


def lines(invoice: Invoice) -> list[tuple[str, Decimal]]:
    return [
        (x.type, x.amount) for x in InvoiceLine.objects.filter(invoice=invoice).order_by("position", "id")
    ]


def totals(invoices: list[Invoice]) -> list[Decimal]:
    return [i.total for i in invoices]


@pytest.fixture
def world(tenant_a, tenant_b, path):
    """Tenant A's world. Tenant B has the same meter, plan and customer keys, usage of its own (5 calls at
    1.00, base fee 999) and is invoiced by the same clock: after each story, B's invoices hold only B's
    amounts and A's hold none of B's."""
    b = World(tenant_b, path)
    b.meter("calls")
    b.plan("basic", [flat("base", "999"), usage("calls", "calls", {"type": "unit", "amount": "1"})])
    b_cust = b.customer("acme")
    b.subscribe(b_cust, "basic", "2026-10-01")
    b.use(b_cust, "calls", "2026-10-10", 5)
    yield World(tenant_a, path)
    for inv in Invoice.objects.filter(organization=tenant_b.org):
        assert inv.customer_id == b_cust.id
        for line in InvoiceLine.objects.filter(invoice=inv):
            assert line.organization_id == tenant_b.org.id
            assert line.type != "usage" or line.amount == line.quantity  # 1.00 per call, B's own calls only
            assert line.type != "flat_fee" or line.amount == D("999.00")
    assert not InvoiceLine.objects.filter(
        organization=tenant_a.org, invoice__organization=tenant_b.org
    ).exists()
    assert not Invoice.objects.filter(organization=tenant_a.org, customer__organization=tenant_b.org).exists()
