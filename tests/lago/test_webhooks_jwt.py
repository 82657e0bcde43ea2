"""Lago's `jwt` webhook signature: an endpoint made with `signature_algo: "jwt"` through the real
`lago-python-client` gets Lago's envelope with `X-Lago-Signature` a JWT (RS256) over the body, verified
with the organization's public key from `client.webhooks.public_key()` exactly as a Lago receiver does.
Organization B has its own key: B's key does not verify A's deliveries, and B gets nothing of A's."""

from __future__ import annotations

import base64
import json

import httpx
import jwt
import pytest
import time_machine
from django.db import connection

from invoicing.models import WebhookEndpoint
from invoicing.tasks import invoice_clock
from invoicing.webhooks import billing_notifications_forward
from lago.models import WebhookSigningKey
from tests.lago.conftest import at, build
from tests.lago.test_webhooks import _catalog

pytestmark = pytest.mark.django_db(transaction=True)
ISSUER = "https://billing.example.test/lago"


@pytest.fixture(autouse=True)
def public_base(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.PUBLIC_BASE_URL = "https://billing.example.test/"


def test_jwt_signed_deliveries_verify_with_the_organizations_public_key(
    lago_clients,
    tenant_a,
    tenant_b,
    receiver,
    live_server,
):
    from lago_python_client.exceptions import LagoApiError
    from lago_python_client.models import WebhookEndpoint as LagoWebhookEndpoint

    base, got = receiver
    a, b = lago_clients
    with time_machine.travel(at("2026-10-01 00:00"), tick=True):
        made = a.webhook_endpoints.create(
            build(LagoWebhookEndpoint, webhook_url=f"{base}/jwt", signature_algo="jwt")
        )
        assert made.signature_algo == "jwt"
        assert WebhookEndpoint.objects.get(id=made.lago_id).format == "lago_jwt"
        b.webhook_endpoints.create(build(LagoWebhookEndpoint, webhook_url=f"{base}/b", signature_algo="jwt"))
        _catalog(a, "cust-1", 3100)
        _catalog(b, "cust-1", 100)
        got.clear()
    with time_machine.travel(at("2026-10-01 00:05"), tick=True):
        billing_notifications_forward()
        invoice_clock()

    a_key, b_key = a.webhooks.public_key(), b.webhooks.public_key()
    assert a_key.startswith(b"-----BEGIN PUBLIC KEY-----") and a_key != b_key
    # the plain-text path answers the same Base64 (Lago's GET /webhooks/public_key)
    plain = httpx.get(
        f"{live_server.url}/lago/api/v1/webhooks/public_key",
        headers={"Authorization": f"Bearer {tenant_a.keys['read']}"},
    )
    assert plain.status_code == 200 and base64.b64decode(plain.text) == a_key
    assert httpx.get(f"{live_server.url}/lago/api/v1/webhooks/public_key").status_code == 401

    deliveries = got.pop("/jwt")
    assert [json.loads(x["body"])["webhook_type"] for x in deliveries] == [
        "subscription.started",
        "invoice.drafted",
        "invoice.created",
    ]
    for x in deliveries:
        assert x["headers"]["x-lago-signature-algorithm"] == "jwt"
        claims = jwt.decode(x["headers"]["x-lago-signature"], a_key, algorithms=["RS256"], issuer=ISSUER)
        assert claims["data"] == x["body"].decode()  # the receiver compares `data` with the raw body
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(x["headers"]["x-lago-signature"], b_key, algorithms=["RS256"], issuer=ISSUER)
    assert json.loads(deliveries[2]["body"])["invoice"]["total_amount_cents"] == 3100
    b_bodies = [json.loads(x["body"]) for x in got.pop("/b")]
    assert {x["invoice"]["total_amount_cents"] for x in b_bodies if x["object_type"] == "invoice"} == {100}
    for x in got.get("/b", []):
        jwt.decode(x["headers"]["x-lago-signature"], b_key, algorithms=["RS256"], issuer=ISSUER)
    assert got == {}

    # the private keys are stored encrypted, one per organization
    assert WebhookSigningKey.objects.filter(organization=tenant_a.org).count() == 1
    with connection.cursor() as cur:
        cur.execute("SELECT private_key FROM lago_webhooksigningkey")
        stored = [row[0] for row in cur.fetchall()]
    assert len(stored) == 2 and all(v.startswith("fernet:") for v in stored)

    # back to HMAC by update; a bad algorithm is Lago's 422
    updated = a.webhook_endpoints.update(build(LagoWebhookEndpoint, signature_algo="hmac"), made.lago_id)
    assert updated.signature_algo == "hmac"
    assert WebhookEndpoint.objects.get(id=made.lago_id).format == "lago"
    with pytest.raises(LagoApiError) as exc:
        a.webhook_endpoints.update(build(LagoWebhookEndpoint, signature_algo="rsa"), made.lago_id)
    assert exc.value.response["error_details"] == {"signature_algo": ["value_is_invalid"]}
