"""Faults injected into a real running stack (tests/faults/conftest.py): the embedded PostgreSQL stopped
and started under ingest load, the broker killed and brought back. Exact counts, read straight from the
stack's database; a second organization's data must never move."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from config import embedded_pg
from tests.faults.conftest import Stack, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.processes]

BATCH = 10


def _events(source: str, batch: int) -> list[dict]:
    return [
        {
            "specversion": "1.0",
            "id": f"{batch}-{i}",
            "source": source,
            "type": "fault.ping",
            "subject": f"subject-{i % 3}",
            "time": "2026-11-20T12:00:00Z",
            "data": {"n": 1},
        }
        for i in range(BATCH)
    ]


def _post_batch(stack: Stack, events: list[dict], timeout: float = 5) -> int:
    req = urllib.request.Request(
        stack.base_url + "/api/v1/events",
        data=json.dumps(events).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {stack.key}",
            "Content-Type": "application/cloudevents-batch+json",
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, TimeoutError):
        return 0  # no answer: connection refused or reset, timeout


def _stored(stack: Stack, source: str) -> tuple[int, int]:
    rows = stack.sql(
        "SELECT count(*), count(DISTINCT event_id) FROM metering_event WHERE source = %s", (source,)
    )
    return rows[0]


def _ensure_meter(stack: Stack) -> None:
    status, body = stack.request("GET", "/api/v1/meters/fault_pings")
    if status == 404:
        status, body = stack.request(
            "POST",
            "/api/v1/meters",
            {"slug": "fault_pings", "eventType": "fault.ping", "aggregation": "COUNT"},
        )
        assert status == 201, body


def _counted(stack: Stack) -> int:
    status, body = stack.request(
        "GET", "/api/v1/meters/fault_pings/query?from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z"
    )
    assert status == 200, body
    return int(sum(float(row["value"]) for row in json.loads(body)["data"]))


def _bystander_rows(stack: Stack) -> int:
    return stack.sql(
        "SELECT count(*) FROM metering_event e JOIN core_organization o ON o.id = e.organization_id "
        "WHERE o.slug = 'bystander'"
    )[0][0]


def test_postgres_stopped_and_started_while_clients_ingest_with_retries(stack):
    """Three clients send 90 batches of 10 events (paced: about 4 s of traffic), each retrying a batch until
    it is answered 204, while
    the embedded PostgreSQL is stopped (fast shutdown) for two seconds and started again. Every event
    acknowledged with 204 is stored and counted exactly once: a retry of a batch whose answer was lost
    is deduplicated on (source, id)."""
    _ensure_meter(stack)
    before = _counted(stack)
    source = f"pg-restart-{uuid.uuid4().hex[:8]}"
    pending = list(range(90))
    lock = threading.Lock()
    acknowledged: list[int] = []
    refused: list[int] = []  # answers other than 204 (and no answer at all) seen during the outage
    deadline = time.monotonic() + 90

    def client() -> None:
        while True:
            with lock:
                if not pending:
                    return
                batch = pending.pop(0)
            while time.monotonic() < deadline:
                status = _post_batch(stack, _events(source, batch))
                if status == 204:
                    with lock:
                        acknowledged.append(batch)
                    time.sleep(0.1)
                    break
                with lock:
                    refused.append(status)
                time.sleep(0.2)

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    wait_for(lambda: len(acknowledged) >= 10, 30, "ten batches acknowledged before the fault")
    embedded_pg.server_stop(stack.pg, forget_handles=False)
    assert not embedded_pg.server_running(stack.pg)
    time.sleep(2)
    embedded_pg.server_start(stack.pg)
    for t in threads:
        t.join(timeout=120)
    assert sorted(acknowledged) == list(range(90))
    assert refused, "the outage should have refused some requests"
    assert set(refused) <= {0, 500, 502, 503}, refused  # no answer, or an error: never a false 204 or a 400
    # the drain (Celery beat every 10 s, and web processes after each accept) stores every batch, once
    wait_for(lambda: _stored(stack, source) == (900, 900), 60, "the 900 acknowledged events to be stored")
    assert _counted(stack) - before == 900
    assert stack.sql("SELECT count(*) FROM metering_inboxbatch WHERE failed_at IS NOT NULL")[0][0] == 0
    assert _bystander_rows(stack) == 0
    assert stack.healthy()["database"]["status"] == "ok"


def test_broker_unreachable_ingest_still_accepts_and_the_drain_catches_up(stack):
    """The Redis broker is killed: ingest still answers 204 at once (the request only writes the inbox;
    asking for a drain fails quietly), nothing is stored while no worker gets a task, and once the
    broker is back the periodic drain stores every accepted event exactly once."""
    _ensure_meter(stack)
    before = _counted(stack)
    source = f"broker-down-{uuid.uuid4().hex[:8]}"
    stack.redis.kill()
    try:
        statuses = [_post_batch(stack, _events(source, b), timeout=10) for b in range(20)]
        assert statuses == [204] * 20
        time.sleep(3)
        assert _stored(stack, source) == (0, 0)  # accepted, waiting in the inbox for a drain
    finally:
        stack.redis.start()
    wait_for(lambda: _stored(stack, source) == (200, 200), 60, "the drain to store the 200 events")
    assert _counted(stack) - before == 200
    assert _bystander_rows(stack) == 0


def _pool_children(stack: Stack) -> list:
    """The Celery worker's pool processes (children of the `celery ... worker` process)."""
    import psutil

    workers = [
        p
        for p in psutil.Process(stack.proc.pid).children(recursive=True)
        if "worker" in " ".join(p.cmdline()) and "celery" in " ".join(p.cmdline())
    ]
    mains = [w for w in workers if w.ppid() == stack.proc.pid]
    return [c for m in mains for c in m.children()]


