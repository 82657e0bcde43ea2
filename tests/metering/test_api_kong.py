"""POST /api/v1/events/kong: the http-log adapter wired to auth (Bearer, X-Api-Key, Basic), the store and
the event log. Good entries of a batch are stored; a bad entry is kept as a rejected event and the answer
is still 200, so Kong never retries and drops a batch."""

from __future__ import annotations

import base64
import copy
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from metering import drain
from metering.models import Event, RejectedEvent
from tests.factories import MeterFactory

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures" / "kong"
VERSION_FIXTURES = sorted(FIXTURES.glob("v*.json"))
PATH = "/api/v1/events/kong"


def raw(name: str) -> str:
    return (FIXTURES / name).read_text()


def post(client, body: str | bytes, **extra):
    """POST, then drain the accepted batches into the event store (as the Celery drain task does)."""
    response = client.post(PATH, data=body, content_type="application/json; charset=utf-8", **extra)
    drain.events_drain_all()
    return response


def answer(accepted: int, rejected: int, events: int, unresolved: int = 0, rejections: Any = ()) -> dict:
    return {
        "accepted": accepted,
        "rejected": rejected,
        "events": events,
        "unresolvedSubjects": unresolved,
        "rejections": list(rejections),
    }


def rejected_in_event_log(tenant) -> list[dict[str, Any]]:
    """GET /api/v1/events entries not counted because the Kong entry was refused (without meters, every
    stored event is listed as not counted too: it matches no meter)."""
    logged = tenant.client("read").get("/api/v1/events?hasError=true&limit=1000").json()
    return [e for e in logged if e["validationError"].startswith("kong_entry_rejected: ")]


def event_ids(tenant) -> list[str]:
    return sorted(Event.objects.filter(organization=tenant.org).values_list("event_id", flat=True))


def test_ai_proxy_log_becomes_request_and_token_events_counted_by_meters(tenant_a, tenant_b, client):
    for slug, event_type, aggregation, value, group_by in [
        ("llm_tokens", "llm_tokens", "SUM", "$.tokens", {"type": "$.type"}),
        ("api_requests", "api_request", "COUNT", None, {}),
    ]:
        MeterFactory(
            organization=tenant_a.org,
            slug=slug,
            event_type=event_type,
            aggregation=aggregation,
            value_property=value,
            group_by=group_by,
        )
    r = post(client, raw("ai_proxy.json"), HTTP_X_API_KEY=tenant_a.keys["ingest"])
    assert r.status_code == 200, r.content
    assert r.json() == answer(1, 0, 3)
    r = post(client, raw("ai_proxy.json"), HTTP_X_API_KEY=tenant_a.keys["ingest"])  # Kong retries the batch
    assert r.status_code == 200
    rid = "2f6946328ffc4946b8c9120704a4a155"
    assert event_ids(tenant_a) == [rid, f"{rid}:in", f"{rid}:out"]
    read = tenant_a.client("read")
    rows = read.get("/api/v1/meters/llm_tokens/query?groupBy=type").json()["data"]
    assert {row["groupBy"]["type"]: row["value"] for row in rows} == {"input": 25.0, "output": 12.0}
    assert [row["value"] for row in read.get("/api/v1/meters/api_requests/query").json()["data"]] == [1.0]
    assert event_ids(tenant_b) == []
    # the same Kong log sent by tenant B is B's own event, and A's usage does not move
    assert post(client, raw("ai_proxy.json"), HTTP_X_API_KEY=tenant_b.keys["ingest"]).status_code == 200
    assert len(event_ids(tenant_b)) == 3
    rows = read.get("/api/v1/meters/llm_tokens/query?groupBy=type").json()["data"]
    assert {row["groupBy"]["type"]: row["value"] for row in rows} == {"input": 25.0, "output": 12.0}


def test_batched_array_and_auth_forms(tenant_a, client):
    body = raw("batch_3.json")
    r = post(client, body, HTTP_AUTHORIZATION=f"Bearer {tenant_a.keys['ingest']}")
    assert (r.status_code, r.json()) == (200, answer(3, 0, 5))
    assert len(event_ids(tenant_a)) == 5
    basic_pw = base64.b64encode(f"kong:{tenant_a.keys['ingest']}".encode()).decode()
    basic_user = base64.b64encode(f"{tenant_a.keys['ingest']}:".encode()).decode()
    assert post(client, body, HTTP_AUTHORIZATION=f"Basic {basic_pw}").status_code == 200
    assert post(client, body, HTTP_AUTHORIZATION=f"Basic {basic_user}").status_code == 200
    assert len(event_ids(tenant_a)) == 5  # deduplicated


