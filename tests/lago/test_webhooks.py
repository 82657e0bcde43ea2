"""Webhooks in Lago's envelope: an endpoint with `format="lago"` (made through Lago's own webhook endpoint API
with the real `lago-python-client`, or ours) gets `{"webhook_type", "object_type", <object>}` with the object
in the shape our Lago API answers it, signed as Lago signs with `signature_algo: hmac`. A Standard Webhooks
endpoint of the same organization keeps getting Standard Webhooks; organization B's endpoints get nothing of
A's. A local HTTP server stands in for the consumers (private targets allowed, as on premises)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import httpx
import pytest
import time_machine
from standardwebhooks.webhooks import Webhook

from invoicing.models import WebhookDelivery, WebhookEndpoint
from invoicing.tasks import invoice_clock
from invoicing.webhooks import billing_notifications_forward, webhook_endpoint_create, webhook_event_emit
from tests.lago.conftest import at, build

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def private_targets_allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True


def _lago_signature(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _catalog(client, customer: str, fee_cents: int) -> None:
    """A monthly plan with a fee paid in advance, `customer` on it from Oct 1 (`sub-1`)."""
    from lago_python_client.models import BillableMetric, Charge, Customer, Plan, Subscription
    from lago_python_client.models.charge import Charges

    metric = client.billable_metrics.create(
        build(BillableMetric, name="Calls", code="calls", aggregation_type="count_agg")
    )
    client.plans.create(
        build(
            Plan,
            name="Basic",
            code="basic",
            interval="monthly",
            amount_cents=fee_cents,
            amount_currency="USD",
            pay_in_advance=True,
            charges=build(
                Charges,
                __root__=[
                    build(
                        Charge,
                        billable_metric_id=metric.lago_id,
                        charge_model="standard",
                        properties={"amount": "0.10"},
                    )
                ],
            ),
        )
    )
    client.customers.create(build(Customer, external_id=customer, name="Acme", currency="USD"))
    client.subscriptions.create(
        build(
            Subscription,
            external_customer_id=customer,
            plan_code="basic",
            external_id="sub-1",
            subscription_at="2026-10-01T00:00:00Z",
        )
    )


def test_an_issued_invoice_reaches_a_lago_endpoint_in_lagos_envelope(
    lago_clients, tenant_a, tenant_b, receiver, live_server
):
    from lago_python_client.models import WebhookEndpoint as LagoWebhookEndpoint

    base, got = receiver
    a, b = lago_clients
    with time_machine.travel(at("2026-10-01 00:00"), tick=True):
        made = a.webhook_endpoints.create(
            build(LagoWebhookEndpoint, webhook_url=f"{base}/lago", signature_algo="hmac")
        )
        assert (made.webhook_url, made.signature_algo, made.event_types) == (f"{base}/lago", "hmac", None)
        secret = WebhookEndpoint.objects.get(id=made.lago_id).secret
        standard = tenant_a.client().post(
            "/api/v1/notification/endpoints", {"url": f"{base}/standard"}, format="json"
        )
        assert standard.status_code == 201 and standard.json()["format"] == "standard"
        b.webhook_endpoints.create(build(LagoWebhookEndpoint, webhook_url=f"{base}/b"))
        webhook_endpoint_create(organization=tenant_b.org, url=f"{base}/b-standard")
        _catalog(a, "cust-1", 3100)
        _catalog(b, "cust-1", 100)
        got.clear()

    with time_machine.travel(at("2026-10-01 00:05"), tick=True):
        billing_notifications_forward()
        invoice_clock()

    # Lago's envelope: the draft (`invoice.drafted`), then the issued invoice (`invoice.created`), after the
    # subscription started; each signed with the HMAC of the body under the endpoint's secret.
    lago = got.pop("/lago")
    bodies = [json.loads(x["body"]) for x in lago]
    assert [(x["webhook_type"], x["object_type"]) for x in bodies] == [
        ("subscription.started", "subscription"),
        ("invoice.drafted", "invoice"),
        ("invoice.created", "invoice"),
    ]
    for x in lago:
        assert x["headers"]["x-lago-signature"] == _lago_signature(x["body"], secret)
        assert x["headers"]["x-lago-signature-algorithm"] == "hmac"
        assert x["headers"]["x-lago-unique-key"]
        assert "webhook-signature" not in x["headers"]
    started, drafted, created = bodies
    assert (started["subscription"]["external_id"], started["subscription"]["plan_code"]) == (
        "sub-1",
        "basic",
    )
    assert started["subscription"]["status"] == "active"
    assert (drafted["invoice"]["status"], drafted["invoice"]["number"]) == ("draft", "")
    invoice = created["invoice"]
    assert invoice["lago_id"] == drafted["invoice"]["lago_id"]
    assert (invoice["status"], invoice["total_amount_cents"], invoice["currency"]) == (
        "finalized",
        3100,
        "USD",
    )
    assert invoice["number"].startswith("ACME-") and invoice["customer"]["external_id"] == "cust-1"
    assert [(f["item"]["type"], f["amount_cents"]) for f in invoice["fees"]] == [("subscription", 3100)]
    # the same object as Lago's GET /invoices/{id} answers it (the PDF link aside)
    answered = httpx.get(
        f"{live_server.url}/lago/api/v1/invoices/{invoice['lago_id']}",
        headers={"Authorization": f"Bearer {tenant_a.keys['admin']}"},
    ).json()["invoice"]
    assert {k: v for k, v in invoice.items() if k != "file_url"} == {
        k: v for k, v in answered.items() if k != "file_url"
    }
    # a body changed in transit no longer verifies
    forged = lago[2]["body"].replace(b'"total_amount_cents":3100', b'"total_amount_cents":1')
    assert forged != lago[2]["body"]
    assert lago[2]["headers"]["x-lago-signature"] != _lago_signature(forged, secret)

    # The Standard Webhooks endpoint of the same organization: our envelope, our event names.
    std_secret = WebhookEndpoint.objects.get(id=standard.json()["id"]).secret
    with time_machine.travel(at("2026-10-01 00:06")):  # Standard Webhooks checks the timestamp's age
        std = [Webhook(std_secret).verify(x["body"], x["headers"]) for x in got.pop("/standard")]
    assert [x["type"] for x in std] == ["subscription.created", "invoice.created", "invoice.issued"]
    assert std[2]["data"]["id"] == invoice["lago_id"] and std[2]["data"]["totals"]["total"] == "31.00"

    # B's endpoints got B's own events (its 1.00 invoice), nothing of A's.
    b_lago = [json.loads(x["body"]) for x in got.pop("/b")]
    b_std = [json.loads(x["body"]) for x in got.pop("/b-standard")]
    assert got == {}
    assert [x["webhook_type"] for x in b_lago] == [
        "subscription.started",
        "invoice.drafted",
        "invoice.created",
    ]
    assert {x["invoice"]["total_amount_cents"] for x in b_lago[1:]} == {100}
    assert {x["invoice"]["customer"]["lago_id"] for x in b_lago[1:]} != {invoice["customer"]["lago_id"]}
    a_ids = {invoice["lago_id"], started["subscription"]["lago_id"]}
    b_ids = {x["invoice"]["lago_id"] for x in b_lago[1:]} | {b_lago[0]["subscription"]["lago_id"]}
    assert a_ids.isdisjoint(b_ids)
    assert {x["data"].get("id") or x["data"].get("subscriptionId") for x in b_std}.isdisjoint(a_ids)
    assert not WebhookDelivery.objects.filter(organization=tenant_b.org, message__organization=tenant_a.org)


def test_events_without_a_lago_counterpart_are_not_sent_to_lago_endpoints(tenant_a, receiver):
    base, got = receiver
    webhook_endpoint_create(organization=tenant_a.org, url=f"{base}/lago", format="lago")
    webhook_endpoint_create(organization=tenant_a.org, url=f"{base}/standard")
    webhook_event_emit(
        organization=tenant_a.org, type="entitlement.balance.threshold", payload={"threshold": 80}
    )
    # a subscription that starts later: Lago says nothing until it starts
    webhook_event_emit(
        organization=tenant_a.org,
        type="subscription.created",
        payload={"subscriptionId": "x", "effectiveAt": "2099-01-01T00:00:00+00:00"},
    )
    assert sorted(got) == ["/standard"] and len(got["/standard"]) == 2
    assert WebhookDelivery.objects.filter(endpoint__format="lago").count() == 0


def test_format_through_our_endpoints_api(tenant_a):
    a = tenant_a.client("admin")
    r = a.post(
        "/api/v1/notification/endpoints",
        {"url": "https://hooks.acme.test/in", "format": "lago"},
        format="json",
    )
    assert r.status_code == 201 and r.json()["format"] == "lago", r.content
    endpoint_id = r.json()["id"]
    for method, path in (
        (a.post, "/api/v1/notification/endpoints"),
        (a.patch, f"/api/v1/notification/endpoints/{endpoint_id}"),
    ):
        bad = method(path, {"url": "https://hooks.acme.test/in", "format": "svix"}, format="json")
        assert bad.status_code == 400 and bad["content-type"].startswith("application/problem+json")
        assert [e["name"] for e in bad.json()["invalid_params"]] == ["format"], bad.content
    r = a.patch(f"/api/v1/notification/endpoints/{endpoint_id}", {"format": "standard"}, format="json")
    assert r.status_code == 200 and r.json()["format"] == "standard"
    assert WebhookEndpoint.objects.get(id=endpoint_id).format == "standard"


def test_lagos_webhook_endpoint_api(lago_clients, tenant_a, tenant_b, live_server):
    from lago_python_client.exceptions import LagoApiError
    from lago_python_client.models import WebhookEndpoint as LagoWebhookEndpoint

    a, b = lago_clients
    made = a.webhook_endpoints.create(
        build(
            LagoWebhookEndpoint,
            webhook_url="https://hooks.acme.test/lago",
            name="ERP",
            event_types=["invoice.created", "invoice.voided"],
        )
    )
    assert (made.signature_algo, made.name, made.event_types) == (
        "hmac",
        "ERP",
        ["invoice.created", "invoice.voided"],
    )
    row = WebhookEndpoint.objects.get(id=made.lago_id)
    assert (row.format, row.organization_id, row.event_types) == (
        "lago",
        tenant_a.org.id,
        ["invoice.issued", "invoice.voided"],
    )
    # the create answer carries the signing secret (once); reads never do
    raw = httpx.post(
        f"{live_server.url}/lago/api/v1/webhook_endpoints",
        json={"webhook_endpoint": {"webhook_url": "https://hooks.acme.test/two", "signature_algo": "hmac"}},
        headers={"Authorization": f"Bearer {tenant_a.keys['admin']}"},
    )
    assert raw.status_code == 200 and raw.json()["webhook_endpoint"]["hmac_key"].startswith("whsec_")
    two = raw.json()["webhook_endpoint"]["lago_id"]
    # our own Standard Webhooks endpoints are not Lago's
    webhook_endpoint_create(organization=tenant_a.org, url="https://hooks.acme.test/standard")
    listed = a.webhook_endpoints.find_all()
    assert [e.lago_id for e in listed["webhook_endpoints"]] == [made.lago_id, two]
    assert listed["meta"]["total_count"] == 2
    assert (
        "hmac_key"
        not in httpx.get(
            f"{live_server.url}/lago/api/v1/webhook_endpoints/{two}",
            headers={"Authorization": f"Bearer {tenant_a.keys['admin']}"},
        ).json()["webhook_endpoint"]
    )
    updated = a.webhook_endpoints.update(
        build(LagoWebhookEndpoint, webhook_url="https://hooks.acme.test/moved"), made.lago_id
    )
    assert (updated.webhook_url, updated.name) == ("https://hooks.acme.test/moved", "ERP")
    assert a.webhook_endpoints.find(made.lago_id).webhook_url == "https://hooks.acme.test/moved"
    # B sees none of A's
    assert b.webhook_endpoints.find_all()["webhook_endpoints"] == []
    with pytest.raises(LagoApiError) as exc:
        b.webhook_endpoints.find(made.lago_id)
    assert exc.value.status_code == 404
    # bad input: Lago's 422 per field
    for fields, details in (
        (
            {"webhook_url": "https://hooks.acme.test/j", "signature_algo": "rsa"},
            {"signature_algo": ["value_is_invalid"]},
        ),
        ({"webhook_url": "ftp://hooks.acme.test/x"}, {"webhook_url": ["url_is_invalid"]}),
        (
            {"webhook_url": "https://hooks.acme.test/x", "event_types": ["invoice.exploded"]},
            {"event_types": ["value_is_invalid"]},
        ),
    ):
        with pytest.raises(LagoApiError) as exc:
            a.webhook_endpoints.create(build(LagoWebhookEndpoint, **fields))
        assert (exc.value.status_code, exc.value.response["error_details"]) == (422, details)
    deleted = a.webhook_endpoints.destroy(made.lago_id)
    assert deleted.lago_id == made.lago_id
    assert not WebhookEndpoint.objects.filter(id=made.lago_id).exists()
