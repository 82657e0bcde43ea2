"""Customer credits API: create (validated, decimal strings only), list with remaining balance and status,
detail with where each credit was applied, void (never applied again; what it paid stays paid), scopes,
audit rows, a query budget, and tenant B's credits never visible to A (or the other way round)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.models import AuditLog
from invoicing.models import CreditApplication, CustomerCredit, Invoice
from invoicing.runs import invoice_run_item_process, invoice_runs_schedule
from tests.invoicing.conftest import make_customer, make_subscription

OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 1, 2, tzinfo=UTC)


def url(customer: str, *rest: str) -> str:
    return "/".join([f"/api/v1/customers/{customer}/credits", *rest])


def subscribe(tenant, usage, key: str, *, calls: int = 40, currency: str = "USD"):
    """A customer on 0.25 per call; `calls` in October."""
    c = make_customer(tenant, key, currency=currency)
    make_subscription(
        tenant,
        c,
        anchor=OCT,
        currency=currency,
        items=[{"key": "calls", "feature_key": "calls", "price": {"type": "unit", "amount": "0.25"}}],
    )
    usage.add(c, "calls", datetime(2026, 10, 5, tzinfo=UTC), calls)
    return c


def invoice_october(tenant, customer) -> Invoice:
    """The customer's due billing moments: its start (Oct 1; no in-advance fee, so no invoice) and the end
    of October (the usage invoice, returned)."""
    items = invoice_runs_schedule(now=NOW, organization=tenant.org, customer_id=customer.id)
    invoices = [invoice_run_item_process(item_id=item, now=NOW) for item in items]
    [invoice] = [i for i in invoices if i is not None]
    assert (invoice.kind, invoice.period_start, invoice.period_end) == ("period", OCT, NOW.replace(hour=0))
    return invoice


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def test_create_list_detail_scopes_audit_and_isolation(tenant_a, tenant_b, usage):
    a = make_customer(tenant_a, "initech")
    b = make_customer(tenant_b, "initech")  # same key in the other tenant
    admin = tenant_a.client()
    r = admin.post(
        url("initech"),
        {"amount": "25.00", "description": "Welcome", "expiresAt": "2027-01-01T00:00:00Z"},
        format="json",
    )
    assert r.status_code == 201, r.content
    first = r.json()
    assert first == {
        "id": first["id"],
        "customerId": a.id,
        "currency": "USD",  # the customer's currency
        "amount": "25",
        "applied": "0",
        "remaining": "25",
        "status": "active",
        "description": "Welcome",
        "priority": 1,
        "expiresAt": "2027-01-01T00:00:00Z",
        "voidedAt": None,
        "createdAt": "2026-11-01T02:00:00Z",
    }
    second = admin.post(url(a.id), {"amount": "10.5", "currency": "usd", "priority": 0}, format="json").json()
    assert (second["amount"], second["currency"], second["description"]) == ("10.5", "USD", "Credit")
    other = tenant_b.client().post(url("initech"), {"amount": "99"}, format="json").json()
    assert other["customerId"] == b.id

    # burn order: priority 0 first, then priority 1
    listed = tenant_a.client("read").get(url("initech")).json()
    assert listed["totalCount"] == 2 and [c["id"] for c in listed["items"]] == [second["id"], first["id"]]
    assert [c["id"] for c in tenant_b.client("read").get(url("initech")).json()["items"]] == [other["id"]]
    assert tenant_a.client("read").get(url("initech"), {"status": "voided"}).json()["items"] == []
    assert tenant_a.client("read").get(url("initech"), {"status": "bogus"}).status_code == 400

    detail = tenant_a.client("read").get(url("initech", first["id"])).json()
    assert detail == {**first, "applications": []}
    # B's credit is not reachable from A, neither under A's customer nor under B's customer id
    assert tenant_a.client("read").get(url("initech", other["id"])).status_code == 404
    assert tenant_a.client("read").get(url(b.id)).status_code == 404
    assert tenant_a.client().post(url(b.id), {"amount": "1"}, format="json").status_code == 404
    assert tenant_a.client().post(url("initech", other["id"], "void")).status_code == 404
    assert CustomerCredit.objects.get(id=other["id"]).voided_at is None

    # scopes: read can list, not write
    assert tenant_a.client("read").post(url("initech"), {"amount": "1"}, format="json").status_code == 403
    assert tenant_a.client("read").post(url("initech", first["id"], "void")).status_code == 403
    assert tenant_a.client("ingest").get(url("initech")).status_code == 403

    rows = AuditLog.objects.filter(organization=tenant_a.org, action="credit.created").order_by("id")
    assert [row.object_id for row in rows] == [first["id"], second["id"]]
    assert rows[0].after == {
        "customerId": a.id,
        "amount": "25.00",
        "currency": "USD",
        "description": "Welcome",
        "priority": 1,
        "expiresAt": "2027-01-01T00:00:00+00:00",
    }
    assert rows[0].actor_label.startswith("api_key:")
    assert AuditLog.objects.filter(organization=tenant_b.org, action="credit.created").count() == 1


def _problem(resp) -> list[str]:
    assert resp.status_code == 400 and resp["Content-Type"] == "application/problem+json", resp.content
    return sorted(p["name"] for p in resp.json()["invalid_params"])


def test_validation_names_the_field_and_creates_nothing(tenant_a, tenant_b):
    make_customer(tenant_a, "initech")
    make_customer(tenant_a, "tanaka", currency="JPY")
    make_customer(tenant_b, "initech")
    tenant_b.client().post(url("initech"), {"amount": "5"}, format="json")
    post = tenant_a.client().post
    assert _problem(post(url("initech"), {"amount": 25}, format="json")) == ["amount"]  # a JSON number
    assert _problem(post(url("initech"), {"amount": "25.5e"}, format="json")) == ["amount"]
    assert _problem(post(url("initech"), {"amount": "0"}, format="json")) == ["amount"]
    assert _problem(post(url("initech"), {"amount": "-1"}, format="json")) == ["amount"]
    assert _problem(post(url("initech"), {"amount": "NaN"}, format="json")) == ["amount"]
    assert _problem(post(url("initech"), {"amount": "1000000000000000000"}, format="json")) == ["amount"]
    assert _problem(post(url("initech"), {"amount": "1.001"}, format="json")) == ["amount"]  # USD: 2 places
    assert _problem(post(url("tanaka"), {"amount": "1.5"}, format="json")) == ["amount"]  # JPY: 0 places
    assert _problem(post(url("initech"), {"amount": "5", "currency": "EUR"}, format="json")) == ["currency"]
    assert _problem(post(url("initech"), {"amount": "5", "currency": "QQQ"}, format="json")) == ["currency"]
    assert _problem(post(url("initech"), {"amount": "5", "priority": 256}, format="json")) == ["priority"]
    assert _problem(post(url("initech"), {"amount": "5", "description": "  "}, format="json")) == [
        "description"
    ]
    past = {"amount": "5", "expiresAt": "2026-11-01T01:59:59Z"}
    assert _problem(post(url("initech"), past, format="json")) == ["expiresAt"]
    every = {"amount": "0", "currency": "EUR", "expiresAt": "2026-10-01T00:00:00Z"}
    assert _problem(post(url("initech"), every, format="json")) == ["amount", "currency", "expiresAt"]
    assert CustomerCredit.objects.filter(organization=tenant_a.org).count() == 0
    assert AuditLog.objects.filter(organization=tenant_a.org, action="credit.created").count() == 0
    # the largest amounts allowed: 18 integer digits, the currency's decimals (JPY 0, USD 2)
    ok = post(url("initech"), {"amount": "999999999999999999.99"}, format="json")
    assert ok.status_code == 201 and ok.json()["amount"] == "999999999999999999.99"
    yen = post(url("tanaka"), {"amount": "1500.000"}, format="json")  # trailing zeros are fine
    assert yen.status_code == 201 and (yen.json()["amount"], yen.json()["currency"]) == ("1500", "JPY")
    assert CustomerCredit.objects.get(id=yen.json()["id"]).amount == Decimal("1500")
    assert CustomerCredit.objects.filter(organization=tenant_b.org).count() == 1


def test_applied_remaining_void_and_used(tenant_a, tenant_b, usage):
    """October invoice: 40 calls x 0.25 = 10.00. Credits by burn order: `small` 5.00 (priority 0) then
    `big` 15.00 (priority 1); `gone` 3.00 (priority 0) is voided before the run and never applied."""
    c = subscribe(tenant_a, usage, "initech")
    other = subscribe(tenant_b, usage, "initech", calls=8)  # B: 8 x 0.25 = 2.00, its own 50.00 credit
    admin = tenant_a.client()
    small = admin.post(url("initech"), {"amount": "5.00", "priority": 0}, format="json").json()
    big = admin.post(url("initech"), {"amount": "15.00", "description": "Prepaid"}, format="json").json()
    gone = admin.post(url("initech"), {"amount": "3.00", "priority": 0}, format="json").json()
    b_credit = tenant_b.client().post(url("initech"), {"amount": "50"}, format="json").json()

    voided = admin.post(url("initech", gone["id"], "void"))
    assert voided.status_code == 200
    assert (voided.json()["status"], voided.json()["voidedAt"], voided.json()["remaining"]) == (
        "voided",
        "2026-11-01T02:00:00Z",
        "3",
    )
    again = admin.post(url("initech", gone["id"], "void"))
    assert again.status_code == 409 and again["Content-Type"] == "application/problem+json"

    invoice = invoice_october(tenant_a, c)
    b_invoice = invoice_october(tenant_b, other)
    # due 10.00: small pays 5.00 (all of it), big pays 10.00 - 5.00 = 5.00; gone pays nothing
    assert invoice.credits_total == Decimal("10.00") and invoice.total == Decimal("0.00")
    assert b_invoice.credits_total == Decimal("2.00")  # B's credit, on B's invoice only
    line_of = {a.credit_id: a.line_id for a in CreditApplication.objects.filter(line__invoice=invoice)}
    assert set(line_of) == {small["id"], big["id"]}

    body = {x["id"]: x for x in tenant_a.client("read").get(url("initech")).json()["items"]}
    assert (body[small["id"]]["applied"], body[small["id"]]["remaining"], body[small["id"]]["status"]) == (
        "5",
        "0",
        "used",
    )
    assert (body[big["id"]]["applied"], body[big["id"]]["remaining"], body[big["id"]]["status"]) == (
        "5",
        "10",
        "active",
    )
    assert (body[gone["id"]]["applied"], body[gone["id"]]["status"]) == ("0", "voided")

    detail = tenant_a.client("read").get(url("initech", big["id"])).json()
    assert detail["applications"] == [
        {
            "id": detail["applications"][0]["id"],
            "invoiceId": invoice.id,
            "invoiceNumber": invoice.number,
            "invoiceStatus": "issued",
            "lineId": line_of[big["id"]],
            "amount": "5",
            "at": "2026-11-01T02:00:00Z",
        }
    ]
    assert invoice.number == "ACME-2026-000001"

    # voiding a credit after it was applied: what it paid stays paid, the rest is never applied again
    after = admin.post(url("initech", big["id"], "void")).json()
    assert (after["status"], after["applied"], after["remaining"]) == ("voided", "5", "10")
    assert len(after["applications"]) == 1
    invoice.refresh_from_db()
    assert invoice.credits_total == Decimal("10.00")
    audit = AuditLog.objects.get(organization=tenant_a.org, action="credit.voided", object_id=big["id"])
    assert audit.before == {"voidedAt": None, "remaining": "10.00"}
    assert audit.after == {"voidedAt": "2026-11-01T02:00:00+00:00"}
    assert AuditLog.objects.filter(organization=tenant_a.org, action="credit.voided").count() == 2

    # voiding the invoice gives the applications back (they stop counting; they stay listed)
    assert admin.post(f"/api/v1/billing/invoices/{invoice.id}/void").status_code == 200
    back = tenant_a.client("read").get(url("initech", small["id"])).json()
    assert (back["applied"], back["remaining"], back["status"]) == ("0", "5", "active")
    assert back["applications"][0]["invoiceStatus"] == "voided"

    # B's credit, seen by B only: 50 - 2 = 48 left
    b_view = tenant_b.client("read").get(url("initech", b_credit["id"])).json()
    assert (b_view["applied"], b_view["remaining"]) == ("2", "48")
    assert [x["invoiceId"] for x in b_view["applications"]] == [b_invoice.id]


def test_expired_status_and_list_query_budget(tenant_a, tenant_b, usage):
    make_customer(tenant_a, "initech")
    make_customer(tenant_b, "initech")
    admin = tenant_a.client()
    soon = admin.post(
        url("initech"), {"amount": "4", "expiresAt": "2026-11-01T03:00:00Z"}, format="json"
    ).json()
    tenant_b.client().post(url("initech"), {"amount": "7"}, format="json")

    def list_queries() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as ctx:
            r = tenant_a.client("read").get(url("initech"))
        assert r.status_code == 200
        return len(ctx.captured_queries), r.json()["totalCount"]

    list_queries()  # warm the API key cache
    one, total = list_queries()
    assert total == 1
    for amount in ("1", "2", "3"):
        admin.post(url("initech"), {"amount": amount}, format="json")
    four, total = list_queries()
    # 5, whatever the rows: API key, customer, its subjects (prefetched by customer_get), count, page
    assert total == 4 and four == one == 5

    with time_machine.travel(datetime(2026, 11, 1, 3, tzinfo=UTC), tick=False):
        got = tenant_a.client("read").get(url("initech", soon["id"])).json()
        assert (got["status"], got["remaining"]) == ("expired", "4")
        expired = tenant_a.client("read").get(url("initech"), {"status": "expired"}).json()
        assert [x["id"] for x in expired["items"]] == [soon["id"]]
