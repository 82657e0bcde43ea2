"""Invoice API, console pages and PDF: filters, actions and 409s, manual lines, tenant isolation everywhere."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.test import Client

from invoicing.models import Invoice
from invoicing.services import invoicing_settings_update, tax_rate_create
from tests.conftest import PASSWORD
from tests.invoicing.conftest import make_customer, make_subscription, run_period

OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 1, 2, tzinfo=UTC)
BASE = "/api/v1/billing/invoices"


def build(tenant, usage, key: str, *, auto: bool = True) -> Invoice:
    invoicing_settings_update(
        organization=tenant.org, auto_advance=auto, supplier_name=f"{tenant.org.name} GmbH"
    )
    c = make_customer(tenant, key)
    make_subscription(
        tenant,
        c,
        anchor=OCT,
        items=[
            {
                "key": "calls",
                "name": "Calls",
                "feature_key": "calls",
                "price": {"type": "unit", "amount": "0.25"},
            }
        ],
    )
    usage.add(c, "calls", datetime(2026, 10, 5, tzinfo=UTC), 40)
    with time_machine.travel(NOW, tick=False):
        return run_period(tenant, NOW)


@pytest.fixture
def two(tenant_a, tenant_b, usage):
    return build(tenant_a, usage, "initech", auto=False), build(tenant_b, usage, "umbrella")


def test_list_filters_and_isolation(tenant_a, tenant_b, two):
    a, b = two
    body = tenant_a.client("read").get(BASE).json()
    assert [i["id"] for i in body["items"]] == [a.id]
    assert body["items"][0]["status"] == "draft"
    assert body["items"][0]["totals"]["total"] == "10"
    assert tenant_a.client("read").get(BASE, {"statuses": "issued"}).json()["items"] == []
    assert tenant_a.client("read").get(BASE, {"customerId": b.customer_id}).json()["items"] == []
    assert tenant_a.client("read").get(BASE, {"statuses": "bogus"}).status_code == 400
    bad = tenant_a.client("read").get(BASE, {"periodFrom": "yesterday"})
    assert bad.status_code == 400
    assert [p["name"] for p in bad.json()["invalid_params"]] == ["periodFrom"]
    assert [i["id"] for i in tenant_b.client("read").get(BASE).json()["items"]] == [b.id]
    assert tenant_a.client("read").get(f"{BASE}/{b.id}").status_code == 404
    assert tenant_a.client("read").get(f"{BASE}/{b.id}/pdf").status_code == 404
    for action in ("advance", "approve", "void", "retry"):
        assert tenant_a.client().post(f"{BASE}/{b.id}/{action}").status_code == 404
    assert (
        tenant_a.client()
        .post(f"{BASE}/{b.id}/lines", {"description": "x", "unitPrice": "1"}, format="json")
        .status_code
        == 404
    )
    assert (
        tenant_a.client().post(f"{BASE}/invoice", {"customerId": b.customer_id}, format="json").status_code
        == 404
    )
    b.refresh_from_db()
    assert b.status == "issued" and b.lines.count() == 1


def test_detail_manual_line_approve_void_and_409(tenant_a, tenant_b, two):
    a, _ = two
    tax_rate_create(organization=tenant_a.org, name="VAT", percentage="19", inclusive=True, is_default=True)
    client = tenant_a.client()
    assert tenant_a.client("read").post(f"{BASE}/{a.id}/approve").status_code == 403
    resp = client.post(
        f"{BASE}/{a.id}/lines",
        {"description": "Onboarding", "quantity": "2", "unitPrice": "59.5"},
        format="json",
    )
    assert resp.status_code == 201 and resp.json()["amount"] == "119"
    detail = client.get(f"{BASE}/{a.id}").json()
    assert detail["totals"] == {
        "amount": "129",
        "discountsTotal": "0",
        "creditsTotal": "0",
        "taxesTotal": "20.6",
        "taxesInclusiveTotal": "20.6",
        "total": "129",
    }
    issued = client.post(f"{BASE}/{a.id}/approve").json()
    assert issued["status"] == "issued" and issued["number"] == "ACME-2026-000001"
    assert {x["type"] for x in issued["lines"]} == {"usage", "manual", "tax"}  # manual line kept on rebuild
    again = client.post(f"{BASE}/{a.id}/approve")
    assert again.status_code == 409 and again["Content-Type"] == "application/problem+json"
    assert (
        client.post(
            f"{BASE}/{a.id}/lines", {"description": "late", "unitPrice": "1"}, format="json"
        ).status_code
        == 409
    )
    voided = client.post(f"{BASE}/{a.id}/void").json()
    assert voided["status"] == "voided" and voided["number"] == "ACME-2026-000001"
    assert client.post(f"{BASE}/{a.id}/void").status_code == 409
    assert client.post(f"{BASE}/{a.id}/advance").status_code == 409


def test_on_demand_endpoint(tenant_a, tenant_b, usage):
    c = make_customer(tenant_a, "hooli")
    make_subscription(
        tenant_a,
        c,
        anchor=OCT,
        items=[
            {
                "key": "seat",
                "name": "Seat",
                "price": {"type": "flat", "amount": "12", "paymentTerm": "in_advance"},
            }
        ],
    )
    with time_machine.travel(datetime(2026, 10, 10, tzinfo=UTC), tick=False):
        resp = tenant_a.client().post(f"{BASE}/invoice", {"customerId": "hooli"}, format="json")
        assert resp.status_code == 201
        [inv] = resp.json()
        assert inv["status"] == "issued" and inv["totals"]["total"] == "12"
        assert (
            tenant_a.client().post(f"{BASE}/invoice", {"customerId": "hooli"}, format="json").status_code
            == 409
        )
        assert (
            tenant_b.client().post(f"{BASE}/invoice", {"customerId": "hooli"}, format="json").status_code
            == 404
        )


def login(tenant) -> Client:
    client = Client()
    assert client.login(username=tenant.user.username, password=PASSWORD)
    return client


def test_console_pages_and_pdf_are_tenant_scoped(tenant_a, tenant_b, two):
    a, b = two
    client = login(tenant_a)
    page = client.get("/console/invoices/").content.decode()
    assert "Initech Ltd" in page and "Umbrella Ltd" not in page
    assert client.get("/console/invoices/", {"status": "paid"}).content.decode().count("Initech Ltd") <= 1
    detail = client.get(f"/console/invoices/{a.id}/").content.decode()
    assert "Approve" in detail and "Calls" in detail
    assert client.get(f"/console/invoices/{b.id}/").status_code == 404
    assert client.get(f"/console/invoices/{b.id}/pdf").status_code == 404
    assert client.post(f"/console/invoices/{b.id}/void").status_code == 404
    pdf = client.get(f"/console/invoices/{a.id}/pdf")
    assert (
        pdf.status_code == 200
        and pdf["Content-Type"] == "application/pdf"
        and pdf.content.startswith(b"%PDF")
    )
    assert client.get("/console/invoice-runs/").status_code == 200
    assert client.get("/console/webhooks/").status_code == 200
    b_pdf = login(tenant_b).get(f"/console/invoices/{b.id}/pdf")
    assert b_pdf.status_code == 200
    api_pdf = tenant_b.client("read").get(f"{BASE}/{b.id}/pdf")
    assert api_pdf.status_code == 200 and api_pdf.content.startswith(b"%PDF")
