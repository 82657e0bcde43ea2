"""POST /api/v1/events/kong: the http-log adapter wired to auth (Bearer, X-Api-Key, Basic) and the store."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from metering import services
from metering.models import Event
from metering.selectors import meter_query

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures" / "kong"
PATH = "/api/v1/events/kong"


def raw(name: str) -> str:
    return (FIXTURES / name).read_text()


def post(client, body: str, **extra):
    """POST, then drain the accepted batches into the event store (as the Celery drain task does)."""
    response = client.post(PATH, data=body, content_type="application/json; charset=utf-8", **extra)
    services.events_drain_all()
    return response


def test_ai_proxy_log_becomes_request_and_token_events_counted_by_meters(tenant_a, tenant_b, client):
    llm = services.meter_create(
        organization=tenant_a.org,
        slug="llm_tokens",
        event_type="llm_tokens",
        aggregation="SUM",
        value_property="$.tokens",
        group_by={"type": "$.type"},
    )
    calls = services.meter_create(
        organization=tenant_a.org, slug="api_requests", event_type="api_request", aggregation="COUNT"
    )
    r = post(client, raw("ai_proxy.json"), HTTP_X_API_KEY=tenant_a.keys["ingest"])
    assert r.status_code == 204, r.content
    r = post(client, raw("ai_proxy.json"), HTTP_X_API_KEY=tenant_a.keys["ingest"])  # Kong retries the batch
    assert r.status_code == 204
    ids = sorted(Event.objects.filter(organization=tenant_a.org).values_list("event_id", flat=True))
    rid = "2f6946328ffc4946b8c9120704a4a155"
    assert ids == [rid, f"{rid}:in", f"{rid}:out"]
    rows = meter_query(organization=tenant_a.org, meter=llm, group_by=["type"])
    assert {r.group_by["type"]: r.value for r in rows} == {"input": 25, "output": 12}
    assert [r.value for r in meter_query(organization=tenant_a.org, meter=calls)] == [1]
    assert not Event.objects.filter(organization=tenant_b.org).exists()
    # the same Kong log sent by tenant B is B's own event, and A's usage does not move
    assert post(client, raw("ai_proxy.json"), HTTP_X_API_KEY=tenant_b.keys["ingest"]).status_code == 204
    assert Event.objects.filter(organization=tenant_b.org).count() == 3
    assert {
        r.group_by["type"]: r.value
        for r in meter_query(organization=tenant_a.org, meter=llm, group_by=["type"])
    } == {"input": 25, "output": 12}


def test_batched_array_and_auth_forms(tenant_a, client):
    body = raw("batch_3.json")
    assert post(client, body, HTTP_AUTHORIZATION=f"Bearer {tenant_a.keys['ingest']}").status_code == 204
    n = Event.objects.filter(organization=tenant_a.org).count()
    assert n >= 3
    basic_pw = base64.b64encode(f"kong:{tenant_a.keys['ingest']}".encode()).decode()
    basic_user = base64.b64encode(f"{tenant_a.keys['ingest']}:".encode()).decode()
    assert post(client, body, HTTP_AUTHORIZATION=f"Basic {basic_pw}").status_code == 204
    assert post(client, body, HTTP_AUTHORIZATION=f"Basic {basic_user}").status_code == 204
    assert Event.objects.filter(organization=tenant_a.org).count() == n  # deduplicated


def test_auth_failures(tenant_a, client):
    body = raw("plain_request.json")
    assert post(client, body).status_code == 401
    assert post(client, body, HTTP_X_API_KEY="ml_wrong").status_code == 401
    r = post(client, body, HTTP_X_API_KEY=tenant_a.keys["read"])
    assert r.status_code == 403
    assert r["Content-Type"] == "application/problem+json"
    assert not Event.objects.exists()


def test_bad_entry_names_index_and_stores_nothing(tenant_a, client):
    batch = json.loads(raw("batch_3.json"))
    del batch[1]["request"]["id"]
    r = post(client, json.dumps(batch), HTTP_X_API_KEY=tenant_a.keys["ingest"])
    assert r.status_code == 400
    assert [p["name"] for p in r.json()["invalid_params"]] == ["[1].request.id"]
    assert not Event.objects.exists()


def test_subject_header_parameter(tenant_a, client):
    r = client.post(
        f"{PATH}?subjectHeader=x-customer",
        data=raw("no_consumer.json"),
        content_type="application/json",
        HTTP_X_API_KEY=tenant_a.keys["ingest"],
    )
    assert r.status_code == 204, r.content
    services.events_drain_all()
    assert Event.objects.filter(organization=tenant_a.org).exists()
