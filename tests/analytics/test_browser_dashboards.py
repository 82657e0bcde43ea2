"""Dashboards and the simulation page in Chromium (layout checked from screenshots)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from catalog.services import plan_create
from tests.analytics.test_dashboards import seed
from tests.catalog.factories import plan_body
from tests.conftest import console_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_dashboards_and_simulation(page, tenant_a, tenant_b):
    seed(tenant_a, 1)
    seed(tenant_b, 1000)
    plan_create(organization=tenant_a.org, key="pro", data=plan_body(key="pro", feature_key="gpt_in"))
    console_login(page, tenant_a.user.username)
    page.click("nav >> text=Dashboards")
    page.wait_for_url("**/console/dashboards/")
    assert page.locator("section.dataset").count() == 5
    # the headline equals the database: the active annual plan of 120 is 10 a month; the monthly plan
    # that ended on Nov 15 (not replaced) is last month's churn, 1 of the 2 active on Nov 1
    from django.db.models import Q
    from django.utils import timezone

    from billing.models import Subscription

    now = timezone.now()
    month = (now.replace(day=1) - timedelta(days=1)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    subs = Subscription.objects.filter(organization=tenant_a.org)
    active = subs.filter(active_from__lte=now).filter(Q(active_to__isnull=True) | Q(active_to__gt=now))
    at_start = subs.filter(active_from__lte=month).filter(Q(active_to__isnull=True) | Q(active_to__gt=month))
    churned = subs.filter(
        active_to__gte=month, active_to__lt=now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    )
    rate = (Decimal(churned.count()) * 100 / at_start.count()).quantize(Decimal("0.1"))
    assert page.locator("#headline-mrr").inner_text() == "10.00 USD"
    assert page.locator("#headline-arr").inner_text() == "120.00 USD"
    assert page.locator("#headline-customers").inner_text() == str(
        active.values("customer").distinct().count()
    )
    assert page.locator("#headline-churn").inner_text() == f"{rate} %"
    page.screenshot(path="/tmp/console-dashboards.png", full_page=True)
    page.click("text=Usage and showback")
    page.locator("#ds-ai-usage").wait_for()
    page.locator("#ds-chargeback").wait_for()
    assert "Globex" not in page.content()
    page.locator("#ds-ai-usage summary").click()
    page.screenshot(path="/tmp/console-usage.png", full_page=True)
    page.goto("/console/simulations/new?plan=pro&version=1")
    page.fill("#start", "2026-11-01")
    page.fill("#end", "2026-11-25")
    page.select_option("#customers", label="acme customer big (big)")
    page.click("text=Run simulation")
    page.locator("#total-simulated").wait_for()
    page.screenshot(path="/tmp/console-simulation.png", full_page=True)
