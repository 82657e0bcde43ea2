"""Dashboards and the simulation page in Chromium (layout checked from screenshots)."""

from __future__ import annotations

import pytest

from catalog.services import plan_create
from tests.catalog.factories import plan_body
from tests.conftest import console_login
from tests.portal.test_dashboards import seed

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_dashboards_and_simulation(page, tenant_a, tenant_b):
    seed(tenant_a, 1)
    seed(tenant_b, 1000)
    plan_create(organization=tenant_a.org, key="pro", data=plan_body(key="pro", feature_key="gpt_in"))
    console_login(page, tenant_a.user.username)
    page.click("nav >> text=Dashboards")
    page.wait_for_url("**/console/dashboards/")
    assert page.locator("section.dataset").count() == 4
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
