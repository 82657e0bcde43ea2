"""The console shell in a real headless Chromium: login, create a key (htmx), revoke it."""

import pytest

from core.models import ApiKey
from tests.conftest import console_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_login_create_and_revoke_a_key(page, tenant_a, tenant_b):
    console_login(page, tenant_a.user.username)
    assert page.locator("h1").inner_text() == "Acme Inc"
    page.click("text=API keys")
    page.wait_for_url("**/console/settings/api-keys/")
    assert page.locator("text=globex").count() == 0
    page.fill("#key-name", "browser key")
    page.check("input[name=scopes][value=ingest]")
    page.click("text=Create key")
    secret = page.locator("#new-key-secret").inner_text()
    assert secret.startswith("ml_")
    page.screenshot(path="/tmp/console-api-keys.png", full_page=True)
    key = ApiKey.objects.get(organization=tenant_a.org, name="browser key")
    assert key.scopes == ["ingest"]
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator(f"#key-{key.id} button:has-text('Revoke')").click()
    page.locator(f"#key-{key.id} .badge.red").wait_for()
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_wrong_password_is_refused(page, tenant_a):
    page.goto("/console/login/")
    page.fill("#id_username", tenant_a.user.username)
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    assert "didn't match" in page.locator("[role=alert]").inner_text()
