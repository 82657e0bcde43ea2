"""The pricing editor in a real headless Chromium: build a three-tier graduated price, watch the
live preview update as you type, publish, and find the plan through the API."""

import pytest

from tests.catalog.factories import api, make_feature, make_meter, plan_body
from tests.conftest import console_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_build_preview_publish_graduated_plan(page, tenant_a, tenant_b):
    for t in (tenant_a, tenant_b):
        make_meter(t.org)
        make_feature(t, "tokens")
    api(tenant_b.client(), "post", "/api/v1/plans", plan_body(key="globex_plan", name="Globex Secret Plan"))

    console_login(page, tenant_a.user.username)
    page.click("nav >> text=Plans")
    page.wait_for_url("**/console/plans/")
    assert page.locator("text=Globex Secret Plan").count() == 0
    page.fill("#plan-name", "LLM Pro")
    page.fill("#plan-key", "llm_pro")
    page.click("text=Create draft plan")
    page.wait_for_url("**/console/plans/llm_pro/**")
    assert "v1 draft" in page.locator("#plan-status").inner_text()

    page.click("#add-rate-card-default")
    page.wait_for_url("**/rate-cards/new/")
    page.fill("#rc-name", "Tokens")
    page.fill("#rc-key", "tokens")
    page.select_option("#rc-feature", "tokens")
    page.select_option("#rc-model", "graduated")  # htmx re-renders the price fields with tier rows
    page.locator("#tiers .tier-row").nth(1).wait_for()
    assert page.locator("#tiers .tier-row").count() == 2
    page.click("#add-tier")  # a third tier, no page reload
    page.locator("#tiers .tier-row").nth(2).wait_for()
    rows = page.locator("#tiers .tier-row")
    rows.nth(0).locator("input[name=tierUpTo]").fill("1000")
    rows.nth(0).locator("input[name=tierUnit]").fill("0.01")
    rows.nth(1).locator("input[name=tierUpTo]").fill("10000")
    rows.nth(1).locator("input[name=tierUnit]").fill("0.005")
    rows.nth(1).locator("input[name=tierFlat]").fill("2")
    rows.nth(2).locator("input[name=tierUnit]").fill("0.001")

    amount = page.locator("#form-preview [data-testid=preview-amount]")
    page.fill("#preview-quantity", "")
    page.locator("#preview-quantity").press_sequentially("500", delay=30)
    # 500 x 0.01 = 5.00
    page.wait_for_function(
        "() => document.querySelector('#form-preview [data-testid=preview-amount]')?.innerText === 'USD 5.00'"
    )
    page.locator("#preview-quantity").press_sequentially("0", delay=30)  # 5000
    # 1000 x 0.01 = 10; 2 + 4000 x 0.005 = 22 -> 32.00
    page.wait_for_function(
        "() => document.querySelector('#form-preview [data-testid=preview-amount]')?.innerText === 'USD 32.00'"
    )
    page.locator("#preview-quantity").press_sequentially("0", delay=30)  # 50000
    # 10 + 2 + 9000 x 0.005 = 57; 40000 x 0.001 = 40 -> 97.00
    page.wait_for_function(
        "() => document.querySelector('#form-preview [data-testid=preview-amount]')?.innerText === 'USD 97.00'"
    )
    assert amount.inner_text() == "USD 97.00"
    assert "Tier 3" in page.locator("#form-preview [data-testid=preview-lines]").inner_text()
    page.screenshot(path="/tmp/catalog-rate-card-editor.png", full_page=True)

    page.click("#save-rate-card")
    page.wait_for_url("**/console/plans/llm_pro/?version=1")
    page.locator("#pv-default-tokens [data-testid=preview-amount]").wait_for()
    page.screenshot(path="/tmp/catalog-plan-editor.png", full_page=True)

    page.click("#publish-link")
    page.wait_for_url("**/publish/")
    assert "first published version" in page.locator("#publish-summary").inner_text()
    page.click("#confirm-publish")
    page.wait_for_url("**/console/plans/llm_pro/?version=1")
    assert "v1 published" in page.locator("#plan-status").inner_text()
    assert page.locator("#readonly-note").is_visible()

    found = api(tenant_a.client("read"), "get", "/api/v1/plans?status=published").json()
    assert [(p["key"], p["version"], p["status"]) for p in found["items"]] == [("llm_pro", 1, "published")]
    price = found["items"][0]["phases"][0]["rateCards"][0]["price"]
    assert price["mode"] == "graduated"
    assert [t["upToAmount"] for t in price["tiers"]] == ["1000", "10000", None]
    assert api(tenant_b.client("read"), "get", "/api/v1/plans/llm_pro").status_code == 404
