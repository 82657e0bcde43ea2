"""Settings API: Stripe app (write-only secrets), tax rates (archive when used), billing settings, outbound
notification endpoints and their delivery log. Two tenants everywhere: B's rows never show up for A and A
cannot read or change them by id (404)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from core.models import AuditLog
from invoicing.models import InvoiceLine, StripeSettings, TaxRate, WebhookDelivery, WebhookEndpoint
from invoicing.webhooks import webhook_endpoint_create, webhook_event_emit

pytestmark = pytest.mark.django_db

SK_A = "sk_test_A1b2C3d4E5f6G7h8I9j0KlmnOPQR"
WH_A = "whsec_AAAAbbbbCCCCddddEEEEffff9911"
SK_B = "rk_live_ZZyyXXwwVVuuTTssRRqqPP0000"
WH_B = "whsec_BBBBccccDDDDeeeeFFFFgggg7722"


def _names(response) -> list[str]:
    assert response["Content-Type"].startswith("application/problem+json"), response.content
    return [p["name"] for p in response.json()["invalid_params"]]


def _no_secret(text: str, *secrets: str) -> None:
    for s in secrets:
        assert s not in text
        assert s[:-4] not in text  # not even a prefix longer than the hint


def test_stripe_app_put_get_secrets_write_only_and_isolated(tenant_a, tenant_b, settings):
    settings.PUBLIC_BASE_URL = "https://billing.example.com"
    a, b = tenant_a.client("admin"), tenant_b.client("admin")
    empty = tenant_a.client("read").get("/api/v1/apps/stripe").json()
    assert empty["configured"] is False and empty["secretKeySet"] is False
    r = a.put(
        "/api/v1/apps/stripe",
        {"secretKey": SK_A, "webhookSecret": WH_A, "apiVersion": "2026-10-28.endive"},
        format="json",
    )
    assert r.status_code == 200, r.content
    assert (
        b.put("/api/v1/apps/stripe", {"secretKey": SK_B, "webhookSecret": WH_B}, format="json").status_code
        == 200
    )
    body = tenant_a.client("read").get("/api/v1/apps/stripe").json()
    assert body == {
        "configured": True,
        "enabled": True,
        "secretKeySet": True,
        "secretKeyLast4": "OPQR",
        "webhookSecretSet": True,
        "webhookSecretLast4": "9911",
        "apiVersion": "2026-10-28.endive",
        "collectionMethod": "send_invoice",
        "webhookUrl": "https://billing.example.com/api/v1/apps/stripe/webhook/acme",
    }
    for resp in (r, tenant_a.client("read").get("/api/v1/apps/stripe")):
        _no_secret(resp.content.decode(), SK_A, WH_A, SK_B, WH_B)
    assert tenant_b.client("read").get("/api/v1/apps/stripe").json()["secretKeyLast4"] == "0000"
    # a PUT without secretKey keeps the stored key (write-only: the UI never has it to send back)
    assert a.put("/api/v1/apps/stripe", {"apiVersion": "2025-09-30.clover"}, format="json").status_code == 200
    cfg = StripeSettings.objects.get(organization=tenant_a.org)
    assert (cfg.secret_key, cfg.webhook_secret, cfg.api_version) == (SK_A, WH_A, "2025-09-30.clover")
    assert StripeSettings.objects.get(organization=tenant_b.org).secret_key == SK_B
    # audit rows say "set"/"changed", never the secret
    rows = list(AuditLog.objects.filter(object_type="stripe_settings").values("before", "after"))
    assert len(rows) == 3
    _no_secret(json.dumps(rows), SK_A, WH_A, SK_B, WH_B)
    assert rows[0]["after"]["secretKey"] in ("set", "unchanged")


def test_stripe_app_validation_names_field_and_needs_admin(tenant_a):
    a = tenant_a.client("admin")
    r = a.put("/api/v1/apps/stripe", {"webhookSecret": WH_A}, format="json")
    assert r.status_code == 400 and _names(r) == ["secretKey"]
    r = a.put(
        "/api/v1/apps/stripe",
        {"secretKey": "pk_test_public123456", "webhookSecret": "nope_123456789", "apiVersion": "latest"},
        format="json",
    )
    assert r.status_code == 400 and _names(r) == ["secretKey", "webhookSecret", "apiVersion"]
    _no_secret(r.content.decode(), "pk_test_public123456")
    assert not StripeSettings.objects.exists()
    r = tenant_a.client("read").put("/api/v1/apps/stripe", {"secretKey": SK_A}, format="json")
    assert r.status_code == 403 and not StripeSettings.objects.exists()


def test_tax_rates_crud_validation_default_and_isolation(tenant_a, tenant_b):
    a, b = tenant_a.client("admin"), tenant_b.client("admin")
    r = a.post("/api/v1/tax-rates", {"name": "VAT", "percentage": "19", "isDefault": True}, format="json")
    assert r.status_code == 201, r.content
    vat = r.json()
    assert (vat["percentage"], vat["behavior"], vat["isDefault"]) == ("19", "exclusive", True)
    b_rate = b.post("/api/v1/tax-rates", {"name": "GST", "percentage": "10"}, format="json").json()
    r = a.post(
        "/api/v1/tax-rates",
        {"name": "Reduced", "percentage": "7.5", "behavior": "inclusive", "isDefault": True},
        format="json",
    )
    reduced = r.json()
    assert reduced["isDefault"] is True
    page = tenant_a.client("read").get("/api/v1/tax-rates", {"pageSize": 1}).json()
    assert (page["totalCount"], page["page"], page["pageSize"], len(page["items"])) == (2, 1, 1, 1)
    listed = tenant_a.client("read").get("/api/v1/tax-rates").json()["items"]
    assert [(x["name"], x["isDefault"]) for x in listed] == [("Reduced", True), ("VAT", False)]
    # validation: the field is named; nothing stored
    for payload, field in [
        ({"name": "X", "percentage": "101"}, "percentage"),
        ({"name": "X", "percentage": "abc"}, "percentage"),
        ({"name": "X", "percentage": 19}, "percentage"),
        ({"name": "", "percentage": "5"}, "name"),
        ({"name": "X", "percentage": "5", "behavior": "sideways"}, "behavior"),
    ]:
        r = a.post("/api/v1/tax-rates", payload, format="json")
        assert r.status_code == 400 and _names(r) == [field], (payload, r.content)
    assert TaxRate.objects.filter(organization=tenant_a.org).count() == 2
    r = a.patch(f"/api/v1/tax-rates/{vat['id']}", {"percentage": "20.25"}, format="json")
    assert r.status_code == 200 and r.json()["percentage"] == "20.25"
    r = a.patch(f"/api/v1/tax-rates/{vat['id']}", {"percentage": "-1"}, format="json")
    assert r.status_code == 400 and _names(r) == ["percentage"]
    # A can't see or touch B's rate
    assert tenant_a.client("read").get(f"/api/v1/tax-rates/{b_rate['id']}").status_code == 404
    assert a.patch(f"/api/v1/tax-rates/{b_rate['id']}", {"name": "Hacked"}, format="json").status_code == 404
    assert a.delete(f"/api/v1/tax-rates/{b_rate['id']}").status_code == 404
    assert TaxRate.objects.get(id=b_rate["id"]).name == "GST"
    assert (
        tenant_a.client("read")
        .post("/api/v1/tax-rates", {"name": "R", "percentage": "1"}, format="json")
        .status_code
        == 403
    )
    # unused rate: deleted; used rate: archived, no longer default
    assert a.delete(f"/api/v1/tax-rates/{vat['id']}").status_code == 204
    assert not TaxRate.objects.filter(id=vat["id"]).exists()
    used = TaxRate.objects.get(id=reduced["id"])
    _line_using(tenant_a, used)
    r = a.delete(f"/api/v1/tax-rates/{used.id}")
    assert r.status_code == 200 and r.json()["archivedAt"] and r.json()["isDefault"] is False
    assert tenant_a.client("read").get("/api/v1/tax-rates").json()["items"] == []
    archived = tenant_a.client("read").get("/api/v1/tax-rates", {"includeArchived": "true"}).json()["items"]
    assert [x["id"] for x in archived] == [used.id]
    assert [x["name"] for x in tenant_b.client("read").get("/api/v1/tax-rates").json()["items"]] == ["GST"]
    actions = list(
        AuditLog.objects.filter(organization=tenant_a.org, object_type="tax_rate").values_list(
            "action", flat=True
        )
    )
    assert sorted(actions) == sorted(
        ["tax_rate.created", "tax_rate.created", "tax_rate.updated", "tax_rate.deleted", "tax_rate.archived"]
    )


def _line_using(tenant, rate: TaxRate) -> None:
    from datetime import UTC, datetime

    from invoicing.models import Invoice
    from tests.invoicing.conftest import make_customer

    cust = make_customer(tenant, f"used-{rate.id[-6:].lower()}")
    inv = Invoice.objects.create(
        organization=tenant.org,
        customer=cust,
        currency="USD",
        status="draft",
        period_start=datetime(2026, 10, 1, tzinfo=UTC),
        period_end=datetime(2026, 11, 1, tzinfo=UTC),
    )
    InvoiceLine.objects.create(
        organization=tenant.org,
        invoice=inv,
        type="manual",
        description="x",
        amount=Decimal("1"),
        tax_rate=rate,
    )


def test_billing_settings_get_put_validation_and_isolation(tenant_a, tenant_b):
    a = tenant_a.client("admin")
    got = tenant_a.client("read").get("/api/v1/billing/settings").json()
    assert (got["collectionDelaySeconds"], got["dueDays"], got["numberPrefix"]) == (3600, 30, "ACME")
    r = a.put(
        "/api/v1/billing/settings",
        {
            "collectionDelaySeconds": 7200,
            "draftPeriodSeconds": 86400,
            "autoAdvance": False,
            "dueDays": 14,
            "numberPrefix": "inv-a",
        },
        format="json",
    )
    assert r.status_code == 200, r.content
    assert (r.json()["numberPrefix"], r.json()["dueDays"], r.json()["autoAdvance"]) == ("INV-A", 14, False)
    r = a.put(
        "/api/v1/billing/settings",
        {"collectionDelaySeconds": -1, "dueDays": "soon", "numberPrefix": "bad prefix!", "colour": "red"},
        format="json",
    )
    assert r.status_code == 400 and _names(r) == ["colour"]
    r = a.put(
        "/api/v1/billing/settings",
        {
            "collectionDelaySeconds": -1,
            "dueDays": "soon",
            "numberPrefix": "bad prefix!",
            "autoAdvance": "yes",
        },
        format="json",
    )
    assert r.status_code == 400
    assert _names(r) == ["collectionDelaySeconds", "dueDays", "numberPrefix", "autoAdvance"]
    b = tenant_b.client("read").get("/api/v1/billing/settings").json()
    assert (b["dueDays"], b["numberPrefix"]) == (30, "GLOBEX")
    assert tenant_a.client("read").get("/api/v1/billing/settings").json()["dueDays"] == 14
    assert (
        tenant_a.client("read").put("/api/v1/billing/settings", {"dueDays": 1}, format="json").status_code
        == 403
    )
    row = AuditLog.objects.get(organization=tenant_a.org, action="invoicing_settings.updated")
    assert row.before["dueDays"] == 30 and row.after["dueDays"] == 14


def test_notification_endpoints_crud_secret_once_and_isolation(tenant_a, tenant_b):
    a, b = tenant_a.client("admin"), tenant_b.client("admin")
    r = a.post(
        "/api/v1/notification/endpoints",
        {"url": "https://hooks.acme.test/in", "eventTypes": ["invoice.issued"], "description": "ERP"},
        format="json",
    )
    assert r.status_code == 201, r.content
    created = r.json()
    secret = created["secret"]
    assert secret.startswith("whsec_") and WebhookEndpoint.objects.get(id=created["id"]).secret == secret
    b_ep = b.post("/api/v1/notification/endpoints", {"url": "http://globex.test/h"}, format="json").json()
    listed = tenant_a.client("read").get("/api/v1/notification/endpoints")
    assert [x["id"] for x in listed.json()["items"]] == [created["id"]]
    one = tenant_a.client("read").get(f"/api/v1/notification/endpoints/{created['id']}")
    assert one.json()["eventTypes"] == ["invoice.issued"]
    for resp in (listed, one):
        _no_secret(resp.content.decode(), secret, b_ep["secret"])
    # validation
    for payload, field in [
        ({"url": "ftp://x.test/h"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "https://x.test/h", "eventTypes": ["invoice.exploded"]}, "eventTypes"),
    ]:
        r = a.post("/api/v1/notification/endpoints", payload, format="json")
        assert r.status_code == 400 and _names(r) == [field], r.content
    r = a.patch(
        f"/api/v1/notification/endpoints/{created['id']}", {"url": "javascript:alert(1)"}, format="json"
    )
    assert r.status_code == 400 and _names(r) == ["url"]
    r = a.patch(
        f"/api/v1/notification/endpoints/{created['id']}",
        {"enabled": False, "eventTypes": ["invoice.paid", "invoice.voided"]},
        format="json",
    )
    assert r.status_code == 200 and r.json()["enabled"] is False and "secret" not in r.json()
    # A can't read or change B's endpoint
    url = f"/api/v1/notification/endpoints/{b_ep['id']}"
    assert a.get(url).status_code == 404
    assert a.patch(url, {"url": "https://evil.test/"}, format="json").status_code == 404
    assert a.delete(url).status_code == 404
    assert a.get(url + "/deliveries").status_code == 404
    assert WebhookEndpoint.objects.get(id=b_ep["id"]).url == "http://globex.test/h"
    assert (
        tenant_a.client("read").delete(f"/api/v1/notification/endpoints/{created['id']}").status_code == 403
    )
    audit = json.dumps(
        list(AuditLog.objects.filter(object_type="webhook_endpoint").values("before", "after"))
    )
    _no_secret(audit, secret, b_ep["secret"])
    assert a.delete(f"/api/v1/notification/endpoints/{created['id']}").status_code == 204
    assert not WebhookEndpoint.objects.filter(id=created["id"]).exists()
    assert WebhookEndpoint.objects.filter(id=b_ep["id"]).exists()


def test_endpoint_deliveries_cursor_paginated_and_scoped(
    tenant_a, tenant_b, django_capture_on_commit_callbacks
):
    ep = webhook_endpoint_create(organization=tenant_a.org, url="https://hooks.acme.test/in")
    other = webhook_endpoint_create(organization=tenant_a.org, url="https://hooks.acme.test/other")
    webhook_endpoint_create(organization=tenant_b.org, url="https://hooks.globex.test/in")
    for i in range(5):
        webhook_event_emit(organization=tenant_a.org, type="invoice.issued", payload={"n": i})
        webhook_event_emit(organization=tenant_b.org, type="invoice.issued", payload={"n": i})
    assert WebhookDelivery.objects.filter(endpoint=ep).count() == 5
    client = tenant_a.client("read")
    first = client.get(f"/api/v1/notification/endpoints/{ep.id}/deliveries", {"limit": 3}).json()
    assert len(first["items"]) == 3 and first["next"]
    second = client.get(first["next"]).json()
    ids = [d["id"] for d in first["items"] + second["items"]]
    assert len(set(ids)) == 5 and second["next"] is None
    assert set(ids) == set(WebhookDelivery.objects.filter(endpoint=ep).values_list("id", flat=True))
    assert {d["eventType"] for d in first["items"]} == {"invoice.issued"}
    assert first["items"][0]["status"] == "pending"
    assert other.id not in json.dumps(first)
