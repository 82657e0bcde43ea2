"""Self-service in a real headless Chromium: an admin turns it on in the console and picks the plans
offered; the customer opens the portal, sees each plan with when a change applies, upgrades, then cancels
at the end of the period. The other organization's plans never show and its customer is untouched."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import Subscription
from billing.services import subscription_create
from tests.conftest import console_login
from tests.portal.conftest import make_portal_customer
from tests.portal.test_views_self_service import publish

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_customer_upgrades_then_cancels_in_the_portal(page, tenant_a, tenant_b):
    start = timezone.now() - timedelta(days=5)
    for org in (tenant_a.org, tenant_b.org):
        publish(org, "starter", "Starter", "10")
        publish(org, "pro", "Pro", "50")
        publish(org, "team", "Team", "100")
    publish(tenant_b.org, "secret_b", "Secret B plan", "1")
    a = make_portal_customer(tenant_a, key="cust-1")
    b = make_portal_customer(tenant_b, key="cust-1")
    for pc in (a, b):
        subscription_create(
            organization=pc.tenant.org, customer=pc.customer, plan_key="pro", active_from=start
        )

    console_login(page, tenant_a.user.username)
    page.goto("/console/portal/settings/")
    assert "Secret B" not in page.content()
    page.check("#self-service")
    page.select_option("#plan-keys", ["starter", "team"])
    page.click("#portal-settings button[type=submit]")
    page.wait_for_url("**/console/portal/settings/")
    assert page.locator("#self-service").is_checked()

    page.goto(f"/portal/{a.token}")
    page.wait_for_url("**/portal/")
    page.wait_for_load_state("networkidle")  # the home page's own htmx sections
    page.click("#manage-plan")
    page.wait_for_url("**/portal/plan/")
    assert "Upgrade: applies now" in page.locator("#plan-team").inner_text()
    assert "Downgrade: applies at the end of the period" in page.locator("#plan-starter").inner_text()
    assert page.locator("#plan-pro").count() == 0 and "Secret B" not in page.content()
    page.click("#plan-team button")
    page.wait_for_url("**/portal/plan/?done=changed")
    assert page.locator("#done").inner_text() == "Your plan has changed."
    assert page.locator("#current-plan .stat").inner_text() == "Team"
    page.click("#cancel button")
    page.wait_for_url("**/portal/plan/?done=canceled")
    assert "Ends on" in page.locator("#scheduled-cancel").inner_text()
    assert page.locator("#cancel").count() == 0

    subs = list(Subscription.objects.filter(customer=a.customer).order_by("active_from"))
    assert [s.plan_key for s in subs] == ["pro", "team"]
    assert subs[1].active_to is not None and subs[1].cancel_requested_at is not None
    other = Subscription.objects.get(customer=b.customer)
    assert other.plan_key == "pro" and other.active_to is None
