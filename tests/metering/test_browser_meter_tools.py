"""Real Chromium: test a value path on a pasted event, fix a $.data path, create the meter, add a dimension,
explore its usage by model, and archive it once the feature that read it is gone."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from catalog.services import feature_create, feature_delete
from metering.models import Meter
from tests.conftest import console_login
from tests.factories import MeterFactory
from tests.metering.conftest import ce, post_events

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_meter_tools(page, tenant_a, tenant_b):
    MeterFactory(
        organization=tenant_b.org,
        slug="tokens",
        event_type="prompt",
        aggregation="SUM",
        value_property="$.tokens",
    )
    console_login(page, tenant_a.user.username)
    page.goto("/console/meters/new/")
    page.fill("#id_slug", "tokens")
    page.fill("#id_name", "AI tokens")
    page.fill("#id_event_type", "prompt")
    page.fill("#id_value_property", "$.data.tokens")
    page.fill("#id_group_by", "model=$.model")
    sample = ce("x", data={"tokens": 1200, "model": "gpt-4o", "region": "eu"})
    page.fill("#id_sample", json.dumps(sample))
    page.click("#path-test-form button[type=submit]")
    page.locator("#reading-value .problem").wait_for()
    assert "write $.tokens, not $.data.tokens" in page.locator("#reading-value").inner_text()
    assert page.locator("#reading-model .found").inner_text() == "gpt-4o"
    page.fill("#id_value_property", "$.tokens")
    page.click("#path-test-form button[type=submit]")
    page.locator("#reading-value .found:has-text('1200')").wait_for()
    page.click("button:has-text('Create meter')")
    page.wait_for_url("**/console/meters/")
    meter = Meter.objects.get(organization=tenant_a.org, slug="tokens")

    # add a dimension (existing ones stay)
    page.goto(f"/console/meters/{meter.id}/edit/")
    page.fill("#id_group_by", "model=$.model\nregion=$.region")
    page.click("button:has-text('Save')")
    page.wait_for_url("**/console/meters/")
    meter.refresh_from_db()
    assert meter.group_by == {"model": "$.model", "region": "$.region"}

    # explore it
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    events = [
        ce(
            f"e{i}",
            time=(today - timedelta(days=1, hours=-i)).isoformat().replace("+00:00", "Z"),
            data={"tokens": t, "model": m, "region": "eu"},
        )
        for i, (t, m) in enumerate([(100, "gpt-4o"), (40, "mini"), (60, "gpt-4o")])
    ]
    post_events(tenant_a.client("ingest"), events)
    page.click("#meter-tokens a:has-text('Explore')")
    page.wait_for_url("**/console/meters/tokens/")
    assert page.locator("#explore-total").inner_text() == "200"
    page.check("input[name=group_by][value=model]")
    page.click("#explore-form button[type=submit]")
    page.locator("#explore-table th:has-text('gpt-4o')").wait_for()
    row = page.locator("#explore-table tbody tr").first.inner_text()
    assert "160" in row and "40" in row and "200" in row
    assert "groupBy=model" in page.locator("#explore-api").inner_text()
    page.screenshot(path="/tmp/console-meter-explorer.png", full_page=True)

    # archive: refused while a feature reads it, done once the feature is gone
    feature_create(organization=tenant_a.org, key="ai_tokens", name="AI tokens", meter_slug="tokens")
    page.goto(f"/console/meters/{meter.id}/archive/")
    assert "ai_tokens" in page.locator("#dependents").inner_text()
    feature_delete(organization=tenant_a.org, id_or_key="ai_tokens")
    page.reload()
    page.click("#archive-form button[type=submit]")
    page.wait_for_url("**/console/meters/")
    assert page.locator("#meter-tokens").count() == 0
    assert Meter.objects.get(organization=tenant_b.org, slug="tokens").deleted_at is None
