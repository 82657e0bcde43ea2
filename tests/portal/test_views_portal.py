"""Portal pages: magic link → session, sections, expiry/invalidation/tampering, isolation."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from invoicing.models import InvoiceStatus
from portal.services import portal_token_invalidate
from tests.factories import InvoiceFactory, InvoiceLineFactory

pytestmark = pytest.mark.django_db


def open_portal(client, token: str):
    r = client.get(f"/portal/{token}")
    assert r.status_code == 302 and r["Location"] == "/portal/"
    return client


def test_magic_link_opens_the_portal_for_that_customer(client, cust_a, cust_b):
    open_portal(client, cust_a.token)
    html = client.get("/portal/").content.decode()
    assert "Acme Inc" in html and cust_a.customer.name in html
    assert "Globex" not in html and cust_b.customer.name not in html
    for url in ("/portal/estimate/", "/portal/balances/", "/portal/invoices/"):
        r = client.get(url, HTTP_HX_REQUEST="true")
        assert r.status_code == 200, url
        assert "<html" not in r.content.decode()  # a partial for htmx
        assert client.get(url).status_code == 200  # a full page without JS


def test_portal_without_a_link_is_refused(client, cust_a):
    r = client.get("/portal/")
    assert r.status_code == 401 and "link you were sent" in r.content.decode()


@pytest.mark.parametrize("mangle", [lambda t: t[:-3] + "xyz", lambda t: "mlp_" + t[5:], lambda t: "mlp_abc"])
def test_tampered_magic_link_shows_a_clear_page(client, cust_a, mangle):
    r = client.get(f"/portal/{mangle(cust_a.token)}")
    assert r.status_code == 401
    assert "We can't open this portal" in r.content.decode()
    assert client.get("/portal/").status_code == 401


def test_session_ends_when_token_expires_or_is_invalidated(client, tenant_a, cust_a):
    open_portal(client, cust_a.token)
    assert client.get("/portal/").status_code == 200
    with time_machine.travel(timezone.now() + timedelta(minutes=61)):
        r = client.get("/portal/")
        assert r.status_code == 401 and "We can't open this portal" in r.content.decode()
    open_portal(client, cust_a.token)
    portal_token_invalidate(organization=tenant_a.org, token_id=cust_a.token_id)
    r = client.get("/portal/")
    assert r.status_code == 401 and "invalidated" in r.content.decode()
    r = client.get(f"/portal/{cust_a.token}")
    assert r.status_code == 401


def test_expired_magic_link(client, cust_a):
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        r = client.get(f"/portal/{cust_a.token}")
    assert r.status_code == 401 and "expired" in r.content.decode()


def test_guessed_ids_in_urls_reach_nothing(client, cust_a, cust_b):
    open_portal(client, cust_a.token)
    for guess in (cust_b.customer.id, cust_b.token_id, "01J0000000000000000000000C"):
        r = client.get(f"/portal/invoices/{guess}/pdf/")
        assert r.status_code == 404
    r = client.get("/portal/usage/does-not-exist/", HTTP_HX_REQUEST="true")
    assert r.status_code == 200 and "No such meter" in r.content.decode()


def test_invoice_pdf_only_for_the_customers_issued_invoices(client, tenant_a, cust_a, cust_b):
    from invoicing.models import Invoice

    now = timezone.now()

    def invoice(pc, status):
        return Invoice.objects.create(
            organization=pc.tenant.org,
            customer=pc.customer,
            currency="USD",
            status=status,
            period_start=now - timedelta(days=30 + len(status)),
            period_end=now,
            issued_at=now,
            number=f"N-{status}",
        )

    own, draft, other = invoice(cust_a, "issued"), invoice(cust_a, "draft"), invoice(cust_b, "issued")
    open_portal(client, cust_a.token)
    html = client.get("/portal/invoices/", HTTP_HX_REQUEST="true").content.decode()
    assert f"/portal/invoices/{own.id}/pdf/" in html and draft.id not in html and other.id not in html
    r = client.get(f"/portal/invoices/{own.id}/pdf/")
    assert r.status_code == 200 and r["Content-Type"] == "application/pdf" and r.content.startswith(b"%PDF")
    assert client.get(f"/portal/invoices/{draft.id}/pdf/").status_code == 404
    assert client.get(f"/portal/invoices/{other.id}/pdf/").status_code == 404


def test_estimate_lines_name_their_service_period(client, cust_a, cust_b):
    """Lines of one description for several service periods (a fee in advance for the next period beside
    this period's) stay apart: each shows the period it is for."""
    now = timezone.now()
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    after = (end + timedelta(days=32)).replace(day=1)
    inv = InvoiceFactory(
        customer=cust_a.customer, status=InvoiceStatus.GATHERING, period_start=start, period_end=end
    )
    InvoiceLineFactory(invoice=inv, description="Platform fee")
    InvoiceLineFactory(invoice=inv, description="Platform fee", period_start=end, period_end=after)
    other = InvoiceFactory(
        customer=cust_b.customer, status=InvoiceStatus.GATHERING, period_start=start, period_end=end
    )
    InvoiceLineFactory(invoice=other, description="Globex secret fee")

    open_portal(client, cust_a.token)
    html = client.get("/portal/estimate/", HTTP_HX_REQUEST="true").content.decode()
    assert "Next invoice estimate" in html
    assert html.count("Platform fee") == 2
    this_period = f"{start:%b} {start.day} – {end:%b} {end.day}, {end.year}"
    next_period = f"{end:%b} {end.day} – {after:%b} {after.day}, {after.year}"
    assert this_period in html and next_period in html
    assert "Globex secret fee" not in html