def _subscribed_since(closed_months: int) -> str:
    """An `activeFrom` (the billing anchor too) for a subscription whose start and `closed_months` monthly
    periods are due now, whatever today's date: `closed_months` monthly periods before six hours ago (the
    last period closed six hours ago, past the default collection delay of an hour; the start, at most 92
    days before that for three months, stays within the clock's 93-day look-back, `invoicing/sources.py`)."""
    from billing.periods import Cadence, period_start

    anchor = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
    return period_start(anchor, Cadence.parse("P1M"), -closed_months, "UTC").isoformat()


def _invoicing_tenant(stack: Stack, customers: int, since: str) -> None:
    plan = {
        "key": "flat",
        "name": "Flat",
        "currency": "USD",
        "billingCadence": "P1M",
        "phases": [
            {
                "key": "standard",
                "name": "Standard",
                "duration": None,
                "rateCards": [
                    {
                        "type": "flat_fee",
                        "key": "base",
                        "name": "Base fee",
                        "billingCadence": "P1M",
                        "price": {"type": "flat", "amount": "10", "paymentTerm": "in_advance"},
                    }
                ],
            }
        ],
    }
    status, body = stack.request("POST", "/api/v1/plans", plan)
    assert status == 201, body
    status, body = stack.request("POST", f"/api/v1/plans/{json.loads(body)['id']}/publish", {})
    assert status == 200, body
    for i in range(customers):
        status, body = stack.request(
            "POST",
            "/api/v1/customers",
            {
                "key": f"c{i:03}",
                "name": f"Customer {i}",
                "currency": "USD",
                "usageAttribution": {"subjectKeys": [f"s{i}"]},
            },
        )
        assert status == 201, body
        status, body = stack.request(
            "POST",
            "/api/v1/subscriptions",
            {"customerKey": f"c{i:03}", "plan": {"key": "flat"}, "activeFrom": since},
        )
        assert status == 201, body


