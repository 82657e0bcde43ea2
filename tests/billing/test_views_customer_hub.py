"""The customer page as the hub: details (edit name, e-mail, address, tax ids, subjects), subscription and
history, usage this period, the upcoming invoice, invoices, credits (create, void) and a portal link; each
section within the query budget and constant in rows; another organization's customer never shows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from billing import services
from billing.models import Customer
from core.models import AuditLog
from invoicing.models import CustomerCredit, Invoice
from tests.billing.real_catalog import publish_pro_plan
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

START = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 15, 12, tzinfo=UTC)
BUDGET = 10
HTMX = {"HTTP_HX_REQUEST": "true"}


def login(tenant) -> Client:
    client = Client()
    assert client.login(username=tenant.user.username, password=PASSWORD)
    client.get("/console/")  # the first console request stores the organization in the session
    return client


def ingest(org, subject: str, tokens: int, at: datetime, n: int = 1) -> None:
    from metering.services import events_ingest, rollups_advance

    events_ingest(
        organization=org,
        events=[
            ("test", f"{subject}-{at.isoformat()}-{i}", "prompt", subject, at, json.dumps({"tokens": tokens}))
            for i in range(n)
        ],
    )
    rollups_advance(organization_id=org.id)


@pytest.fixture
def hub(tenant_a, tenant_b, time_machine):
    time_machine.move_to(START, tick=False)
    for tenant in (tenant_a, tenant_b):
        publish_pro_plan(tenant.org, fee="30" if tenant is tenant_a else "99")
    acme = services.customer_create(
        organization=tenant_a.org, name="Acme Robotics", key="robo", currency="USD", subject_keys=["robo-1"]
    )
    other = services.customer_create(
        organization=tenant_b.org, name="Globex Secret", key="robo", currency="USD", subject_keys=["robo-1"]
    )
    services.subscription_create(organization=tenant_a.org, customer=acme, plan_key="pro", active_from=START)
    services.subscription_create(organization=tenant_b.org, customer=other, plan_key="pro", active_from=START)
    time_machine.move_to(NOW, tick=False)
    ingest(tenant_a.org, "robo-1", 1250, NOW - timedelta(days=5), n=2)
    ingest(tenant_b.org, "robo-1", 77777, NOW - timedelta(days=5))
    return acme, other


def test_detail_shows_the_hub_and_loads_each_section(tenant_a, hub):
    acme, other = hub
    client = login(tenant_a)
    html = client.get(f"/console/customers/{acme.id}/").content.decode()
    assert "Acme Robotics" in html and "Pro v1" in html and "robo-1" in html
    for url in ("usage/", "upcoming/", "billing/", "portal-link/"):
        assert f'hx-get="/console/customers/{acme.id}/{url}"' in html, url
    assert "Globex" not in html
    # the other organization's customer is not found from this organization, through any section
    for url in ("", "usage/", "upcoming/", "billing/", "portal-link/", "edit/"):
        assert client.get(f"/console/customers/{other.id}/{url}").status_code == 404, url


def test_usage_section_counts_this_period(tenant_a, hub):
    acme, _ = hub
    html = login(tenant_a).get(f"/console/customers/{acme.id}/usage/", **HTMX).content.decode()
    assert 'id="entitlement-tokens"' in html and 'id="entitlement-sso"' in html
    row = html[html.index('id="entitlement-tokens"') :]
    assert '<td class="num usage">2,500</td>' in row[: row.index("</tr>")]
    assert "77,777" not in html


def test_upcoming_invoice_is_the_next_invoice_as_it_stands(tenant_a, hub):
    acme, _ = hub
    html = login(tenant_a).get(f"/console/customers/{acme.id}/upcoming/", **HTMX).content.decode()
    assert "2026-11-01 → 2026-12-01" in html
    assert ">Tokens<" in html and ">2,500<" in html and ">2.50<" in html
    # nothing was invoiced yet: the one-time setup fee, November's and December's base fees (in advance)
    # and November's tokens so far (2,500 x 0.001)
    rows = [
        ("Setup fee", "2026-11-01", "1", "100.00"),
        ("Base fee", "2026-11-01 → 2026-12-01", "1", "30.00"),
        ("Base fee", "2026-12-01 → 2027-01-01", "1", "30.00"),
        ("Tokens", "2026-11-01 → 2026-11-15", "2,500", "2.50"),
    ]
    for desc, period, qty, amount in rows:
        assert (
            f'<tr><td>{desc}</td><td>{period}</td><td class="num">{qty}</td><td class="num">{amount}</td></tr>'
            in html
        ), desc
    assert 'class="num upcoming-total">162.50<' in html, html
    assert "77777" not in html and "99.00" not in html


def test_edit_details_saves_address_tax_ids_and_subjects(tenant_a, hub):
    acme, other = hub
    client = login(tenant_a)
    form = client.get(f"/console/customers/{acme.id}/edit/", **HTMX).content.decode()
    assert 'value="Acme Robotics"' in form and "robo-1</textarea>" in form
    r = client.post(
        f"/console/customers/{acme.id}/edit/",
        {
            "name": "Acme Robotics GmbH",
            "primary_email": "billing@acme.test",
            "line1": "1 Main St",
            "postal_code": "10115",
            "city": "Berlin",
            "country": "de",
            "tax_ids": "eu_vat:DE123456789\n12-3456789",
            "subjects": "robo-1, robo-2",
        },
        **HTMX,
    )
    assert r.status_code == 204 and r["HX-Redirect"] == f"/console/customers/{acme.id}/"
    acme.refresh_from_db()
    assert acme.name == "Acme Robotics GmbH" and acme.primary_email == "billing@acme.test"
    assert acme.billing_address == {
        "line1": "1 Main St",
        "postalCode": "10115",
        "city": "Berlin",
        "country": "DE",
    }
    assert acme.tax_ids == [{"type": "eu_vat", "value": "DE123456789"}, {"value": "12-3456789"}]
    assert sorted(acme.subjects.values_list("subject_key", flat=True)) == ["robo-1", "robo-2"]
    assert AuditLog.objects.filter(organization=tenant_a.org, action="customer.updated").count() == 1
    html = client.get(f"/console/customers/{acme.id}/").content.decode()
    assert "1 Main St<br>10115 Berlin<br>DE" in html and "Tax ID: DE123456789 (eu_vat)" in html
    other.refresh_from_db()
    assert other.name == "Globex Secret" and other.billing_address is None


def test_edit_details_errors_change_nothing(tenant_a, tenant_b, hub):
    acme, _ = hub
    services.customer_create(organization=tenant_a.org, name="Taken", subject_keys=["taken-1"])
    client = login(tenant_a)
    r = client.post(
        f"/console/customers/{acme.id}/edit/",
        {"name": "X", "primary_email": "not-an-email", "subjects": "robo-1", "country": "DEU"},
        **HTMX,
    )
    html = r.content.decode()
    assert r.status_code == 200 and 'id="error-primary_email"' in html and 'id="error-country"' in html
    r = client.post(f"/console/customers/{acme.id}/edit/", {"name": "X", "subjects": "taken-1"}, **HTMX)
    assert 'id="error-subjects"' in r.content.decode() and "another customer" in r.content.decode()
    acme.refresh_from_db()
    assert acme.name == "Acme Robotics" and acme.primary_email == ""
    assert list(acme.subjects.values_list("subject_key", flat=True)) == ["robo-1"]


def test_credits_created_and_voided_from_the_page(tenant_a, hub):
    acme, other = hub
    client = login(tenant_a)
    r = client.post(
        f"/console/customers/{acme.id}/credits/",
        {"amount": "25.50", "description": "Goodwill", "priority": "1", "expires_on": "2027-01-31"},
        **HTMX,
    )
    html = r.content.decode()
    assert r.status_code == 200 and r["HX-Trigger"] == "credits-changed"
    credit = CustomerCredit.objects.get(organization=tenant_a.org, customer=acme)
    assert (credit.amount, credit.currency, credit.description) == (Decimal("25.50"), "USD", "Goodwill")
    assert credit.expires_at == datetime(2027, 1, 31, tzinfo=UTC)
    assert f'id="credit-{credit.id}"' in html and "25.50 USD" in html
    r = client.post(f"/console/customers/{acme.id}/credits/", {"amount": "-3", "priority": "1"}, **HTMX)
    assert 'id="credit-error-amount"' in r.content.decode()
    assert CustomerCredit.objects.filter(customer=acme).count() == 1
    r = client.post(f"/console/customers/{acme.id}/credits/{credit.id}/void", **HTMX)
    credit.refresh_from_db()
    assert credit.voided_at == NOW and 'class="badge credit-status">voided<' in r.content.decode()
    # voiding again says so, and the other organization's customer cannot be credited from here
    r = client.post(f"/console/customers/{acme.id}/credits/{credit.id}/void", **HTMX)
    assert "already voided" in r.content.decode()
    assert client.post(f"/console/customers/{other.id}/credits/", {"amount": "5"}).status_code == 404
    assert not CustomerCredit.objects.filter(customer=other).exists()


def test_portal_link_is_minted_for_this_customer(tenant_a, hub, settings):
    acme, _ = hub
    settings.PUBLIC_BASE_URL = ""
    client = login(tenant_a)
    r = client.post(f"/console/customers/{acme.id}/portal-link/", {"days": "7"}, **HTMX)
    html = r.content.decode()
    assert 'id="portal-url" value="http://testserver/portal/mlp_' in html
    from portal.models import PortalToken

    row = PortalToken.objects.get(organization=tenant_a.org)
    assert row.customer_id == acme.id and row.expires_at == NOW + timedelta(days=7)


def add_rows(tenant, customer, n: int) -> None:
    """n more invoices, credits and ended subscriptions for the customer."""
    from invoicing.credits import customer_credit_create

    for i in range(n):
        Invoice.objects.create(
            organization=tenant.org,
            customer=customer,
            currency="USD",
            status="paid",
            number=f"INV-{n}-{i}",
            kind="on_demand",
            period_start=START - timedelta(days=30 * (i + 1), seconds=n),
            period_end=START - timedelta(days=30 * i),
            issued_at=START - timedelta(days=30 * i),
            total=Decimal("10.00"),
        )
        customer_credit_create(organization=tenant.org, customer=customer, amount=Decimal(1 + i))


def test_sections_within_budget_and_constant_in_rows(tenant_a, tenant_b, hub):
    acme, other = hub
    client = login(tenant_a)
    urls = [
        f"/console/customers/{acme.id}/",
        f"/console/customers/{acme.id}/usage/",
        f"/console/customers/{acme.id}/upcoming/",
        f"/console/customers/{acme.id}/billing/",
        f"/console/customers/{acme.id}/portal-link/",
        f"/console/customers/{acme.id}/edit/",
    ]

    def counts() -> list[int]:
        from billing import sources as billing_sources

        out = []
        for url in urls:
            billing_sources._meter_cache.clear()  # count the cold-cache worst case every time
            with CaptureQueriesContext(connection) as ctx:
                r = client.get(url, **({} if url.endswith(f"{acme.id}/") else HTMX))
            assert r.status_code == 200, url
            out.append(len(ctx.captured_queries))
        return out

    add_rows(tenant_a, acme, 2)
    small = counts()
    add_rows(tenant_a, acme, 20)
    add_rows(tenant_b, other, 5)
    ingest(tenant_a.org, "robo-1", 5, NOW - timedelta(days=2), n=30)
    big = counts()
    assert small == big, (small, big)
    # the upcoming invoice is computed by invoicing's builder on each request (nothing stored), within
    # the budget too: session, user, membership; the customer's subscription items with their periods
    # (which also prove the customer is this organization's), billed lines, tax rates, meters with their
    # features and the customer's subjects, and the usage (watermarks, one statement, watermarks again)
    assert big[2] == 10, big
    assert max(big) <= BUDGET, dict(zip(urls, big, strict=True))
    assert Customer.objects.filter(organization=tenant_a.org).count() == 1


def test_create_customer_through_the_form(tenant_a, tenant_b):
    client = login(tenant_a)
    r = client.post("/console/customers/new/", {"name": "Bad", "email": "not-an-email"})
    assert r.status_code == 400 and "Email: Enter a valid email address." in r.content.decode()
    assert not Customer.objects.filter(name="Bad").exists()
    r = client.post(
        "/console/customers/new/",
        {
            "name": "Initech",
            "key": "initech",
            "email": "ap@initech.test",
            "currency": "eur",
            "subjects": "i-1, i-2",
        },
    )
    customer = Customer.objects.get(organization=tenant_a.org, key="initech")
    assert r.status_code == 302 and r["Location"] == f"/console/customers/{customer.id}/"
    assert (customer.primary_email, customer.currency) == ("ap@initech.test", "EUR")
    assert sorted(customer.subjects.values_list("subject_key", flat=True)) == ["i-1", "i-2"]
    assert not Customer.objects.filter(organization=tenant_b.org, key="initech").exists()


def test_invoice_now_bills_what_is_due_so_far(tenant_a, hub):
    acme, other = hub
    client = login(tenant_a)
    r = client.post(f"/console/customers/{acme.id}/invoice-now", **HTMX)
    html = r.content.decode()
    invoice = Invoice.objects.get(organization=tenant_a.org, customer=acme, kind="on_demand")
    # due now: the setup fee, November's base fee and the tokens so far (December's fee is due on Dec 1)
    assert invoice.status == "issued" and invoice.total == Decimal("132.50")
    assert r["HX-Trigger"] == "credits-changed" and f"Issued {invoice.number}." in html
    assert f'id="invoice-{invoice.id}"' in html
    r = client.post(f"/console/customers/{acme.id}/invoice-now", **HTMX)
    assert 'id="invoice-now-error"' in r.content.decode()  # nothing more is due
    assert Invoice.objects.filter(customer=acme, kind="on_demand").count() == 1
    assert client.post(f"/console/customers/{other.id}/invoice-now").status_code == 404
    assert not Invoice.objects.filter(customer=other).exists()
