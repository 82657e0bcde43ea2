"""Links the server hands out are built from the request (its scheme, host and port) unless
PUBLIC_BASE_URL is configured: the portal token's magic link and the Stripe webhook URL on Billing
settings; never a fixed port."""

from __future__ import annotations

import pytest
from django.test import Client

from core.links import absolute_url
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def mint(tenant, **extra):
    r = tenant.client("admin").post("/api/v1/portal/tokens", {"customer": "cust-1"}, format="json", **extra)
    assert r.status_code == 201, r.content
    return r.json()


def test_portal_token_url_follows_the_request_host_and_port(tenant_a, cust_a, cust_b, settings):
    settings.PUBLIC_BASE_URL = ""
    settings.ALLOWED_HOSTS = ["billing.internal"]
    body = mint(tenant_a, HTTP_HOST="billing.internal:9123")
    assert body["url"] == f"http://billing.internal:9123/portal/{body['token']}"
    body = mint(tenant_a, HTTP_HOST="billing.internal", secure=True)
    assert body["url"] == f"https://billing.internal/portal/{body['token']}"
    assert body["customerId"] == cust_a.customer.id != cust_b.customer.id


def test_portal_token_url_uses_the_configured_public_base_url(tenant_a, cust_a, settings):
    settings.PUBLIC_BASE_URL = "https://billing.example.com/"
    body = mint(tenant_a, HTTP_HOST="localhost:5555")
    assert body["url"] == f"https://billing.example.com/portal/{body['token']}"


def test_stripe_webhook_url_follows_the_request(tenant_a, tenant_b, settings):
    settings.PUBLIC_BASE_URL = ""
    settings.ALLOWED_HOSTS = ["billing.internal"]
    client = Client(HTTP_HOST="billing.internal:7001")
    assert client.login(username=tenant_a.user.username, password=PASSWORD)
    html = client.get("/console/billing-settings/").content.decode()
    assert "http://billing.internal:7001/api/v1/apps/stripe/webhook/acme" in html
    assert ":8000" not in html and "/webhook/globex" not in html
    settings.PUBLIC_BASE_URL = "https://pay.example.com"
    html = client.get("/console/billing-settings/").content.decode()
    assert "https://pay.example.com/api/v1/apps/stripe/webhook/acme" in html


def test_outside_a_request_the_port_comes_from_the_environment(settings, monkeypatch):
    settings.PUBLIC_BASE_URL = ""
    monkeypatch.setenv("PORT", "8765")
    assert absolute_url("/portal/x") == "http://127.0.0.1:8765/portal/x"
    settings.PUBLIC_BASE_URL = "https://b.example.com"
    assert absolute_url("/portal/x") == "https://b.example.com/portal/x"
