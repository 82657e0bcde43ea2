"""Portal tokens: mint, list, invalidate, expiry, tampering, other organizations, forced scope."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from portal import sources
from portal.models import PortalToken
from portal.tokens import TOKEN_PREFIX

pytestmark = pytest.mark.django_db


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_create_token_for_customer_returns_token_once(tenant_a, cust_a):
    r = tenant_a.client("admin").post(
        "/api/v1/portal/tokens", {"customer": "cust-1", "allowedMeterSlugs": []}, format="json"
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["token"].startswith(TOKEN_PREFIX)
    assert body["url"].endswith("/portal/" + body["token"])
    assert body["customerId"] == cust_a.customer.id
    assert set(body) >= {"id", "token", "subject", "expiresAt", "allowedMeterSlugs", "createdAt"}
    created = timezone.now()
    row = PortalToken.objects.get(id=body["id"])
    assert abs((row.expires_at - created) - timedelta(hours=1)) < timedelta(seconds=5)
    listed = tenant_a.client("read").get("/api/v1/portal/tokens").json()
    assert body["id"] in [t["id"] for t in listed]
    assert all("token" not in t for t in listed)
    assert body["token"] not in str(listed)


def test_create_by_subject_resolves_customer_and_validates(tenant_a, cust_a):
    client = tenant_a.client("admin")
    r = client.post("/api/v1/portal/tokens", {"subject": "acme-subj-1", "expiresIn": 600}, format="json")
    assert r.status_code == 201
    assert r.json()["customerId"] == cust_a.customer.id and r.json()["subject"] == "acme-subj-1"
    r = client.post("/api/v1/portal/tokens", {}, format="json")
    assert r.status_code == 400 and r["Content-Type"] == "application/problem+json"
    r = client.post("/api/v1/portal/tokens", {"customer": "nope"}, format="json")
    assert r.json()["invalid_params"][0]["name"] == "customer"
    r = client.post("/api/v1/portal/tokens", {"subject": "x", "expiresIn": 10**9}, format="json")
    assert r.json()["invalid_params"][0]["name"] == "expiresIn"
    r = client.post("/api/v1/portal/tokens", {"subject": "x", "allowedMeterSlugs": ["ghost"]}, format="json")
    assert r.json()["invalid_params"][0]["name"] == "allowedMeterSlugs"


def test_scopes_read_key_cannot_mint_or_invalidate(tenant_a, cust_a):
    count = PortalToken.objects.count()
    assert (
        tenant_a.client("read").post("/api/v1/portal/tokens", {"subject": "s"}, format="json").status_code
        == 403
    )
    r = tenant_a.client("read").post(
        "/api/v1/portal/tokens/invalidate", {"id": cust_a.token_id}, format="json"
    )
    assert r.status_code == 403
    assert PortalToken.objects.count() == count
    assert PortalToken.objects.get(id=cust_a.token_id).invalidated_at is None


def test_other_org_cannot_see_mint_for_or_invalidate_a_token(tenant_a, tenant_b, cust_a, cust_b):
    listed = tenant_b.client("read").get("/api/v1/portal/tokens").json()
    assert [t["id"] for t in listed] == [cust_b.token_id]
    # B asks for A's customer by id: not found in B.
    r = tenant_b.client("admin").post(
        "/api/v1/portal/tokens", {"customer": cust_a.customer.id}, format="json"
    )
    assert r.status_code == 400
    r = tenant_b.client("admin").post(
        "/api/v1/portal/tokens/invalidate", {"id": cust_a.token_id}, format="json"
    )
    assert r.status_code == 204
    assert PortalToken.objects.get(id=cust_a.token_id).invalidated_at is None


def test_portal_query_authenticates_and_expires(tenant_a, cust_a):
    client = bearer(cust_a.token)
    assert client.get("/api/v1/portal/meters/tokens/query").status_code in (200, 404)
    with time_machine.travel(timezone.now() + timedelta(hours=1, seconds=5)):
        r = client.get("/api/v1/portal/meters/tokens/query")
        assert r.status_code == 401
        assert r["Content-Type"] == "application/problem+json"
        assert "expired" in r.json()["detail"]


def test_invalidated_token_gets_401_at_once(tenant_a, cust_a):
    r = tenant_a.client("admin").post(
        "/api/v1/portal/tokens/invalidate", {"id": cust_a.token_id}, format="json"
    )
    assert r.status_code == 204
    r = bearer(cust_a.token).get("/api/v1/portal/meters/tokens/query")
    assert r.status_code == 401 and "invalidated" in r.json()["detail"]


def test_invalidate_by_subject(tenant_a, cust_a):
    client = tenant_a.client("admin")
    token = client.post("/api/v1/portal/tokens", {"subject": "acme-subj-1"}, format="json").json()
    client.post("/api/v1/portal/tokens/invalidate", {"subject": "acme-subj-1"}, format="json")
    assert PortalToken.objects.get(id=token["id"]).invalidated_at is not None
    assert PortalToken.objects.get(id=cust_a.token_id).invalidated_at is None  # customer-wide token untouched
    r = client.post("/api/v1/portal/tokens/invalidate", {}, format="json")
    assert r.status_code == 400


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature
        lambda t: t.replace(TOKEN_PREFIX, TOKEN_PREFIX + "x", 1),  # payload
        lambda t: "mlp_garbage",
        lambda t: t + "." * 500,
    ],
)
def test_tampered_tokens_get_401(cust_a, mangle):
    r = bearer(mangle(cust_a.token)).get("/api/v1/portal/meters/tokens/query")
    assert r.status_code == 401
    assert r["Content-Type"] == "application/problem+json"


def test_forged_payload_for_another_org_is_refused(cust_a, cust_b):
    """A token signed for org B's row cannot be replayed as org A's (org id is in the signed claims and
    the row lookup is by both)."""
    from portal.tokens import token_sign

    row_b = PortalToken.objects.get(id=cust_b.token_id)
    forged = token_sign(organization_id=cust_a.tenant.org.id, token_id=row_b.id, expires_at=row_b.expires_at)
    r = bearer(forged).get("/api/v1/portal/meters/tokens/query")
    assert r.status_code == 401


def test_api_key_is_not_a_portal_token_and_portal_token_is_not_an_api_key(tenant_a, cust_a):
    r = bearer(tenant_a.keys["admin"]).get("/api/v1/portal/meters/tokens/query")
    assert r.status_code == 401
    r = bearer(cust_a.token).get("/api/v1/portal/tokens")
    assert r.status_code == 401


def test_portal_query_is_forced_to_the_customer(monkeypatch, tenant_a, cust_a, cust_b):
    calls = []
    meter = type("M", (), {"slug": "tokens", "id": "X", "group_by": {"model": "$.model"}})()
    monkeypatch.setattr(sources, "meter_get", lambda **kw: meter)

    def fake_query(**kwargs):
        calls.append(kwargs)
        return {"data": []}

    monkeypatch.setattr(sources, "meter_query", fake_query)
    client = bearer(cust_a.token)
    assert client.get("/api/v1/portal/meters/tokens/query?windowSize=DAY&groupBy=model").status_code == 200
    assert calls[-1]["subjects"] == ["acme-subj-1"] and calls[-1]["organization"] == tenant_a.org
    # Guessing the other tenant's subject or customer id is refused, not widened.
    r = client.get("/api/v1/portal/meters/tokens/query?subject=globex-subj-1")
    assert r.status_code == 403
    r = client.get(f"/api/v1/portal/meters/tokens/query?filterCustomerId={cust_b.customer.id}")
    assert r.status_code == 403
    assert len(calls) == 1


def test_allowed_meter_slugs_restrict_the_query(monkeypatch, tenant_a, cust_a):
    meter = type("M", (), {"slug": "tokens", "id": "X", "group_by": {}})()
    monkeypatch.setattr(sources, "unknown_meter_slugs", lambda **kw: [])
    monkeypatch.setattr(sources, "meter_get", lambda **kw: meter)
    monkeypatch.setattr(sources, "meter_query", lambda **kw: {"data": []})
    token = (
        tenant_a.client("admin")
        .post(
            "/api/v1/portal/tokens", {"customer": "cust-1", "allowedMeterSlugs": ["requests"]}, format="json"
        )
        .json()["token"]
    )
    assert bearer(token).get("/api/v1/portal/meters/tokens/query").status_code == 403
    assert bearer(token).get("/api/v1/portal/meters/requests/query").status_code == 200
