"""Meters console in a real headless Chromium: inline validation via htmx, create, see it listed."""

import pytest

from metering.models import Meter
from tests.conftest import console_login
from tests.factories import MeterFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_create_meter_with_inline_errors(page, tenant_a, tenant_b):
    MeterFactory(organization=tenant_b.org, slug="b_secret", event_type="x", aggregation="COUNT")
    console_login(page, tenant_a.user.username)
    page.click("text=Meters")
    page.wait_for_url("**/console/meters/")
    assert page.locator("text=b_secret").count() == 0
    page.click("#new-meter")
    page.fill("#id_slug", "Bad Slug")
    page.fill("#id_event_type", "prompt")
    page.fill("#id_value_property", "tokens")
    page.click("button:has-text('Create meter')")
    page.locator("#error-slug").wait_for()
    assert "lowercase" in page.locator("#error-slug").inner_text()
    assert "JSONPath" in page.locator("#error-value_property").inner_text()
    page.fill("#id_slug", "llm_tokens")
    page.fill("#id_value_property", "$.tokens")
    page.fill("#id_group_by", "model=$.model")
    page.click("button:has-text('Create meter')")
    page.wait_for_url("**/console/meters/")
    page.locator("#meter-llm_tokens").wait_for()
    assert "no usage" in page.locator("#meter-llm_tokens").inner_text()
    assert Meter.objects.get(organization=tenant_a.org, slug="llm_tokens").group_by == {"model": "$.model"}
