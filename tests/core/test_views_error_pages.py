"""Styled 404 and 500 pages for the console and the portal (problem+json stays under /api/)."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory

from core.handlers import server_error
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_404_is_a_styled_page_that_escapes_the_path(tenant_a, tenant_b):
    client = Client()
    assert client.login(username=tenant_a.user.username, password=PASSWORD)
    r = client.get("/console/nothing-here/<b>x</b>")
    html = r.content.decode()
    assert r.status_code == 404 and 'id="not-found"' in html and "<style>" in html
    assert (
        "Page not found" in html
        and "/console/nothing-here/%3Cb%3Ex%3C/b%3E" in html
        and "<b>x</b>" not in html
    )
    assert "it may belong to another organization" in html and 'href="/console/"' in html
    r = client.get("/portal/nothing/")
    assert r.status_code in (401, 404)
    r = Client().get("/somewhere-else/")
    assert r.status_code == 404 and 'id="not-found"' in r.content.decode()


def test_404_of_a_console_object_of_another_organization(tenant_a, tenant_b):
    from tests.invoicing.conftest import make_customer
    from tests.invoicing.test_views_invoice_ops import make_invoice

    other = make_invoice(tenant_b, make_customer(tenant_b, "globex"), number="GLOBEX-1")
    client = Client()
    assert client.login(username=tenant_a.user.username, password=PASSWORD)
    r = client.get(f"/console/invoices/{other.id}/")
    assert (
        r.status_code == 404
        and 'id="not-found"' in r.content.decode()
        and "GLOBEX-1" not in r.content.decode()
    )


def test_500_is_a_styled_page_and_api_500_stays_problem_json(tenant_a, tenant_b):
    r = server_error(RequestFactory().get("/console/customers/"))
    html = r.content.decode()
    assert r.status_code == 500 and 'id="server-error"' in html and "has been logged" in html
    r = server_error(RequestFactory().get("/api/v1/meters"))
    assert r.status_code == 500 and r["Content-Type"] == "application/problem+json"
