"""The portal in a real headless Chromium: magic link → usage chart, balances, estimate, invoice PDF link."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.entitlements.lifecycle import entitlement_create
from tests.catalog.factories import make_feature
from tests.portal.conftest import ingest, make_portal_customer, make_token_meter

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def world(tenant_a, tenant_b):
    from invoicing.models import Invoice, InvoiceLine

    now = timezone.now()
    make_token_meter(tenant_a)
    make_token_meter(tenant_b)
    make_feature(tenant_a, key="tokens", meter="tokens")
    pc = make_portal_customer(tenant_a, subjects=("app",))
    other = make_portal_customer(tenant_b, subjects=("app",))
    events = []
    for d in range(30):
        t = now - timedelta(days=d, hours=2)
        events.append(
            ("acme-app", t, {"tokens": 800 + 37 * (d % 7) * 10, "model": "gpt-4o", "type": "input"}, "prompt")
        )
        events.append(
            ("acme-app", t, {"tokens": 300 + 11 * d, "model": "gpt-4o", "type": "output"}, "prompt")
        )
    ingest(tenant_a, events)
    ingest(
        tenant_b,
        [
            (
                "globex-app",
                now - timedelta(days=1),
                {"tokens": 987654, "model": "x", "type": "input"},
                "prompt",
            )
        ],
    )
    entitlement_create(
        organization=tenant_a.org,
        customer=pc.customer,
        feature_key="tokens",
        type="metered",
        usage_period_interval="MONTH",
        usage_period_anchor=now - timedelta(days=12),
        grants=[
            {
                "amount": Decimal(100000),
                "effective_at": now - timedelta(days=12),
                "expiration": {"duration": "MONTH", "count": 1},
                "metadata": {"name": "Monthly allowance"},
            },
            {
                "amount": Decimal(5000),
                "priority": 2,
                "effective_at": now - timedelta(days=12),
                "expiration": {"duration": "YEAR", "count": 1},
                "metadata": {"name": "Promo credits"},
            },
        ],
    )
    gathering = Invoice.objects.create(
        organization=tenant_a.org,
        customer=pc.customer,
        currency="USD",
        status="gathering",
        period_start=now - timedelta(days=12),
        period_end=now + timedelta(days=18),
        total=Decimal("73.42"),
    )
    for j, (desc, qty, amount) in enumerate(
        (("Base fee", None, "49.00"), ("Tokens (input)", 14210, "14.21"), ("Tokens (output)", 4605, "10.21"))
    ):
        InvoiceLine.objects.create(
            organization=tenant_a.org,
            invoice=gathering,
            type="usage",
            position=j,
            description=desc,
            quantity=qty,
            amount=Decimal(amount),
        )
    issued = Invoice.objects.create(
        organization=tenant_a.org,
        customer=pc.customer,
        currency="USD",
        status="paid",
        number="ACME-0001",
        period_start=now - timedelta(days=42),
        period_end=now - timedelta(days=12),
        issued_at=now - timedelta(days=12),
        total=Decimal("81.30"),
    )
    return pc, other, issued


def test_portal_from_a_magic_link(page, tenant_a, tenant_b):
    pc, _other, issued = world(tenant_a, tenant_b)
    page.goto(f"/portal/{pc.token}")
    page.wait_for_url("**/portal/")
    assert "Acme Inc" in page.locator("header.top").inner_text()
    page.locator("svg.chart rect.bar").first.wait_for()
    assert page.locator("svg.chart rect.bar").count() == 30
    assert page.locator("svg.chart title").last.text_content().endswith(tuple("0123456789"))
    page.locator("#balances .entitlement").wait_for()
    assert page.locator("#balances [role=progressbar]").count() == 1
    assert "Promo credits" in page.locator("#balances").inner_text()
    page.locator("#estimate .estimate-total").wait_for()
    assert page.locator("#estimate .estimate-total").inner_text().startswith("73.42")
    pdf = page.locator(f"#invoices a.pdf[href='/portal/invoices/{issued.id}/pdf/']")
    pdf.wait_for()
    assert "987654" not in page.content() and "Globex" not in page.content()
    page.screenshot(path="/tmp/portal-desktop.png", full_page=True)
    # The window switch swaps the chart through htmx.
    page.click("text=Month")
    page.locator(".switch a.on:has-text('Month')").wait_for()
    assert page.locator("svg.chart rect.bar").count() == 12
    # The PDF link downloads the customer's invoice.
    with page.expect_download() as download:
        pdf.click()
    assert download.value.suggested_filename == "ACME-0001.pdf"
    # Mobile layout.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/portal/")
    page.locator("#estimate .estimate-total").wait_for()
    page.locator("svg.chart rect.bar").first.wait_for()
    page.screenshot(path="/tmp/portal-mobile.png", full_page=True)


def test_tampered_link_shows_a_clear_page(page, tenant_a, tenant_b):
    pc = make_portal_customer(tenant_a)
    page.goto(f"/portal/{pc.token[:-4]}abcd")
    assert "We can't open this portal" in page.locator("h1").inner_text()
    page.goto("/portal/")
    assert "link you were sent" in page.locator("#portal-denied").inner_text()


def test_customer_on_one_plan_sees_only_that_plans_features(page, tenant_a, tenant_b):
    """Two plans share a meter: the customer on "basic" sees the one chart of its plan (not the other
    plan's filtered feature, not the other tenant's), its soft limit as such, and its billing details."""
    from billing.services import customer_update
    from metering.services import meter_create
    from tests.portal.conftest import subscribe

    now = timezone.now()
    for tenant in (tenant_a, tenant_b):
        make_token_meter(tenant)
        meter_create(organization=tenant.org, slug="images", event_type="image", aggregation="COUNT")
        make_feature(tenant, key="tokens", meter="tokens")
        make_feature(tenant, key="gpt_out", meter="tokens", filters={"model": "gpt-4o", "type": "output"})
        make_feature(tenant, key="images", meter="images")
    pc = make_portal_customer(tenant_a, subjects=("app",))
    rich = make_portal_customer(tenant_a, key="rich", subjects=("rich",))
    other = make_portal_customer(tenant_b, subjects=("app",))
    since = now - timedelta(days=10)
    subscribe(tenant_a, pc.customer, feature_keys=["tokens"], since=since, plan_key="basic")
    subscribe(tenant_a, rich.customer, feature_keys=["gpt_out", "images"], since=since, plan_key="studio")
    subscribe(tenant_b, other.customer, feature_keys=["images"], since=since)
    entitlement_create(
        organization=tenant_a.org,
        customer=pc.customer,
        feature_key="tokens",
        type="metered",
        is_soft_limit=True,
        usage_period_interval="MONTH",
        usage_period_anchor=since,
        issue_after_reset=Decimal(1000),
    )
    customer_update(
        organization=tenant_a.org,
        customer=pc.customer,
        billing_address={"line1": "1 Main St", "city": "Berlin", "postalCode": "10115", "country": "DE"},
        tax_ids=[{"type": "eu_vat", "value": "DE123456789"}],
    )
    ingest(
        tenant_a,
        [
            (
                "acme-app",
                now - timedelta(days=1),
                {"tokens": 1500, "model": "gpt-4o", "type": "output"},
                "prompt",
            )
        ],
    )
    ingest(tenant_b, [("globex-app", now - timedelta(days=1), {"n": 1}, "image")])
    page.goto(f"/portal/{pc.token}")
    page.wait_for_url("**/portal/")
    page.locator("#usage .usage-section h2").first.wait_for()
    assert page.locator("#usage .usage-section").count() == 1
    assert page.locator("#usage .usage-section h2").inner_text() == "Tokens"
    assert page.locator("#usage .period-total").inner_text() == "1,500"
    assert page.locator("#plan-features").inner_text() == "Includes: Tokens"
    page.locator("#balances #ent-tokens").wait_for()
    balance = page.locator("#balances #ent-tokens").inner_text()
    assert "soft limit" in balance and "1,500 used of 1,000 included" in balance and "left" not in balance
    details = page.locator("#billing-details").inner_text()
    assert "1 Main St" in details and "10115 Berlin" in details and "Tax ID: DE123456789 (eu_vat)" in details
    content = page.content()
    assert "Gpt_Out" not in content and "Images" not in content and "Globex" not in content
    page.screenshot(path="/tmp/portal-scoped.png", full_page=True)


def test_links_shown_in_the_console_point_at_the_server_in_use(page, tenant_a, tenant_b, settings):
    """The Billing settings page shows the Stripe webhook URL of the address the browser used."""
    from tests.conftest import console_login

    settings.PUBLIC_BASE_URL = ""
    console_login(page, tenant_a.user.username)
    page.goto("/console/billing-settings/")
    text = page.locator("body").inner_text()
    assert f"{page.url.split('/console/')[0]}/api/v1/apps/stripe/webhook/acme" in text
    assert ":8000/" not in text and "/webhook/globex" not in text