def test_worker_killed_in_the_middle_of_an_invoice_run_then_rerun(stack):
    """An invoice run over 150 customers (subscribed three months ago: the start and three closed monthly
    periods are due) while the Celery worker's pool process is killed with SIGKILL once the first batch
    is done. Celery requeues the lost batch (acks late, reject on worker lost), the operator starts a
    rerun, and in the end every run item is done, no billing moment has two invoices, and the numbers
    are gapless."""
    import signal as signals

    _invoicing_tenant(stack, customers=150, since=_subscribed_since(3))
    org = stack.sql("SELECT id FROM core_organization WHERE slug = 'faults'")[0][0]
    status, body = stack.request("POST", "/api/v1/billing/invoice-runs", {})
    assert status == 202, body
    due = json.loads(body)["total"]
    assert due == 600

    def items_done() -> int:
        return stack.sql(
            "SELECT count(*) FROM invoicing_invoicerunitem WHERE organization_id = %s AND status = 'done'",
            (org,),
        )[0][0]

    wait_for(lambda: items_done() > 0, 90, "the first batch", interval=0.02)
    killed = _pool_children(stack)
    assert killed, "a pool process to kill"
    for proc in killed:
        proc.send_signal(signals.SIGKILL)
    assert items_done() < due, "the run should still have been in progress when the worker was killed"
    status, body = stack.request("POST", "/api/v1/billing/invoice-runs", {})  # the operator's rerun
    assert status in (202, 204), body  # 204: nothing left to schedule
    wait_for(lambda: items_done() == due, 120, f"all {due} run items done")
    time.sleep(2)  # nothing more arrives
    duplicates = stack.sql(
        "SELECT customer_id, kind, period_start FROM invoicing_invoice WHERE organization_id = %s "
        "GROUP BY 1, 2, 3 HAVING count(*) > 1",
        (org,),
    )
    assert duplicates == []
    invoices, linked, pending = stack.sql(
        "SELECT (SELECT count(*) FROM invoicing_invoice WHERE organization_id = %s), "
        "(SELECT count(DISTINCT invoice_id) FROM invoicing_invoicerunitem WHERE organization_id = %s), "
        "(SELECT count(*) FROM invoicing_invoicerunitem WHERE organization_id = %s AND status <> 'done')",
        (org, org, org),
    )[0]
    assert (invoices, pending) == (linked, 0)
    assert invoices >= 570  # a run item may end without an invoice when nothing was due
    numbers = sorted(
        int(n.rsplit("-", 1)[-1])
        for (n,) in stack.sql(
            "SELECT number FROM invoicing_invoice WHERE organization_id = %s AND number <> ''", (org,)
        )
    )
    assert numbers == list(range(1, len(numbers) + 1))  # gapless
    assert stack.sql(
        "SELECT count(*) FROM invoicing_invoice i JOIN core_organization o ON o.id = i.organization_id "
        "WHERE o.slug = 'bystander'"
    ) == [(0,)]


def test_stripe_errors_and_timeouts_are_retried_with_the_same_idempotency_key(stack):
    """Stripe (tests/faults/fake_stripe.py, its own process) answers 429, 500 and too late (a timeout
    after doing the work) on the first attempts of every call. The pushes still complete, every retry
    carries the same idempotency key as the attempt it repeats, and nothing is created twice: one Stripe
    customer, one Stripe invoice per invoice, one item per line, one finalize per invoice."""
    stack.manage("org_create", "--slug", "stripeco", "--name", "Stripe Co")
    key = stack.manage("apikey_create", "--org", "stripeco", "--scopes", "admin").strip().splitlines()[-1]
    admin = Stack(**{**stack.__dict__, "key": key})
    status, body = admin.request(
        "PUT",
        "/api/v1/apps/stripe",
        {"secretKey": "sk_test_faultsuite0000000000", "collectionMethod": "send_invoice"},
    )
    assert status == 200, body
    _invoicing_tenant(admin, customers=1, since=_subscribed_since(1))
    status, body = admin.request("POST", "/api/v1/billing/invoice-runs", {})
    assert status == 202, body
    org = stack.sql("SELECT id FROM core_organization WHERE slug = 'stripeco'")[0][0]

    def pushed() -> list[tuple]:
        return stack.sql(
            "SELECT id, stripe_invoice_id, stripe_status FROM invoicing_invoice WHERE organization_id = %s",
            (org,),
        )

    wait_for(
        lambda: (rows := pushed()) and all(r[2] == "open" for r in rows), 90, "the invoices to be finalized"
    )
    invoices = pushed()
    assert len(invoices) == 2  # the start (its first month in advance) and the end of that month (the next)
    assert len({r[1] for r in invoices}) == 2
    lines = stack.sql(
        "SELECT count(*) FROM invoicing_invoiceline l JOIN invoicing_invoice i ON i.id = l.invoice_id "
        "WHERE i.organization_id = %s AND l.stripe_invoice_item_id <> ''",
        (org,),
    )[0][0]
    log = [json.loads(line) for line in stack.stripe_log.read_text().splitlines()]
    created = [e for e in log if "created" in e]
    by_path: dict[str, int] = {}
    for e in created:
        kind = "finalize" if e["path"].endswith("/finalize") else e["path"]
        by_path[kind] = by_path.get(kind, 0) + 1
    assert by_path == {"/v1/customers": 1, "/v1/invoices": 2, "/v1/invoiceitems": lines, "finalize": 2}
    assert lines == 2
    assert all(e["key"] for e in log)  # every request carries an idempotency key
    keys = {e["key"] for e in log}
    assert len(keys) == len(created)  # one key per object: a retry never mints a new key
    for k in keys:  # each key's attempts are 1, 2, ... and exactly one of them created the object
        attempts = [e for e in log if e["key"] == k]
        assert [e["attempt"] for e in attempts] == list(range(1, len(attempts) + 1))
        assert sum("created" in e for e in attempts) == 1
    actions = {e["action"] for e in log}
    assert {"429", "500", "create-slow", "replay"} <= actions  # every fault was injected and survived