def test_auth_failures(tenant_a, client):
    body = raw("plain_request.json")
    assert post(client, body).status_code == 401
    assert post(client, body, HTTP_X_API_KEY="ml_wrong").status_code == 401
    r = post(client, body, HTTP_X_API_KEY=tenant_a.keys["read"])
    assert r.status_code == 403
    assert r["Content-Type"] == "application/problem+json"
    assert not Event.objects.exists() and not RejectedEvent.objects.exists()


@pytest.mark.parametrize("body", [b"{", b'"text"', b"42"])
def test_a_body_that_is_no_kong_log_is_a_400_naming_body(tenant_a, client, body):
    r = post(client, body, HTTP_X_API_KEY=tenant_a.keys["ingest"])

    assert r.status_code == 400
    assert r["Content-Type"] == "application/problem+json"
    assert [p["name"] for p in r.json()["invalid_params"]] == ["body"]
    assert not Event.objects.exists() and not RejectedEvent.objects.exists()


def test_a_bad_entry_is_kept_as_rejected_and_the_rest_is_stored(tenant_a, tenant_b, client):
    batch = json.loads(raw("batch_3.json"))
    del batch[1]["request"]["id"]

    r = post(client, json.dumps(batch), HTTP_X_API_KEY=tenant_a.keys["ingest"])

    reason = "required: Kong's request id (Kong >= 3.5) is the dedup key (Kong batch entry 1)"
    assert r.status_code == 200
    assert r.json() == answer(
        2,
        1,
        4,
        rejections=[
            {"index": 1, "requestId": "", "invalid_params": [{"name": "[1].request.id", "reason": reason}]}
        ],
    )
    assert event_ids(tenant_a) == [
        "b0000000000000000000000000000001",
        "b0000000000000000000000000000003",
        "b0000000000000000000000000000003:in",
        "b0000000000000000000000000000003:out",
    ]
    (logged,) = rejected_in_event_log(tenant_a)
    assert logged["event"]["id"] == ""
    assert logged["event"]["subject"] == "initech"
    assert logged["event"]["time"] == "2024-11-25T16:00:00.001000Z"
    assert logged["event"]["data"]["kong_index"] == 1
    assert logged["validationError"] == (
        f"kong_entry_rejected: Kong batch entry 1 was not counted: [1].request.id: {reason}."
    )
    assert tenant_b.client("read").get("/api/v1/events").json() == []


def test_subject_header_parameter_and_the_unresolved_subject_in_the_event_log(tenant_a, tenant_b, client):
    r = post(client, raw("no_consumer.json"), HTTP_X_API_KEY=tenant_a.keys["ingest"])
    assert r.json() == answer(1, 0, 1, unresolved=1)
    logged = tenant_a.client("read").get("/api/v1/events?subject=unknown").json()
    assert [(e["event"]["id"], e["event"]["data"]["subject_unresolved"]) for e in logged] == [
        ("0e0e0e0e1f1f1f1f2a2a2a2a3b3b3b3b", True)
    ]
    log = json.loads(raw("no_consumer.json"))
    log["request"]["id"] = "0e0e0e0e1f1f1f1f2a2a2a2a3b3b3b3c"
    log["request"]["headers"]["x-customer"] = "cust_from_header"
    r = client.post(
        f"{PATH}?subjectHeader=x-customer",
        data=json.dumps(log),
        content_type="application/json",
        HTTP_X_API_KEY=tenant_a.keys["ingest"],
    )
    drain.events_drain_all()
    assert r.json() == answer(1, 0, 1)
    assert (
        Event.objects.get(organization=tenant_a.org, event_id=log["request"]["id"]).subject
        == "cust_from_header"
    )
    assert tenant_b.client("read").get("/api/v1/events?subject=unknown").json() == []


# --- a batch of 50 with 3 provoked bad entries ----------------------------------------------------


