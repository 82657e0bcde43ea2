"""Real Chromium: the customer page as the hub. Usage this period and the upcoming invoice load, the details
are edited in place, a credit is added and voided, and a portal link is minted and opened; another
organization's customer with the same key never shows."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from billing import services
from invoicing.models import CustomerCredit
from tests.billing.real_catalog import publish_pro_plan
from tests.conftest import console_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_customer_hub_actions(page, tenant_a, tenant_b):
    from metering.services import events_ingest, rollups_advance

    now = timezone.now()
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for tenant in (tenant_a, tenant_b):
        publish_pro_plan(tenant.org)
    acme = services.customer_create(
        organization=tenant_a.org, name="Acme Robotics", key="robo", currency="USD", subject_keys=["robo-1"]
    )
    other = services.customer_create(
        organization=tenant_b.org, name="Globex Secret", key="robo", currency="USD", subject_keys=["robo-1"]
    )
    for tenant, cust in ((tenant_a, acme), (tenant_b, other)):
        services.subscription_create(
            organization=tenant.org, customer=cust, plan_key="pro", active_from=start
        )
    events_ingest(
        organization=tenant_a.org,
        events=[
            ("t", f"e{i}", "prompt", "robo-1", now - timedelta(minutes=5), json.dumps({"tokens": 600}))
            for i in range(2)
        ],
    )
    events_ingest(
        organization=tenant_b.org,
        events=[("t", "g", "prompt", "robo-1", now - timedelta(minutes=5), json.dumps({"tokens": 77777}))],
    )
    rollups_advance(organization_id=tenant_a.org.id)

    console_login(page, tenant_a.user.username)
    page.goto(f"/console/customers/{acme.id}/")
    page.locator("#entitlement-tokens .usage").wait_for()
    assert page.locator("#entitlement-tokens .usage").inner_text() == "1,200"
    page.locator("#upcoming .upcoming-total").wait_for()
    assert (
        page.locator("#upcoming .upcoming-total").inner_text() == "161.20"
    )  # setup 100 + 2 x base 30 + 1.20
    page.locator("#customer-invoices").wait_for()
    assert "No invoices yet" in page.locator("#customer-invoices").inner_text()

    # edit details in place
    page.click("#edit-details")
    page.locator("#details-form").wait_for()
    page.fill("#id_primary_email", "billing@robo.test")
    page.fill("#id_line1", "1 Main St")
    page.fill("#id_postal_code", "10115")
    page.fill("#id_city", "Berlin")
    page.fill("#id_country", "de")
    page.fill("#id_tax_ids", "eu_vat:DE123456789")
    page.fill("#id_subjects", "robo-1\nrobo-2")
    page.click("#details-form button[type=submit]")
    page.wait_for_selector("#fact-address")
    page.locator("#fact-subjects:has-text('robo-2')").wait_for()
    assert page.locator("#fact-address").inner_text() == "1 Main St\n10115 Berlin\nDE"
    assert page.locator("#fact-email").inner_text() == "billing@robo.test"
    assert "Tax ID: DE123456789 (eu_vat)" in page.locator("#customer-facts").inner_text()

    # add a credit, see it lower the upcoming total's source of truth, then void it
    page.locator("#credit-form").wait_for()
    page.fill("#credit-form [name=amount]", "25.50")
    page.fill("#credit-form [name=description]", "Goodwill")
    page.click("#credit-form button[type=submit]")
    credit_row = page.locator("#customer-credits tr:has-text('Goodwill')")
    credit_row.wait_for()
    assert "25.50 USD" in credit_row.inner_text() and "active" in credit_row.inner_text()
    page.once("dialog", lambda d: d.accept())
    credit_row.locator("button:has-text('Void')").click()
    page.locator("#customer-credits tr:has-text('Goodwill') .credit-status:has-text('voided')").wait_for()
    assert CustomerCredit.objects.get(customer=acme).voided_at is not None

    # a portal link for this customer opens their portal
    page.click("#portal-link-form button[type=submit]")
    page.locator("#portal-url").wait_for()
    url = page.locator("#portal-url").input_value()
    assert url.startswith(page.url.split("/console/")[0] + "/portal/mlp_")
    page.screenshot(path="/tmp/console-customer-hub.png", full_page=True)
    assert "Globex" not in page.content() and "77,777" not in page.content()
    page.goto(url)
    page.wait_for_url("**/portal/")
    assert "Acme Robotics" in page.locator("header.top").inner_text()
    # let the portal's own requests (charts, the estimate) finish before the test database is flushed
    page.wait_for_load_state("networkidle")
