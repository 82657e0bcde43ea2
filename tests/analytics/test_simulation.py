"""Pricing simulation: a draft plan on real usage, by the invoicing line engine, hand-checked."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from analytics import services, tasks
from analytics.models import SimulationRun, SimulationStatus
from analytics.services import simulation_run_start
from catalog.services import plan_create
from tests.catalog.factories import make_feature, plan_body
from tests.conftest import PASSWORD
from tests.portal.conftest import ingest, make_portal_customer, make_token_meter

pytestmark = pytest.mark.django_db

OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOV = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def world(tenant_a, tenant_b):
    make_token_meter(tenant_a)
    make_token_meter(tenant_b)
    make_feature(tenant_a, key="tokens", meter="tokens")
    plan = plan_create(organization=tenant_a.org, key="pro", data=plan_body(key="pro", feature_key="tokens"))
    small = make_portal_customer(tenant_a, key="small", subjects=("s",)).customer
    big = make_portal_customer(tenant_a, key="big", subjects=("b1", "b2")).customer
    idle = make_portal_customer(tenant_a, key="idle", subjects=("i",)).customer
    other = make_portal_customer(tenant_b, key="small", subjects=("s",)).customer
    t = datetime(2026, 10, 10, tzinfo=UTC)
    ingest(
        tenant_a,
        [
            ("acme-s", t, {"tokens": 1100, "model": "m", "type": "input"}, "prompt"),
            ("acme-b1", t, {"tokens": 3000, "model": "m", "type": "input"}, "prompt"),
            ("acme-b2", t, {"tokens": 2100, "model": "m", "type": "output"}, "prompt"),
            (
                "acme-s",
                NOV,
                {"tokens": 999999, "model": "m", "type": "input"},
                "prompt",
            ),  # outside the period
        ],
    )
    ingest(tenant_b, [("globex-s", t, {"tokens": 777777, "model": "m", "type": "input"}, "prompt")])
    return plan, small, big, idle, other


def results_by_name(run: SimulationRun) -> dict[str, tuple[str, str]]:
    return {r["name"].split()[-1]: (r["simulated"], r["actual"]) for r in run.results}


def test_draft_plan_on_real_usage_hand_checked(tenant_a, world):
    _plan, small, big, idle, other = world
    run = simulation_run_start(
        organization=tenant_a.org,
        plan_key="pro",
        plan_version=1,
        period_start=OCT,
        period_end=NOV,
        customer_ids=[small.id, big.id, idle.id, other.id],  # B's customer id is ignored, not simulated
    )
    assert run.status == SimulationStatus.DONE and run.total == 3 and run.done == 3
    got = {k: Decimal(v[0]) for k, v in results_by_name(run).items()}
    # base 49 + graduated tokens after 100 free units:
    # small: 1000 → 1000x0.01 = 10.00 → 59.00
    # big: 5000 → 10.00 + (2 + 4000x0.005 = 22.00) = 32.00 → 81.00
    # idle: 0 → 49.00
    assert got == {"small": Decimal("59.00"), "big": Decimal("81.00"), "idle": Decimal("49.00")}
    lines = {r["name"].split()[-1]: r["lines"] for r in run.results}
    assert sorted(line["amount"] for line in lines["big"]) == ["32.00", "49.00"]


def test_compares_with_what_was_invoiced(tenant_a, world):
    from invoicing.models import Invoice, InvoiceLine

    _plan, small, _big, _idle, _other = world
    inv = Invoice.objects.create(
        organization=tenant_a.org,
        customer=small,
        currency="USD",
        status="issued",
        period_start=OCT,
        period_end=NOV,
        issued_at=NOV,
        total=Decimal("55.00"),
    )
    InvoiceLine.objects.create(
        organization=tenant_a.org,
        invoice=inv,
        type="flat_fee",
        description="Base",
        amount=Decimal("45.00"),
        period_start=OCT,
        period_end=NOV,
    )
    InvoiceLine.objects.create(
        organization=tenant_a.org,
        invoice=inv,
        type="usage",
        description="Tokens",
        amount=Decimal("10.00"),
        quantity=Decimal(1000),
        period_start=OCT,
        period_end=NOV,
    )
    InvoiceLine.objects.create(
        organization=tenant_a.org,
        invoice=inv,
        type="tax",
        description="VAT",
        amount=Decimal("11.00"),
        period_start=OCT,
        period_end=NOV,
    )
    run = simulation_run_start(
        organization=tenant_a.org,
        plan_key="pro",
        plan_version=1,
        period_start=OCT,
        period_end=NOV,
        customer_ids=[small.id],
    )
    assert run.results[0]["simulated"] == "59.00"
    assert Decimal(run.results[0]["actual"]) == Decimal("55.00")  # net of tax
    assert Decimal(run.results[0]["difference"]) == Decimal("4.00")


def test_validation(tenant_a, world):
    from core.errors import ValidationFailed

    _plan, small, *_ = world
    with pytest.raises(ValidationFailed):
        simulation_run_start(
            organization=tenant_a.org,
            plan_key="pro",
            plan_version=9,
            period_start=OCT,
            period_end=NOV,
            customer_ids=[small.id],
        )
    with pytest.raises(ValidationFailed):
        simulation_run_start(
            organization=tenant_a.org,
            plan_key="pro",
            plan_version=1,
            period_start=NOV,
            period_end=OCT,
            customer_ids=[small.id],
        )
    assert not SimulationRun.objects.exists()


def test_console_simulation_pages(client, tenant_a, tenant_b, world):
    _plan, small, big, _idle, _other = world
    client.login(username=tenant_a.user.username, password=PASSWORD)
    html = client.get("/console/simulations/new?plan=pro&version=1").content.decode()
    assert 'value="pro:1" selected' in html
    r = client.post(
        "/console/simulations/new",
        {"plan": "pro:1", "start": "2026-10-01", "end": "2026-11-01", "customers": [small.id, big.id]},
    )
    assert r.status_code == 302
    run = SimulationRun.objects.get(organization=tenant_a.org)
    html = client.get(r["Location"]).content.decode()
    assert 'id="total-simulated">140.00 USD' in html
    # Another organization's user cannot open it by id.
    client.logout()
    client.login(username=tenant_b.user.username, password=PASSWORD)
    assert client.get(f"/console/simulations/{run.id}/").status_code == 404


def test_large_runs_go_to_celery_and_show_progress(
    tenant_a, world, monkeypatch, django_capture_on_commit_callbacks
):
    _plan, small, big, _idle, _other = world
    monkeypatch.setattr(services, "INLINE_MAX", 1)
    queued = []
    monkeypatch.setattr(tasks.simulation_run_task, "apply_async", lambda args, kwargs: queued.append(args[0]))
    with django_capture_on_commit_callbacks(execute=True):
        run = simulation_run_start(
            organization=tenant_a.org,
            plan_key="pro",
            plan_version=1,
            period_start=OCT,
            period_end=NOV,
            all_on_plan="",
            customer_ids=[small.id, big.id],
        )
    assert queued == [run.id] and run.status == SimulationStatus.PENDING
    tasks.simulation_run_task(run.id)
    tasks.simulation_run_task(run.id)  # twice: no change
    run.refresh_from_db()
    assert run.status == SimulationStatus.DONE and run.percent == 100 and len(run.results) == 2


@pytest.mark.parametrize("key", ["small", "big", "idle"])
def test_simulation_equals_invoicing_the_same_usage_on_the_draft_plan(tenant_a, world, key):
    """Subscribe the customer to the draft plan's steady-state rate cards (as billing materialises them),
    let invoicing bill October, and compare with the simulation of that plan for October."""
    from billing.models import Customer, Subscription, SubscriptionItem
    from invoicing.services import invoice_draft_for_period
    from invoicing.sources import DuePeriod

    plan = world[0]
    customer = Customer.objects.get(organization=tenant_a.org, key=key)
    sub = Subscription.objects.create(
        organization=tenant_a.org,
        customer=customer,
        plan_key="pro",
        plan_version=1,
        name="Pro",
        currency="USD",
        billing_anchor=OCT,
        active_from=OCT,
    )
    for card in plan.phases[-1]["rateCards"]:
        SubscriptionItem.objects.create(
            organization=tenant_a.org,
            subscription=sub,
            key=card["key"],
            name=card["name"],
            feature_key=card.get("featureKey") or "",
            price=card["price"],
            discounts=card.get("discounts"),
            payment_term=card["price"].get("paymentTerm", "in_arrears"),
            billing_cadence=card["billingCadence"],
            active_from=OCT,
        )
    due = DuePeriod(customer_id=customer.id, currency="USD", period_start=OCT, period_end=NOV)
    invoice = invoice_draft_for_period(organization=tenant_a.org, due=due)
    # the Nov 1 invoice also bills November's in-advance fee: compare October's service only
    october = [x for x in invoice.lines.all() if x.billing_period_start == OCT]
    invoiced_net = sum((x.amount for x in october if x.type != "tax"), Decimal(0))
    run = simulation_run_start(
        organization=tenant_a.org,
        plan_key="pro",
        plan_version=1,
        period_start=OCT,
        period_end=NOV,
        customer_ids=[customer.id],
    )
    assert Decimal(run.results[0]["simulated"]) == invoiced_net
    assert Decimal(run.results[0]["actual"]) == invoiced_net  # the draft invoice's lines are what was billed