def fifty_entries() -> tuple[bytes, list[int]]:
    """50 entries from the version fixtures with fresh ids. Entries 7, 23 and 41 are bad (over-long
    custom_id, negative cost, a digit-string token count); others carry NUL and invalid UTF-8 in free
    text (query strings, headers, user agents, a subject header), which must not cost them anything."""
    pool = []
    for path in VERSION_FIXTURES:
        log = json.loads(path.read_text())["log"]
        pool.extend(log if isinstance(log, list) else [log])
    entries = []
    for i in range(50):
        entry = copy.deepcopy(pool[i % len(pool)])
        entry["request"]["id"] = f"fifty{i:027d}"
        entry["request"]["querystring"] = {"q": "a\x00b", "r": "PLACEHOLDER_FF"}
        entry["request"]["headers"]["user-agent"] = "agent\x00/PLACEHOLDER_FF"
        entry["request"]["uri"] = "/v1/x?q=%00&r=%FF"
        entries.append(entry)
    entries[7]["consumer"]["custom_id"] = "x" * 300
    ai = [i for i, e in enumerate(entries) if "proxy" in e.get("ai", {})]
    entries[23 if 23 in ai else ai[10]]["ai"]["proxy"]["usage"]["cost"] = -0.5
    entries[41 if 41 in ai else ai[-1]]["ai"]["proxy"]["usage"]["prompt_tokens"] = "250"
    bad = sorted([7, 23 if 23 in ai else ai[10], 41 if 41 in ai else ai[-1]])
    body = json.dumps(entries).encode().replace(b"PLACEHOLDER_FF", b"\xff")
    return body, bad


def test_a_batch_of_fifty_with_three_bad_entries_stores_47_and_shows_3_rejected(tenant_a, tenant_b, client):
    body, bad = fifty_entries()
    assert b"\xff" in body and b"\\u0000" in body

    r = post(client, body, HTTP_X_API_KEY=tenant_a.keys["ingest"])

    assert r.status_code == 200, r.content
    result = r.json()
    assert (result["accepted"], result["rejected"]) == (47, 3)
    assert [x["index"] for x in result["rejections"]] == bad
    assert [[p["name"] for p in x["invalid_params"]] for x in result["rejections"]] == [
        [f"[{bad[0]}].consumer.custom_id"],
        [f"[{bad[1]}].ai.proxy.usage.cost"],
        [f"[{bad[2]}].ai.proxy.usage.prompt_tokens"],
    ]
    stored = Event.objects.filter(organization=tenant_a.org)
    assert stored.filter(type="api_request").count() == 47
    assert stored.count() == result["events"]
    assert sorted(stored.filter(type="api_request").values_list("event_id", flat=True)) == [
        f"fifty{i:027d}" for i in range(50) if i not in bad
    ]
    rejected = rejected_in_event_log(tenant_a)
    assert sorted((e["event"]["data"]["kong_index"], e["event"]["id"]) for e in rejected) == [
        (i, f"fifty{i:027d}") for i in bad
    ]
    reasons = [e["validationError"] for e in sorted(rejected, key=lambda e: e["event"]["data"]["kong_index"])]
    assert all(f"Kong batch entry {i}" in reason for i, reason in zip(bad, reasons, strict=True))
    assert "the subject taken from it is 300 characters, at most 255" in reasons[0]
    assert "must not be negative" in reasons[1]
    assert "not a string" in reasons[2]
    # the console's event log shows them too, with their reasons; B's console shows none of it
    page = console_client(tenant_a).get("/console/events/?uncounted=1").content.decode()
    assert page.count("kong_entry_rejected") == 3
    assert f"Kong batch entry {bad[0]} was not counted" in page
    assert "kong_entry_rejected" not in console_client(tenant_b).get("/console/events/").content.decode()

    # Kong resends the batch (say the answer was lost): nothing is stored or logged twice
    again = post(client, body, HTTP_X_API_KEY=tenant_a.keys["ingest"])
    assert (again.status_code, again.json()["accepted"], again.json()["rejected"]) == (200, 47, 3)
    assert Event.objects.filter(organization=tenant_a.org).count() == result["events"]
    assert RejectedEvent.objects.filter(organization=tenant_a.org).count() == 3
    assert not Event.objects.filter(organization=tenant_b.org).exists()
    assert not RejectedEvent.objects.filter(organization=tenant_b.org).exists()


def console_client(tenant) -> Client:
    c = Client()
    c.force_login(tenant.user)
    return c


def test_free_text_with_nul_and_invalid_utf8_is_replaced_not_refused(tenant_a, client):
    log = json.loads(raw("no_consumer.json"))
    log["request"]["uri"] = "/v1/reports/PLACEHOLDER\x00?q=%00"
    log["request"]["headers"]["x-customer"] = "cust\x00PLACEHOLDER"
    body = json.dumps(log).encode().replace(b"PLACEHOLDER", b"\xff")

    r = client.post(
        f"{PATH}?subjectHeader=x-customer",
        data=body,
        content_type="application/json",
        HTTP_X_API_KEY=tenant_a.keys["ingest"],
    )
    drain.events_drain_all()

    assert r.json() == answer(1, 0, 1)
    stored = Event.objects.get(organization=tenant_a.org)
    assert stored.subject == "cust\ufffd\ufffd"
    assert stored.data["path"] == "/v1/reports/\ufffd\ufffd"


