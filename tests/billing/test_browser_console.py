"""Real Chromium: assign a plan to a customer in the console and see its entitlements."""

import pytest

from billing import services
from tests.billing.real_catalog import publish_pro_plan
from tests.conftest import console_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_assign_plan_and_see_entitlements(page, tenant_a, tenant_b):
    publish_pro_plan(tenant_a.org)
    services.customer_create(
        organization=tenant_a.org, name="Acme Corp", key="acme", subject_keys=["customer-1"]
    )
    services.customer_create(organization=tenant_b.org, name="Hidden Globex", key="globex")
    console_login(page, tenant_a.user.username)
    page.click("text=Customers")
    page.wait_for_url("**/console/customers/")
    assert page.locator("text=Hidden Globex").count() == 0
    page.fill("#customer-search", "acme")
    page.wait_for_timeout(500)
    page.click("text=Acme Corp")
    page.wait_for_selector("#assign-form")
    page.select_option("#assign-plan", "pro")
    page.click("#assign-form button[type=submit]")
    page.wait_for_selector("#current-plan")
    assert "Pro v1" in page.inner_text("#current-plan")
    tokens = page.inner_text("#entitlement-tokens")
    assert ("metered" in tokens and "1,000" in tokens) or "1000" in tokens
    assert "yes" in page.inner_text("#entitlement-sso")
    # back on the list, the current plan shows
    page.goto("/console/customers/")
    assert "Pro v1" in page.inner_text("#customer-table")
