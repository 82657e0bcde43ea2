"""Console → Billing settings: Stripe (write-only secrets, last 4 only), tax rates (htmx add/edit/archive,
inline validation), invoice settings; audit rows without secrets; tenant isolation; a rate set here is
used by the next draft invoice; the Stripe key saved through the API is the one the gateway sends; the
page's query count does not grow with the number of tax rates and endpoints."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from core.models import AuditLog
from invoicing import stripe_gateway
from invoicing.models import Invoice, InvoicingSettings, StripeSettings, TaxRate
from invoicing.services import tax_rate_create
from invoicing.webhooks import webhook_endpoint_create
from tests.conftest import PASSWORD
from tests.invoicing.conftest import make_customer, make_subscription, run_period

pytestmark = pytest.mark.django_db

URL = "/console/billing-settings/"
SK = "sk_live_51AbCdEfGhIjKlMnOpQrStUvWx"
WH = "whsec_q1w2e3r4t5y6u7i8o9p0zzzz"
HTMX = {"HTTP_HX_REQUEST": "true"}
OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 1, 2, tzinfo=UTC)


def login(tenant) -> Client:
    client = Client()
    assert client.login(username=tenant.user.username, password=PASSWORD)
    return client


def _clean(text: str, *secrets: str) -> None:
    for s in secrets:
        assert s not in text and s[:-4] not in text


def test_page_renders_nav_and_webhook_url_for_admin(tenant_a, settings):
    settings.PUBLIC_BASE_URL = "https://bill.example.com/"
    client = login(tenant_a)
    html = client.get(URL).content.decode()
    assert "Billing settings" in html and 'href="/console/billing-settings/"' in html
    assert "https://bill.example.com/api/v1/apps/stripe/webhook/acme" in html
    assert "Not connected" in html


def test_stripe_form_saves_shows_last4_only_and_audits_without_secret(tenant_a, tenant_b):
    client = login(tenant_a)
    r = client.post(
        URL + "stripe",
        {"secret_key": SK, "webhook_secret": WH, "api_version": "2026-10-28.endive", "enabled": "on"},
        **HTMX,
    )
    assert r.status_code == 200
    partial = r.content.decode()
    assert 'id="stripe-card"' in partial and "<h1>" not in partial  # just the partial
    assert "…UvWx" in partial and "…zzzz" in partial
    page = client.get(URL).content.decode()
    _clean(partial + page, SK, WH)
    cfg = StripeSettings.objects.get(organization=tenant_a.org)
    assert (cfg.secret_key, cfg.webhook_secret) == (SK, WH)
    # empty secret fields keep the stored secrets
    assert (
        client.post(URL + "stripe", {"api_version": "2025-09-30.clover", "enabled": "on"}).status_code == 302
    )
    cfg.refresh_from_db()
    assert (cfg.secret_key, cfg.webhook_secret, cfg.api_version) == (SK, WH, "2025-09-30.clover")
    # inline validation names the field; nothing typed is echoed back; nothing saved
    bad = client.post(
        URL + "stripe", {"secret_key": "pk_live_publishable1234", "webhook_secret": "abc"}, **HTMX
    )
    assert bad.status_code == 400
    body = bad.content.decode()
    assert "starts with sk_ or rk_" in body and "starts with whsec_" in body
    assert "pk_live_publishable1234" not in body
    cfg.refresh_from_db()
    assert cfg.secret_key == SK
    rows = list(
        AuditLog.objects.filter(object_type="stripe_settings").order_by("id").values("before", "after")
    )
    assert [r["after"]["secretKey"] for r in rows] == ["set", "unchanged"]
    _clean(json.dumps(rows), SK, WH)
    # B sees its own (empty) state
    assert "Not connected" in login(tenant_b).get(URL).content.decode()
    assert not StripeSettings.objects.filter(organization=tenant_b.org).exists()


def test_tax_rates_htmx_add_edit_archive_inline_errors_and_isolation(tenant_a, tenant_b):
    client = login(tenant_a)
    b_rate = tax_rate_create(organization=tenant_b.org, name="GST", percentage="10")
    r = client.post(
        URL + "tax-rates",
        {"name": "VAT", "percentage": "19", "behavior": "exclusive", "is_default": "on"},
        **HTMX,
    )
    assert (
        r.status_code == 200 and 'id="tax-rates"' in r.content.decode() and 'value="19"' in r.content.decode()
    )
    vat = TaxRate.objects.get(organization=tenant_a.org)
    assert (vat.percentage, vat.inclusive, vat.is_default) == (Decimal("19"), False, True)
    # inline validation on add: the field is named, the typed values are kept, nothing stored
    r = client.post(URL + "tax-rates", {"name": "Bad", "percentage": "150"}, **HTMX)
    assert r.status_code == 400
    assert "percentage: Between 0 and 100" in r.content.decode() and 'value="Bad"' in r.content.decode()
    assert TaxRate.objects.filter(organization=tenant_a.org).count() == 1
    # edit in place
    r = client.post(
        URL + f"tax-rates/{vat.id}", {"name": "VAT", "percentage": "7.5", "behavior": "inclusive"}, **HTMX
    )
    assert r.status_code == 200 and 'value="7.5"' in r.content.decode()
    vat.refresh_from_db()
    assert (vat.percentage, vat.inclusive, vat.is_default) == (Decimal("7.5"), True, False)
    r = client.post(URL + f"tax-rates/{vat.id}", {"name": "", "percentage": "x"}, **HTMX)
    assert r.status_code == 400 and "name: " in r.content.decode() and "percentage: " in r.content.decode()
    # B's rate: invisible and untouchable
    assert "GST" not in client.get(URL).content.decode()
    assert client.post(URL + f"tax-rates/{b_rate.id}", {"name": "Mine", "percentage": "1"}).status_code == 404
    assert client.post(URL + f"tax-rates/{b_rate.id}/archive").status_code == 404
    b_rate.refresh_from_db()
    assert b_rate.name == "GST" and b_rate.archived_at is None
    # archive (unused → deleted)
    r = client.post(URL + f"tax-rates/{vat.id}/archive", **HTMX)
    assert r.status_code == 200 and "No tax rates yet" in r.content.decode()
    assert not TaxRate.objects.filter(organization=tenant_a.org).exists()
    actions = list(
        AuditLog.objects.filter(organization=tenant_a.org, object_type="tax_rate")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["tax_rate.created", "tax_rate.updated", "tax_rate.deleted"]


def test_invoice_settings_form_validation_and_audit(tenant_a, tenant_b):
    client = login(tenant_a)
    r = client.post(
        URL + "invoicing",
        {
            "collection_delay_seconds": "-5",
            "draft_period_seconds": "abc",
            "due_days": "400",
            "number_prefix": "no spaces",
        },
        **HTMX,
    )
    assert r.status_code == 400
    html = r.content.decode()
    assert html.count('class="field-error"') == 4 and 'value="no spaces"' in html
    assert not AuditLog.objects.filter(action="invoicing_settings.updated").exists()
    r = client.post(
        URL + "invoicing",
        {
            "collection_delay_seconds": "600",
            "draft_period_seconds": "3600",
            "due_days": "14",
            "number_prefix": "acme-inv",
        },
        **HTMX,
    )
    assert r.status_code == 200 and "Invoice settings saved" in r.content.decode()
    cfg = InvoicingSettings.objects.get(organization=tenant_a.org)
    assert (
        cfg.collection_delay_seconds,
        cfg.draft_period_seconds,
        cfg.due_days,
        cfg.number_prefix,
        cfg.auto_advance,
    ) == (
        600,
        3600,
        14,
        "ACME-INV",
        False,
    )
    row = AuditLog.objects.get(action="invoicing_settings.updated")
    assert row.after["dueDays"] == 14 and row.before["dueDays"] == 30
    b = tenant_b.client("read").get("/api/v1/billing/settings").json()
    assert (b["dueDays"], b["numberPrefix"], b["autoAdvance"]) == (30, "GLOBEX", True)


def test_viewer_cannot_open_or_post(tenant_a):
    from django.contrib.auth import get_user_model

    from core.models import Role
    from core.services import membership_set

    viewer = get_user_model().objects.create_user(username="acme-viewer", password=PASSWORD)
    membership_set(organization=tenant_a.org, user=viewer, role=Role.VIEWER)
    client = Client()
    assert client.login(username="acme-viewer", password=PASSWORD)
    assert client.get(URL).status_code == 403
    assert client.post(URL + "stripe", {"secret_key": SK}).status_code == 403
    assert client.post(URL + "tax-rates", {"name": "X", "percentage": "1"}).status_code == 403
    assert not StripeSettings.objects.exists() and not TaxRate.objects.exists()


def _period_invoice(tenant, usage, key: str) -> Invoice:
    cust = make_customer(tenant, key)
    make_subscription(
        tenant,
        cust,
        anchor=OCT,
        items=[
            {
                "key": "base",
                "name": "Base fee",
                "price": {"type": "flat", "amount": "100", "paymentTerm": "in_advance"},
            }
        ],
    )
    with time_machine.travel(NOW, tick=False):
        return run_period(tenant, NOW)


def test_tax_rate_set_in_console_is_applied_by_the_next_draft(tenant_a, tenant_b, usage):
    client = login(tenant_a)
    client.post(
        URL + "invoicing",
        {
            "collection_delay_seconds": "0",
            "draft_period_seconds": "0",
            "due_days": "30",
            "number_prefix": "ACME",
        },
    )
    client.post(
        URL + "tax-rates", {"name": "VAT", "percentage": "19", "behavior": "exclusive", "is_default": "on"}
    )
    tax_rate_create(organization=tenant_b.org, name="B-tax", percentage="50", is_default=True)
    invoice = _period_invoice(tenant_a, usage, "initech")
    assert invoice.status == "draft"  # auto-advance switched off in the console
    taxes = [x for x in invoice.lines.all() if x.type == "tax"]
    assert [(t.description.startswith("VAT"), t.amount) for t in taxes] == [(True, Decimal("19.00"))]
    assert (invoice.taxes_total, invoice.total) == (Decimal("19.00"), Decimal("119.00"))


def test_stripe_key_saved_through_api_is_what_the_gateway_sends(tenant_a, tenant_b, usage, fake_stripe):
    r = tenant_a.client("admin").put(
        "/api/v1/apps/stripe",
        {"secretKey": SK, "webhookSecret": WH, "apiVersion": "2025-09-30.clover"},
        format="json",
    )
    assert r.status_code == 200
    tenant_b.client("admin").put(
        "/api/v1/apps/stripe", {"secretKey": "sk_test_globexglobexglobex"}, format="json"
    )
    invoice = _period_invoice(tenant_a, usage, "initech")
    assert invoice.status == "issued"
    stripe_gateway.invoice_push(invoice_id=invoice.id)
    assert fake_stripe.requests
    assert {x["authorization"] for x in fake_stripe.requests} == {f"Bearer {SK}"}
    assert {x["version"] for x in fake_stripe.requests} == {"2025-09-30.clover"}
    invoice.refresh_from_db()
    assert invoice.stripe_status == "open"


def test_page_query_count_is_constant_in_rates_and_endpoints(tenant_a):
    client = login(tenant_a)
    tax_rate_create(organization=tenant_a.org, name="R0", percentage="1")
    webhook_endpoint_create(organization=tenant_a.org, url="https://hooks.acme.test/0")
    client.get(URL)  # settings row created on first view
    with CaptureQueriesContext(connection) as few:
        assert client.get(URL).status_code == 200
    for i in range(1, 15):
        tax_rate_create(organization=tenant_a.org, name=f"R{i}", percentage=str(i))
        webhook_endpoint_create(organization=tenant_a.org, url=f"https://hooks.acme.test/{i}")
    with CaptureQueriesContext(connection) as many:
        html = client.get(URL).content.decode()
    assert "R14" in html
    # session, user, membership(s), invoicing settings, Stripe settings, tax rates, (nav/messages)
    assert len(many) == len(few) <= 10, [q["sql"] for q in many.captured_queries]