# --- token totals by model and side equal the fixtures' sums ----------------------------------------


def test_meter_totals_by_model_and_type_equal_the_fixtures_sums(tenant_a, tenant_b, client):
    for slug, group_by in [
        ("tokens", {"model": "$.model", "type": "$.type"}),
        ("tokens_by_cache", {"cache_hit": "$.cache_hit", "estimated": "$.estimated"}),
    ]:
        MeterFactory(
            organization=tenant_a.org,
            slug=slug,
            event_type="llm_tokens",
            aggregation="SUM",
            value_property="$.tokens",
            group_by=group_by,
        )
    MeterFactory(
        organization=tenant_a.org,
        slug="cost",
        event_type="llm_tokens",
        aggregation="SUM",
        value_property="$.cost",
    )
    expected: Counter[tuple[str, str]] = Counter()
    by_flags: Counter[tuple[str, str]] = Counter()
    cost = Decimal(0)
    for path in VERSION_FIXTURES:  # each fixture posted as Kong would post it
        fixture = json.loads(path.read_text())
        r = post(client, json.dumps(fixture["log"]), HTTP_X_API_KEY=tenant_a.keys["ingest"])
        assert (r.status_code, r.json()["rejected"], r.json()["events"]) == (200, 0, len(fixture["events"]))
        for ev in fixture["events"]:
            if ev["type"] == "llm_tokens":
                d = ev["data"]
                expected[(d["model"], d["type"])] += d["tokens"]
                by_flags[(str(d["cache_hit"]).lower(), str(d["estimated"]).lower())] += d["tokens"]
                cost += Decimal(d["cost"] or 0)
    post(
        client,
        raw("v3.9-3.10-proxy.json").replace("cust_acme", "cust_b"),
        HTTP_X_API_KEY=tenant_b.keys["ingest"],
    )

    read = tenant_a.client("read")
    rows = read.get("/api/v1/meters/tokens/query?groupBy=model&groupBy=type").json()["data"]
    assert {(row["groupBy"]["model"], row["groupBy"]["type"]): row["value"] for row in rows} == {
        key: float(value) for key, value in expected.items()
    }
    assert expected[("gpt-image-1", "output")] == 4160  # 3.11 image tokens are billed, not 0
    assert expected[("gpt-4-0613", "input")] == 31  # 3.6's flat layout is read
    rows = read.get("/api/v1/meters/tokens_by_cache/query?groupBy=cache_hit&groupBy=estimated").json()["data"]
    assert {(row["groupBy"]["cache_hit"], row["groupBy"]["estimated"]): row["value"] for row in rows} == {
        key: float(value) for key, value in by_flags.items()
    }
    # a meter that leaves semantic cache hits out
    rows = read.get("/api/v1/meters/tokens_by_cache/query?filterGroupBy[cache_hit]=false").json()["data"]
    assert [row["value"] for row in rows] == [float(sum(by_flags.values()) - 35)]  # the hit: 14 in, 21 out
    assert [row["value"] for row in read.get("/api/v1/meters/cost/query").json()["data"]] == [float(cost)]
    # tenant B's copy of the 3.9 fixture never shows in A's totals
    assert Event.objects.filter(organization=tenant_a.org, subject="cust_b").count() == 0


def test_an_entry_breaking_an_ingest_limit_is_rejected_alone_by_its_kong_field(tenant_a, client, settings):
    """The mapping does not know every ingest rule (here: no event time beyond now + skew); the endpoint
    still names the entry's position and Kong field, and stores the others."""
    settings.INGEST_MAX_FUTURE_SECONDS = 300
    batch = json.loads(raw("batch_3.json"))
    batch[2]["started_at"] = 7258118400000  # 2200-01-01

    r = post(client, json.dumps(batch), HTTP_X_API_KEY=tenant_a.keys["ingest"])

    reason = "must not be more than 300 s in the future (INGEST_MAX_FUTURE_SECONDS) (Kong batch entry 2)"
    assert r.status_code == 200
    assert r.json()["rejections"] == [
        {
            "index": 2,
            "requestId": "b0000000000000000000000000000003",
            "invalid_params": [{"name": "[2].started_at", "reason": reason}],
        }
    ]
    assert event_ids(tenant_a) == ["b0000000000000000000000000000001", "b0000000000000000000000000000002"]
    (logged,) = rejected_in_event_log(tenant_a)
    assert logged["event"]["time"] == "2200-01-01T00:00:00Z"
    assert logged["event"]["data"]["kong_index"] == 2
    assert [e["type"] for e in logged["event"]["data"]["entry"]["events"]] == [
        "api_request",
        "llm_tokens",
        "llm_tokens",
    ]