def _tenant(stack: Stack, slug: str) -> tuple[Stack, str]:
    stack.manage("org_create", "--slug", slug, "--name", f"{slug.title()} Inc")
    key = stack.manage("apikey_create", "--org", slug, "--scopes", "admin").strip().splitlines()[-1]
    org = stack.sql("SELECT id FROM core_organization WHERE slug = %s", (slug,))[0][0]
    return Stack(**{**stack.__dict__, "key": key}), org


def test_a_poison_tenant_leaves_every_other_tenant_unaffected(stack):
    """Two tenants on the running stack, each with a meter, a metered entitlement and three subscribed
    customers. The poison tenant's meter definition and one customer's price are corrupted in the database
    (what a bug or a bad hand edit leaves behind). The all-tenant rollup job (beat) records the poison
    meter's failure and goes on; the healthy tenant's rollups advance, its value check answers, and its
    invoice run invoices everyone. The poison tenant's run invoices its two sound customers and marks the
    third failed with the reason."""
    now = datetime.now(UTC)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    month = month_start.isoformat()
    # a few minutes ago, but never before this month's usage period (a run in a month's first minutes)
    event_time = max(now - timedelta(minutes=5), month_start).isoformat()
    tenants = {}
    for slug in ("poisoned", "healthy"):
        admin, org = _tenant(stack, slug)
        _invoicing_tenant(admin, customers=3, since=_subscribed_since(1))
        status, body = admin.request(
            "POST", "/api/v1/meters", {"slug": "pings", "eventType": "ping", "aggregation": "COUNT"}
        )
        assert status == 201, body
        status, body = admin.request(
            "POST", "/api/v1/features", {"key": "pings", "name": "Pings", "meterSlug": "pings"}
        )
        assert status == 201, body
        status, body = admin.request(
            "POST",
            "/api/v2/customers/c000/entitlements",
            {
                "type": "metered",
                "featureKey": "pings",
                "usagePeriod": {"interval": "MONTH", "anchor": month},
                "measureUsageFrom": month,
                "issueAfterReset": 100,
            },
        )
        assert status == 201, body
        events = [
            {"specversion": "1.0", "id": f"{slug}-{i}", "source": "faults", "type": "ping", "subject": "s0",
             "time": event_time, "data": {}}
            for i in range(7)
        ]  # fmt: skip
        status, body = admin.request("POST", "/api/v1/events", events)
        assert status == 204, body
        tenants[slug] = (admin, org)
    poisoned_org = tenants["poisoned"][1]
    stack.sql(
        "UPDATE metering_meter SET aggregation = 'SUM', value_property = '$[' WHERE organization_id = %s "
        "RETURNING id",
        (poisoned_org,),
    )
    stack.sql(
        'UPDATE billing_subscriptionitem SET price = \'{"type": "flat", "amount": "oops"}\' '
        "WHERE organization_id = %s AND subscription_id IN (SELECT s.id FROM billing_subscription s "
        "JOIN billing_customer c ON c.id = s.customer_id WHERE c.key = 'c000') RETURNING id",
        (poisoned_org,),
    )
    healthy, healthy_org = tenants["healthy"]

    def watermark() -> int:
        rows = stack.sql(
            "SELECT r.watermark FROM metering_rollupstate r JOIN metering_meter m ON m.id = r.meter_id "
            "WHERE m.organization_id = %s",
            (healthy_org,),
        )
        return rows[0][0] if rows else 0

    wait_for(lambda: watermark() > 0, 150, "the healthy tenant's rollups to advance (beat, every minute)")
    wait_for(
        lambda: (
            stack.sql("SELECT count(*) FROM core_jobfailure WHERE organization_id = %s", (poisoned_org,))[0][
                0
            ]
            > 0
        ),
        30,
        "the poison meter's failure to be recorded",
    )
    status, body = healthy.request("GET", "/api/v1/customers/c000/entitlements/pings/value")
    assert status == 200, body
    assert json.loads(body)["usage"] == 7 and json.loads(body)["balance"] == 93

    for slug in ("poisoned", "healthy"):
        status, body = tenants[slug][0].request("POST", "/api/v1/billing/invoice-runs", {})
        assert status == 202, body

    def items(org: str) -> dict[str, int]:
        return dict(
            stack.sql(
                "SELECT status, count(*) FROM invoicing_invoicerunitem WHERE organization_id = %s GROUP BY 1",
                (org,),
            )
        )

    # each customer has two moments: its start (its first month in advance) and the end of that month
    wait_for(lambda: items(healthy_org) == {"done": 6}, 90, "the healthy tenant's run")
    wait_for(lambda: items(poisoned_org) == {"done": 4, "failed": 2}, 90, "the poisoned tenant's run")
    errors = stack.sql(
        "SELECT DISTINCT error FROM invoicing_invoicerunitem WHERE organization_id = %s AND status = 'failed'",
        (poisoned_org,),
    )
    assert all("amount" in e for (e,) in errors), errors
    assert stack.sql(
        "SELECT count(*) FROM invoicing_invoice WHERE organization_id = %s AND status = 'issued'",
        (healthy_org,),
    ) == [(6,)]
    assert stack.sql(
        "SELECT count(*) FROM invoicing_invoice WHERE organization_id = %s AND status = 'issued'",
        (poisoned_org,),
    ) == [(4,)]


