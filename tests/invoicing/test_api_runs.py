"""Invoice runs API: start a run now for one customer or the whole organization (202 with the run, its
progress and its links; nothing due → 204), list and detail with items, the invoices of a run, scopes,
a query budget, and tenant B's runs and customers never visible to A."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from invoicing.models import Invoice, InvoiceRun
from tests.invoicing.conftest import make_customer, make_subscription

OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 1, 2, tzinfo=UTC)  # October closed 2 h ago; collection delay 1 h
RUNS = "/api/v1/billing/invoice-runs"


BASE = {"key": "base", "price": {"type": "flat", "amount": "5", "paymentTerm": "in_advance"}}


def subscribe(tenant, usage, key: str, calls: int, *, unit: str = "0.25"):
    """From Oct 1: a base fee of 5.00 in advance and `unit` per call, `calls` calls in October. Two billing
    moments are due on Nov 1, 02:00: the start (Oct 1: October's base fee, 5.00) and the end of October
    (November's base fee in advance + October's calls: 5.00 + calls x 0.25)."""
    c = make_customer(tenant, key)
    make_subscription(
        tenant,
        c,
        anchor=OCT,
        items=[
            BASE,
            {"key": "calls", "feature_key": "calls", "price": {"type": "unit", "amount": unit}},
        ],
    )
    usage.add(c, "calls", datetime(2026, 10, 5, tzinfo=UTC), calls)
    return c


def invoices(tenant, customer) -> dict[str, Invoice]:
    return {i.kind: i for i in Invoice.objects.filter(organization=tenant.org, customer=customer)}


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def test_start_for_one_customer_then_the_rest(tenant_a, tenant_b, usage, django_capture_on_commit_callbacks):
    initech = subscribe(tenant_a, usage, "initech", 40)  # start 5.00; October 5.00 + 40 x 0.25 = 15.00
    hooli = subscribe(tenant_a, usage, "hooli", 8)  # start 5.00; October 5.00 + 8 x 0.25 = 7.00
    umbrella = subscribe(tenant_b, usage, "umbrella", 4)  # B's: start 5.00; October 5.00 + 1.00 = 6.00
    make_customer(tenant_b, "initech")  # B has a customer with A's key, and nothing due
    admin = tenant_a.client()

    assert tenant_a.client("read").post(RUNS, {}, format="json").status_code == 403
    assert admin.post(RUNS, {"customerId": "nobody"}, format="json").status_code == 404
    assert admin.post(RUNS, {"customerId": umbrella.id}, format="json").status_code == 404
    assert InvoiceRun.objects.count() == 0

    with django_capture_on_commit_callbacks(execute=True) as queued:
        r = admin.post(RUNS, {"customerId": "initech"}, format="json")
    assert r.status_code == 202, r.content
    run = r.json()
    # two billing moments of initech are due: its start and the end of October. The answer is written
    # before the queued batch runs: the run is in progress.
    assert run == {
        "id": run["id"],
        "status": "running",
        "startedAt": "2026-11-01T02:00:00Z",
        "finishedAt": None,
        "total": 2,
        "done": 0,
        "failed": 0,
        "links": {
            "self": f"{RUNS}/{run['id']}",
            "invoices": f"/api/v1/billing/invoices?runId={run['id']}",
        },
    }
    assert r["Location"] == f"{RUNS}/{run['id']}"
    assert len(queued) == 1  # one batch task, queued after commit (run eagerly here)

    got = invoices(tenant_a, initech)
    assert {k: (i.status, i.total) for k, i in got.items()} == {
        "start": ("issued", 5),
        "period": ("issued", 15),
    }
    detail = tenant_a.client("read").get(f"{RUNS}/{run['id']}").json()
    assert {k: detail[k] for k in ("status", "total", "done", "failed", "finishedAt")} == {
        "status": "done",
        "total": 2,
        "done": 2,
        "failed": 0,
        "finishedAt": "2026-11-01T02:00:00Z",
    }
    page = detail["items"]
    assert (page["totalCount"], page["page"], page["pageSize"]) == (2, 1, 100)
    common = {
        "customerId": initech.id,
        "customerKey": "initech",
        "customerName": "Initech Ltd",
        "currency": "USD",
        "periodStart": "2026-10-01T00:00:00Z",
        "periodEnd": "2026-11-01T00:00:00Z",
        "status": "done",
        "error": "",
        "attempts": 1,
    }
    items = sorted(page["items"], key=lambda i: i["kind"])
    assert [{k: v for k, v in i.items() if k != "id"} for i in items] == [
        {**common, "kind": "period", "invoiceId": got["period"].id},
        {**common, "kind": "start", "invoiceId": got["start"].id},
    ]
    assert not Invoice.objects.filter(customer=hooli).exclude(status="gathering").exists()
    # the run's invoices link: initech's two, nothing of hooli's or of B's
    issued = tenant_a.client("read").get(run["links"]["invoices"]).json()
    assert sorted(i["id"] for i in issued["items"]) == sorted(i.id for i in got.values())
    assert tenant_b.client("read").get(run["links"]["invoices"]).json()["totalCount"] == 0

    # the same customer again: nothing due is not an error, and no run is recorded
    again = admin.post(RUNS, {"customerId": initech.id}, format="json")
    assert (again.status_code, again.content) == (204, b"")
    assert InvoiceRun.objects.filter(organization=tenant_a.org).count() == 1

    # the whole organization: only hooli is left; B's umbrella is not A's to invoice
    later = datetime(2026, 11, 1, 2, 5, tzinfo=UTC)
    with time_machine.travel(later, tick=False), django_capture_on_commit_callbacks(execute=True):
        rest = admin.post(RUNS, {}, format="json")
    assert rest.status_code == 202 and rest.json()["total"] == 2  # hooli's start and October
    assert {k: i.total for k, i in invoices(tenant_a, hooli).items()} == {"start": 5, "period": 7}
    assert not Invoice.objects.filter(customer=umbrella).exists()
    nothing = admin.post(RUNS, {}, format="json")
    assert nothing.status_code == 204

    listed = tenant_a.client("read").get(RUNS).json()
    assert listed["totalCount"] == 2
    assert [x["id"] for x in listed["items"]] == [rest.json()["id"], run["id"]]  # newest first
    only_failed = tenant_a.client("read").get(f"{RUNS}/{run['id']}", {"status": "failed"}).json()
    assert only_failed["items"]["totalCount"] == 0
    assert tenant_a.client("read").get(f"{RUNS}/{run['id']}", {"status": "x"}).status_code == 400

    # tenant B sees none of A's runs, and its own run invoices only its customer
    assert tenant_b.client("read").get(RUNS).json()["totalCount"] == 0
    assert tenant_b.client("read").get(f"{RUNS}/{run['id']}").status_code == 404
    assert tenant_b.client().post(RUNS, {"customerId": "hooli"}, format="json").status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        b_run = tenant_b.client().post(RUNS, {}, format="json")
    assert b_run.status_code == 202
    b_detail = tenant_b.client("read").get(f"{RUNS}/{b_run.json()['id']}").json()
    assert [i["customerKey"] for i in b_detail["items"]["items"]] == ["umbrella", "umbrella"]
    assert {k: i.total for k, i in invoices(tenant_b, umbrella).items()} == {"start": 5, "period": 6}
    assert tenant_a.client("read").get(RUNS).json()["totalCount"] == 2


def test_list_and_detail_query_budget(tenant_a, tenant_b, usage, django_capture_on_commit_callbacks):
    subscribe(tenant_b, usage, "umbrella", 4)
    with django_capture_on_commit_callbacks(execute=True):
        tenant_b.client().post(RUNS, {}, format="json")
    first = subscribe(tenant_a, usage, "initech", 40)

    def count(path: str) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert tenant_a.client("read").get(path).status_code == 200
        return len(ctx.captured_queries)

    with django_capture_on_commit_callbacks(execute=True):
        run_id = tenant_a.client().post(RUNS, {"customerId": first.id}, format="json").json()["id"]
    count(RUNS)  # warm the API key cache
    # list: API key, count, page; detail: API key, run, item count, item page (customers joined);
    # the first run holds 2 items (initech's start and October), the second 6 (3 customers x 2)
    small = (count(RUNS), count(f"{RUNS}/{run_id}"))
    assert small == (3, 4)
    for key in ("hooli", "globex", "soylent"):
        subscribe(tenant_a, usage, key, 1)
    with django_capture_on_commit_callbacks(execute=True):
        big_id = tenant_a.client().post(RUNS, {}, format="json").json()["id"]
    assert (count(RUNS), count(f"{RUNS}/{big_id}")) == small
    assert tenant_a.client("read").get(f"{RUNS}/{big_id}").json()["items"]["totalCount"] == 6  # 3 x 2


def test_one_bad_customer_fails_alone(tenant_a, tenant_b, usage, django_capture_on_commit_callbacks):
    """A stored price the engine cannot rate (NaN) fails its customer's October moment with the reason;
    the batch falls back to one item at a time, so initech is still invoiced (15.00 for October)."""
    initech = subscribe(tenant_a, usage, "initech", 40)
    wonka = subscribe(tenant_a, usage, "wonka", 3, unit="NaN")
    subscribe(tenant_b, usage, "wonka", 2)  # B's wonka is fine and not part of A's run
    with django_capture_on_commit_callbacks(execute=True):
        run_id = tenant_a.client().post(RUNS, {}, format="json").json()["id"]
    detail = tenant_a.client("read").get(f"{RUNS}/{run_id}").json()
    failed = tenant_a.client("read").get(f"{RUNS}/{run_id}", {"status": "failed"}).json()["items"]
    # 4 moments: the start and October of each customer; wonka's start bills only its base fee and is
    # invoiced, its October rates the NaN price and fails
    assert {k: detail[k] for k in ("status", "total", "done", "failed")} == {
        "status": "failed",
        "total": 4,
        "done": 3,
        "failed": 1,
    }
    assert failed["totalCount"] == 1
    [item] = failed["items"]
    assert (item["customerKey"], item["kind"], item["status"], item["invoiceId"]) == (
        "wonka",
        "period",
        "failed",
        None,
    )
    assert item["error"] == (
        "PriceInvalid: price.amount: 'NaN' must be a plain decimal (no exponent, infinity or NaN)."
    )
    assert {k: i.total for k, i in invoices(tenant_a, initech).items()} == {"start": 5, "period": 15}
    assert {k: i.total for k, i in invoices(tenant_a, wonka).items() if i.status != "gathering"} == {
        "start": 5
    }
    assert tenant_b.client("read").get(RUNS).json()["totalCount"] == 0
