"""Real Chromium: a styled 404 for a missing console object (here another organization's meter) with a way
back, and a path error shown without Markdown backticks."""

from __future__ import annotations

import pytest

from tests.conftest import console_login
from tests.factories import MeterFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_styled_404_and_plain_error_messages(page, tenant_a, tenant_b):
    MeterFactory(organization=tenant_b.org, slug="secret", event_type="x", aggregation="COUNT")
    console_login(page, tenant_a.user.username)
    response = page.goto("/console/meters/secret/")
    assert response is not None and response.status == 404
    assert page.locator("#not-found h1").inner_text() == "Page not found"
    assert page.locator("#not-found").evaluate("e => getComputedStyle(e).borderRadius") == "12px"
    page.click("text=Back to the console")
    page.wait_for_url("**/console/")
    page.goto("/console/meters/new/")
    page.fill("#id_slug", "tokens")
    page.fill("#id_event_type", "prompt")
    page.fill("#id_value_property", "tokens")
    page.click("button:has-text('Create meter')")
    error = page.locator("#error-value_property")
    error.wait_for()
    assert error.inner_text() == "must be a JSONPath starting with $, e.g. $.tokens"