def _signed(payload: dict, secret: str, at: int) -> tuple[bytes, str]:
    import hashlib
    import hmac

    body = json.dumps(payload).encode()
    sig = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={at},v1={sig}"


def test_stripe_webhooks_twice_out_of_order_and_late_are_applied_once_in_order(stack):
    """Stripe's webhooks reach the running stack (web, then the worker) twice, out of order and late:
    `invoice.payment_failed` after `invoice.paid` is ignored, a resent event is stored and applied once,
    and an event signed outside the tolerance is refused; the invoice ends paid, with one paid transition."""
    admin, org = _tenant(stack, "hooks")
    secret = "whsec_faultsuite_webhook_secret"
    status, body = admin.request(
        "PUT",
        "/api/v1/apps/stripe",
        {
            "secretKey": "sk_test_faultsuite0000000001",
            "webhookSecret": secret,
            "collectionMethod": "send_invoice",
        },
    )
    assert status == 200, body
    _invoicing_tenant(admin, customers=1, since=_subscribed_since(1))
    status, body = admin.request("POST", "/api/v1/billing/invoice-runs", {})
    assert status == 202, body

    def pushed() -> list[tuple]:
        return stack.sql(
            "SELECT id, stripe_invoice_id, status FROM invoicing_invoice WHERE organization_id = %s "
            "AND stripe_status = 'open' ORDER BY period_end, id",
            (org,),
        )

    wait_for(lambda: len(pushed()) == 2, 90, "both invoices pushed to Stripe")
    invoice_id, stripe_id, _ = pushed()[0]

    def send(event_id: str, type_: str, at: int) -> int:
        payload = {
            "id": event_id,
            "object": "event",
            "type": type_,
            "created": at,
            "data": {
                "object": {
                    "id": stripe_id,
                    "object": "invoice",
                    "metadata": {"meterline_invoice_id": invoice_id},
                }
            },
        }
        body, sig = _signed(payload, secret, at)
        req = urllib.request.Request(
            f"{stack.base_url}/api/v1/apps/stripe/webhook/hooks",
            data=body,
            method="POST",
            headers={"Stripe-Signature": sig, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code

    now = int(time.time())
    assert send("evt_paid", "invoice.paid", now) == 200
    assert send("evt_paid", "invoice.paid", now) == 200  # delivered twice
    assert send("evt_failed_earlier", "invoice.payment_failed", now - 60) == 200  # out of order, after paid
    assert send("evt_late", "invoice.voided", now - 3600) == 400  # signed an hour ago: outside the tolerance

    def status_of() -> str:
        return stack.sql("SELECT status FROM invoicing_invoice WHERE id = %s", (invoice_id,))[0][0]

    wait_for(lambda: status_of() == "paid", 60, "the invoice to be paid")
    wait_for(
        lambda: (
            stack.sql(
                "SELECT count(*) FROM invoicing_stripeevent WHERE organization_id = %s AND processed_at IS NOT NULL",
                (org,),
            )[0][0]
            == 2
        ),
        60,
        "both stored events processed",
    )
    time.sleep(2)  # nothing else arrives
    assert status_of() == "paid"
    assert stack.sql(
        "SELECT stripe_event_id FROM invoicing_stripeevent WHERE organization_id = %s ORDER BY 1", (org,)
    ) == [("evt_failed_earlier",), ("evt_paid",)]
    assert stack.sql(
        "SELECT count(*) FROM core_auditlog WHERE organization_id = %s AND action = 'invoice.paid'", (org,)
    ) == [(1,)]
