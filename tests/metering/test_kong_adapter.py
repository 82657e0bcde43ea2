"""Kong http-log → CloudEvents mapping (metering.adapters.kong). Pure: no database.

fixtures/kong/v*.json are Kong log payloads for each version layout, written from Kong's sources and docs
(each names them in `sources`), with the exact CloudEvents they must produce (`events`). The older
fixtures (ai_proxy.json, batch_3.json, ...) are single cases used below.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.errors import ValidationFailed
from metering.adapters.kong import REJECTED_REASON, KongRejection, kong_map, kong_parse

FIXTURES = Path(__file__).parent / "fixtures" / "kong"
VERSION_FIXTURES = sorted(FIXTURES.glob("v*.json"))


def load(name: str, **json_kwargs: Any) -> Any:
    return json.loads((FIXTURES / name).read_text(), **json_kwargs)


def events_of(payload: Any, **kwargs: Any) -> list[dict[str, Any]]:
    batch = kong_map(payload, **kwargs)
    assert batch.rejections == []
    return batch.events


def errors_of(payload: Any, **kwargs: Any) -> list[dict[str, str]]:
    return [e for r in kong_map(payload, **kwargs).rejections for e in r.errors]


def names_of(payload: Any) -> list[str]:
    return [e["name"] for e in errors_of(payload)]


def event(id_: str, type_: str, subject: str, time: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": id_,
        "source": "kong",
        "type": type_,
        "subject": subject,
        "time": time,
        "data": data,
    }


NO_CACHE = {"cache_status": None, "cache_hit": False}


# --- every version layout: the exact events ------------------------------------------------------


@pytest.mark.parametrize("path", VERSION_FIXTURES, ids=[p.stem for p in VERSION_FIXTURES])
def test_version_fixture_gives_its_exact_events(path):
    fixture = json.loads(path.read_text())
    assert fixture["sources"], "every fixture names the Kong source file or doc page it follows"

    assert events_of(fixture["log"]) == fixture["events"]
    # The endpoint parses the raw bytes (numbers as Decimal): same events.
    assert events_of(kong_parse(path.read_bytes())["log"]) == fixture["events"]


def test_the_version_fixtures_cover_every_layout():
    layouts = set()
    for path in VERSION_FIXTURES:
        log = json.loads(path.read_text())["log"]
        for entry in log if isinstance(log, list) else [log]:
            ai = entry.get("ai", {})
            usage = ai.get("usage") or next(
                (b["usage"] for b in ai.values() if isinstance(b, dict) and "usage" in b), {}
            )
            meta = ai.get("meta") or next(
                (b["meta"] for b in ai.values() if isinstance(b, dict) and "meta" in b), {}
            )
            if not ai:
                layouts.add("no ai")
            elif "usage" in ai:
                layouts.add("flat ai.usage (3.6)")
            elif "ai-proxy" in ai and "prompt_token" in usage:
                layouts.add("ai-proxy singular (3.7)")
            elif "ai-proxy" in ai:
                layouts.add("ai-proxy plural (3.8)")
            if "proxy" in ai:
                layouts.add("ai.proxy (3.9+)")
            if usage.get("input_tokens"):
                layouts.add("input/output tokens (3.11+)")
            if "request_mode" in meta:
                layouts.add("request_mode (3.12+)")
            if ai.get("proxy", {}).get("cache", {}).get("cache_status") == "Hit":
                layouts.add("semantic cache hit")

    assert layouts == {
        "no ai",
        "flat ai.usage (3.6)",
        "ai-proxy singular (3.7)",
        "ai-proxy plural (3.8)",
        "ai.proxy (3.9+)",
        "input/output tokens (3.11+)",
        "request_mode (3.12+)",
        "semantic cache hit",
    }


# --- exact events per single fixture -------------------------------------------------------------


def test_plain_request_log_gives_one_api_request_event():
    assert events_of(load("plain_request.json")) == [
        event(
            "8c1e3a6f0b7d4e2a9f5c0d1b2a3e4f50",
            "api_request",
            "cust_acme",
            "2024-11-25T16:00:00.123Z",
            {
                "method": "GET",
                "path": "/v1/orders",
                "status": 200,
                "upstream_status": 200,
                "response_source": "upstream",
                "tries": 1,
                "latency_ms": 41,
                "kong_latency_ms": 2,
                "upstream_latency_ms": 38,
                "route": "orders-list",
                "service": "orders",
                "request_bytes": 412,
                "response_bytes": 2048,
                "consumer_id": "11111111-2222-4333-8444-555555555555",
                "client_ip": "203.0.113.7",
            },
        )
    ]


AI_PROXY_TOKENS = {
    "model": "gpt-3.5-turbo-0613",
    "provider": "openai",
    "input_tokens": 25,
    "output_tokens": 12,
    "total_tokens": 37,
    "request_cost": "0.00037",
}


def test_ai_proxy_log_gives_request_input_and_output_events():
    events = events_of(load("ai_proxy.json"))

    rid, subject, time = "2f6946328ffc4946b8c9120704a4a155", "cust_123", "2024-09-19T22:10:39.538Z"
    assert events == [
        event(
            rid,
            "api_request",
            subject,
            time,
            {
                "method": "POST",
                "path": "/v1/chat/completions",
                "status": 200,
                "upstream_status": 200,
                "response_source": "upstream",
                "tries": None,
                "latency_ms": 173,
                "kong_latency_ms": 1,
                "upstream_latency_ms": 171,
                "route": "example_route",
                "service": "example_service",
                "request_bytes": 323,
                "response_bytes": 1845,
                "consumer_id": "ae974d6c-0f8a-4dc5-b701-fa0aa38592bd",
                "client_ip": "192.168.65.1",
            },
        ),
        event(
            f"{rid}:in",
            "llm_tokens",
            subject,
            time,
            {"tokens": 25, "type": "input", **AI_PROXY_TOKENS, "cost": "0", "estimated": False, **NO_CACHE},
        ),
        event(
            f"{rid}:out",
            "llm_tokens",
            subject,
            time,
            {
                "tokens": 12,
                "type": "output",
                **AI_PROXY_TOKENS,
                "cost": "0.00037",
                "estimated": False,
                **NO_CACHE,
            },
        ),
    ]
    assert all(type(e["data"]["tokens"]) is int for e in events[1:])


def test_streamed_openai_log_without_provider_usage_is_flagged_estimated():
    events = events_of(load("ai_proxy_stream_estimated.json"))

    rid, subject, time = "5d0b9e2c7a4f41c8b3e6a1f0c9d8e7b6", "cust_123", "2024-11-25T16:01:01.007Z"
    tokens = {
        "model": "gpt-4o-2024-08-06",
        "provider": "openai",
        "input_tokens": 18,
        "output_tokens": 57,
        "total_tokens": 75,
        "request_cost": "0.00075",
    }
    flags = {"estimated": True, **NO_CACHE, "request_mode": "stream"}
    assert [e["id"] for e in events] == [rid, f"{rid}:in", f"{rid}:out"]
    assert events[1] == event(
        f"{rid}:in",
        "llm_tokens",
        subject,
        time,
        {"tokens": 18, "type": "input", **tokens, "cost": "0", **flags},
    )
    assert events[2] == event(
        f"{rid}:out",
        "llm_tokens",
        subject,
        time,
        {"tokens": 57, "type": "output", **tokens, "cost": "0.00075", **flags},
    )


def test_batched_array_of_three():
    events = events_of(load("batch_3.json"))

    assert [(e["id"], e["type"], e["subject"], e["time"]) for e in events] == [
        ("b0000000000000000000000000000001", "api_request", "cust_globex", "2024-11-25T16:00:00.000Z"),
        ("b0000000000000000000000000000002", "api_request", "initech", "2024-11-25T16:00:00.001Z"),
        ("b0000000000000000000000000000003", "api_request", "cust_globex", "2024-11-25T16:00:01.999Z"),
        ("b0000000000000000000000000000003:in", "llm_tokens", "cust_globex", "2024-11-25T16:00:01.999Z"),
        ("b0000000000000000000000000000003:out", "llm_tokens", "cust_globex", "2024-11-25T16:00:01.999Z"),
    ]
    assert events[0]["data"]["path"] == "/v1/search"
    # Rate limited by Kong: no upstream, so latencies.proxy is -1 → null.
    assert events[1]["data"] == {
        "method": "GET",
        "path": "/v1/search",
        "status": 429,
        "upstream_status": None,
        "response_source": None,
        "tries": None,
        "latency_ms": 2,
        "kong_latency_ms": 2,
        "upstream_latency_ms": None,
        "route": "search-get",
        "service": "search",
        "request_bytes": 180,
        "response_bytes": 256,
        "consumer_id": "c0000000-0000-4000-8000-000000000002",
        "client_ip": "203.0.113.8",
    }
    # 3.11 field names with *_details; streamed OpenAI with the provider's detail blocks → not estimated.
    tokens = {
        "model": "gpt-4o-mini",  # response_model null → request_model
        "provider": "openai",
        "input_tokens": 1200,
        "output_tokens": 300,
        "total_tokens": 1500,
        "request_cost": "0.00036",
    }
    flags = {"estimated": False, **NO_CACHE, "request_mode": "stream"}
    assert events[3]["data"] == {
        "tokens": 1200,
        "type": "input",
        **tokens,
        "cost": "0",
        "cached_tokens": 1024,
        "audio_tokens": 0,
        **flags,
    }
    assert events[4]["data"] == {
        "tokens": 300,
        "type": "output",
        **tokens,
        "cost": "0.00036",
        "reasoning_tokens": 64,
        **flags,
    }


def test_log_without_consumer_is_quarantined_as_unknown_not_dropped():
    assert events_of(load("no_consumer.json")) == [
        event(
            "0e0e0e0e1f1f1f1f2a2a2a2a3b3b3b3b",
            "api_request",
            "unknown",
            "2024-11-25T16:02:02.999Z",
            {
                "method": "POST",
                "path": "/v1/reports",
                "status": 202,
                "upstream_status": 202,
                "response_source": "upstream",
                "tries": None,
                "latency_ms": 96,
                "kong_latency_ms": 0,
                "upstream_latency_ms": 95,
                "route": None,
                "service": "reports",
                "request_bytes": 1055,  # older Kong sends sizes as strings
                "response_bytes": 318,
                "consumer_id": None,
                "client_ip": "198.51.100.23",
                "subject_unresolved": True,
            },
        )
    ]
    batch = kong_map(load("no_consumer.json"))
    assert [(e.index, e.subject_unresolved) for e in batch.entries] == [(None, True)]


def test_unknown_subject_flag_is_carried_on_token_events_too():
    log = load("ai_proxy.json")
    del log["consumer"]

    events = events_of(log)

    assert [e["subject"] for e in events] == ["unknown"] * 3
    assert all(e["data"]["subject_unresolved"] is True for e in events)
    assert events[0]["data"]["consumer_id"] == "ae974d6c-0f8a-4dc5-b701-fa0aa38592bd"  # authenticated_entity


def test_source_parameter_is_used():
    assert {e["source"] for e in events_of(load("ai_proxy.json"), source="kong-eu-1")} == {"kong-eu-1"}


def test_empty_batch_gives_no_events():
    batch = kong_map([])
    assert (batch.entries, batch.rejections, batch.events) == ([], [], [])


@pytest.mark.parametrize(
    ("upstream_status", "expected"),
    [("200", 200), ("502, 200", 200), ("504 : 502", 502), ("", None), (None, None), (503, 503)],
)
def test_upstream_status_is_the_last_code_nginx_reports(upstream_status, expected):
    log = load("plain_request.json")
    log["upstream_status"] = upstream_status

    assert events_of(log)[0]["data"]["upstream_status"] == expected


# --- subject precedence --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("consumer", "subject_header", "expected"),
    [
        ({"custom_id": "cust_1", "username": "user_1"}, "x-customer-id", "cust_1"),
        ({"custom_id": None, "username": "user_1"}, "x-customer-id", "user_1"),
        ({"custom_id": "", "username": "user_1"}, None, "user_1"),
        ({"custom_id": "  ", "username": "user_1"}, None, "user_1"),
        ({"custom_id": None, "username": None}, "x-customer-id", "cust_from_header"),
        (None, "X-CUSTOMER-ID", "cust_from_header"),  # header names match case-insensitively
        (None, "x-missing", "unknown"),
        (None, None, "unknown"),
    ],
)
def test_subject_precedence_custom_id_then_username_then_header(consumer, subject_header, expected):
    log = load("plain_request.json")
    if consumer is None:
        del log["consumer"]
    else:
        log["consumer"] = {"id": "c1", **consumer}

    (api_event,) = events_of(log, subject_header=subject_header)

    assert api_event["subject"] == expected
    assert api_event["data"].get("subject_unresolved", False) is (expected == "unknown")


def test_subject_header_takes_first_value_of_a_repeated_header_and_ignores_redacted():
    log = load("no_consumer.json")
    log["request"]["headers"]["x-tenant"] = ["", "t_1", "t_2"]
    log["request"]["headers"]["authorization"] = "REDACTED"

    assert events_of(log, subject_header="x-tenant")[0]["subject"] == "t_1"
    assert events_of(log, subject_header="authorization")[0]["subject"] == "unknown"


# --- partial acceptance: a bad entry is rejected alone, named by its place in Kong's batch ---------


def test_a_bad_entry_is_rejected_and_the_others_are_mapped():
    batch_log = [*load("batch_3.json"), load("plain_request.json")]
    del batch_log[2]["request"]["id"]

    batch = kong_map(batch_log)

    assert [e.index for e in batch.entries] == [0, 1, 3]
    assert [e["id"] for e in batch.events] == [
        "b0000000000000000000000000000001",
        "b0000000000000000000000000000002",
        "8c1e3a6f0b7d4e2a9f5c0d1b2a3e4f50",
    ]
    (rejection,) = batch.rejections
    assert rejection.index == 2
    assert rejection.errors == [
        {
            "name": "[2].request.id",
            "reason": "required: Kong's request id (Kong >= 3.5) is the dedup key (Kong batch entry 2)",
        }
    ]
    assert (rejection.request_id, rejection.subject, rejection.time) == (
        "",
        "cust_globex",
        "2024-11-25T16:00:01.999Z",
    )
    assert rejection.detail == (
        "Kong batch entry 2 was not counted: [2].request.id: required: Kong's request id (Kong >= 3.5) "
        "is the dedup key (Kong batch entry 2)."
    )


def test_single_object_errors_have_no_index():
    log = load("plain_request.json")
    log["request"]["id"] = ""

    (rejection,) = kong_map(log).rejections

    assert rejection.index is None
    assert rejection.errors == [
        {"name": "request.id", "reason": "required: Kong's request id (Kong >= 3.5) is the dedup key"}
    ]
    assert rejection.detail.startswith("the Kong log entry was not counted: request.id: required")


def test_every_bad_field_of_every_bad_entry_is_reported():
    batch = load("batch_3.json")
    batch[0]["started_at"] = "yesterday"
    batch.insert(1, "not an object")
    del batch[3]["request"]
    batch[3]["ai"]["proxy"]["usage"]["input_tokens"] = "lots"

    mapped = kong_map(batch)

    assert [e.index for e in mapped.entries] == [2]
    assert [[e["name"] for e in r.errors] for r in mapped.rejections] == [
        ["[0].started_at"],
        ["[1]"],
        ["[3].request.id", "[3].ai.proxy.usage.input_tokens"],
    ]
    assert mapped.rejections[1].errors[0]["reason"] == "must be a Kong http-log object (Kong batch entry 1)"


@pytest.mark.parametrize(
    "started_at",
    [None, "soon", 1.5e12 + 0.5, -1, True, 1726783839, 10**20],
    ids=["missing", "text", "fractional", "negative", "bool", "seconds-not-ms", "overflow"],
)
def test_bad_started_at_is_rejected(started_at):
    log = load("plain_request.json")
    if started_at is None:
        del log["started_at"]
    else:
        log["started_at"] = started_at

    assert names_of([log]) == ["[0].started_at"]


@pytest.mark.parametrize("payload", ["text", 42, None])
def test_body_that_is_neither_object_nor_array_is_refused_as_a_whole(payload):
    with pytest.raises(ValidationFailed) as excinfo:
        kong_map(payload)
    assert excinfo.value.errors == [
        {"name": "body", "reason": "Body must be a Kong http-log object or an array of them."}
    ]


@pytest.mark.parametrize("bad", [-1, 2.5, "12a", True, "12", " 7", 10**16])
def test_bad_token_count_is_rejected_with_its_path(bad):
    log = load("ai_proxy.json")
    log["ai"]["proxy"]["usage"]["completion_tokens"] = bad

    assert names_of(log) == ["ai.proxy.usage.completion_tokens"]


def test_a_digit_string_token_count_names_the_rule():
    log = load("ai_proxy.json")
    log["ai"]["proxy"]["usage"]["prompt_tokens"] = "25"

    assert errors_of([log]) == [
        {
            "name": "[0].ai.proxy.usage.prompt_tokens",
            "reason": "must be a JSON number (a non-negative integer token count), not a string "
            "(Kong batch entry 0)",
        }
    ]


@pytest.mark.parametrize(
    ("cost", "reason"),
    [("NaN", "must be a finite number"), (-0.00037, "must not be negative"), ("abc", "must be a number")],
)
def test_bad_cost_is_rejected(cost, reason):
    log = load("ai_proxy.json")
    log["ai"]["proxy"]["usage"]["cost"] = cost

    assert errors_of(log) == [{"name": "ai.proxy.usage.cost", "reason": reason}]


def test_an_over_long_subject_is_refused_per_entry_with_the_batch_index():
    batch = [load("plain_request.json"), load("ai_proxy.json")]
    batch[1]["consumer"]["custom_id"] = "c" * 256

    mapped = kong_map(batch)

    assert [e.index for e in mapped.entries] == [0]
    assert mapped.rejections[0].errors == [
        {
            "name": "[1].consumer.custom_id",
            "reason": "the subject taken from it is 256 characters, at most 255 (Kong batch entry 1)",
        }
    ]
    assert mapped.rejections[0].subject == "c" * 255
    # 255 characters is fine
    batch[1]["consumer"]["custom_id"] = "c" * 255
    assert [e.index for e in kong_map(batch).entries] == [0, 1]


def test_an_over_long_subject_header_is_refused_too():
    log = load("no_consumer.json")
    log["request"]["headers"]["x-customer"] = "h" * 300

    errors = errors_of([log, log], subject_header="X-Customer")

    assert [e["name"] for e in errors] == ["[0].request.headers.x-customer", "[1].request.headers.x-customer"]


def test_rejected_event_row_for_the_event_log():
    log = load("ai_proxy.json")
    log["ai"]["proxy"]["usage"]["cost"] = -1
    log["ai"]["proxy"]["payload"] = {"request": "secret prompt"}
    log["request"]["headers"]["cookie"] = "session=abc"

    (rejection,) = kong_map([load("plain_request.json"), log]).rejections
    row = rejection.rejected_event(source="kong")

    assert isinstance(rejection, KongRejection)
    assert row == {
        "source": "kong",
        "event_id": "2f6946328ffc4946b8c9120704a4a155",
        "type": "api_request",
        "subject": "cust_123",
        "time": row["time"],
        "data": {
            "kong_index": 1,
            "errors": [
                {"name": "[1].ai.proxy.usage.cost", "reason": "must not be negative (Kong batch entry 1)"}
            ],
            "entry": {
                "request": {
                    "id": "2f6946328ffc4946b8c9120704a4a155",
                    "method": "POST",
                    "uri": "/v1/chat/completions",
                },
                "response": {"status": 200},
                "started_at": 1726783839538,
                "consumer": {
                    "id": "ae974d6c-0f8a-4dc5-b701-fa0aa38592bd",
                    "username": "acme-prod",
                    "custom_id": "cust_123",
                },
                "ai": {
                    "proxy": {
                        "meta": log["ai"]["proxy"]["meta"],
                        "usage": {**log["ai"]["proxy"]["usage"], "cost": -1},
                    }
                },
            },
        },
        "reason": REJECTED_REASON,
        "detail": "Kong batch entry 1 was not counted: [1].ai.proxy.usage.cost: must not be negative "
        "(Kong batch entry 1).",
    }
    assert row["time"].isoformat() == "2024-09-19T22:10:39.538000+00:00"
    assert "payload" not in json.dumps(row["data"]) and "cookie" not in json.dumps(row["data"])


# --- free text: NUL and invalid UTF-8 are replaced, never a reason to refuse -------------------------


def test_nul_in_free_text_is_replaced_in_what_we_copy():
    log = load("no_consumer.json")
    log["request"]["uri"] = "/v1/reports\x00x?q=\x00"
    log["request"]["querystring"] = {"q": "\x00"}
    log["request"]["headers"]["user-agent"] = "curl\x00/8"
    log["request"]["headers"]["x-customer"] = "cust\x001"
    log["request"]["headers"]["x-literal"] = "cust\\u00002"

    (api_event,) = events_of(log, subject_header="x-customer")

    assert api_event["subject"] == "cust\ufffd1"
    assert api_event["data"]["path"] == "/v1/reports\ufffdx"
    assert events_of(log, subject_header="x-literal")[0]["subject"] == "cust\ufffdu00002"


def test_kong_parse_replaces_invalid_utf8_and_keeps_nul_escapes():
    body = json.dumps({"request": {"id": "r1", "uri": "/a?q=PLACEHOLDER"}, "q": "\x00"}).encode()
    body = body.replace(b"PLACEHOLDER", b"\xff\xfe")

    parsed = kong_parse(body)

    assert parsed == {"request": {"id": "r1", "uri": "/a?q=\ufffd\ufffd"}, "q": "\x00"}


def test_kong_parse_replaces_lone_surrogate_escapes_only():
    body = b'{"a": "x\\ud800y", "b": "\\udc00", "c": "\\ud83d\\ude00"}'

    assert kong_parse(body) == {"a": "x\ufffdy", "b": "\ufffd", "c": "\U0001f600"}


@pytest.mark.parametrize("body", [b"{", b"[1,", b"nul", b""])
def test_kong_parse_refuses_what_is_not_json(body):
    with pytest.raises(ValidationFailed) as excinfo:
        kong_parse(body)
    assert excinfo.value.field == "body"


def test_kong_parse_reads_numbers_exactly():
    assert kong_parse(b'{"cost": 0.00037, "n": 25, "big": 1e400}') == {
        "cost": Decimal("0.00037"),
        "n": 25,
        "big": Decimal("1e400"),
    }


def test_unusable_descriptive_numbers_become_null():
    log = load("plain_request.json")
    log["request"]["size"] = Decimal("1e400")
    log["latencies"]["request"] = Decimal("1.5e-9000")
    log["response"]["status"] = "OK"

    data = events_of(log)[0]["data"]

    assert (data["request_bytes"], data["latency_ms"], data["status"]) == (None, None, None)


# --- numbers are carried exactly -----------------------------------------------------------------


def test_cost_is_carried_exactly_and_matches_kongs_formula():
    # kong.md: (prompt * input_cost + completion * output_cost) / 1e6, test vector 10.0 / 10.0 per 1M.
    events = events_of(load("ai_proxy.json"))
    expected = (25 * Decimal("10.0") + 12 * Decimal("10.0")) / Decimal(1_000_000)

    assert events[1]["data"]["request_cost"] == events[2]["data"]["request_cost"] == "0.00037"
    # attributed once: summing `cost` over the request's token events gives Kong's cost exactly
    assert (events[1]["data"]["cost"], events[2]["data"]["cost"]) == ("0", "0.00037")
    assert sum(Decimal(e["data"]["cost"]) for e in events[1:]) == expected


def test_cost_from_decimal_parsed_json_is_identical():
    as_float = events_of(load("ai_proxy.json"))
    as_decimal = events_of(load("ai_proxy.json", parse_float=Decimal))

    assert as_decimal == as_float


@pytest.mark.parametrize(
    ("cost", "expected"),
    [(0, "0"), (1e-7, "0.0000001"), ("0.000370", "0.000370"), (Decimal("1.5E-5"), "0.000015"), (12, "12")],
)
def test_cost_string_is_plain_decimal_notation(cost, expected):
    log = load("ai_proxy.json")
    log["ai"]["proxy"]["usage"]["cost"] = cost

    assert events_of(log)[2]["data"]["cost"] == expected


def test_integral_floats_become_ints():
    log = load("ai_proxy.json")
    log["ai"]["proxy"]["usage"].update({"prompt_tokens": 25.0, "completion_tokens": Decimal("12")})
    log["latencies"]["request"] = 173.0

    events = events_of(log)

    assert type(events[0]["data"]["latency_ms"]) is int
    assert [type(e["data"]["tokens"]) for e in events[1:]] == [int, int]


# --- version layouts and the token rules ---------------------------------------------------------


def test_kong_3_6_flat_layout_gives_token_events():
    log = load("ai_proxy.json")
    del log["ai"]["proxy"]
    log["ai"] = {
        "usage": {"prompt_tokens": 31, "completion_tokens": 9, "total_tokens": 40},
        "meta": {"request_model": "gpt-4", "response_model": "gpt-4-0613", "provider_name": "openai"},
    }

    events = events_of(log)

    rid = "2f6946328ffc4946b8c9120704a4a155"
    assert [(e["id"], e["data"].get("tokens"), e["data"].get("model")) for e in events] == [
        (rid, None, None),
        (f"{rid}:in", 31, "gpt-4-0613"),
        (f"{rid}:out", 9, "gpt-4-0613"),
    ]
    log["ai"]["usage"]["prompt_tokens"] = -3
    assert names_of(log) == ["ai.usage.prompt_tokens"]


def test_kong_3_7_singular_keys_and_missing_total():
    log = load("ai_proxy.json")
    log["ai"] = {"ai-proxy": {"usage": {"prompt_token": 25, "completion_token": 12}, "meta": {}}}

    events = events_of(log)

    assert [e["data"]["tokens"] for e in events[1:]] == [25, 12]
    assert events[1]["data"]["total_tokens"] == 37  # computed as Kong does: prompt + completion


def test_per_plugin_ai_blocks_of_older_gateways():
    log = load("ai_proxy.json")
    proxy = log["ai"].pop("proxy")
    log["ai"]["ai-proxy"] = proxy
    log["ai"]["ai-request-transformer"] = {
        "meta": {"provider_name": "anthropic", "request_model": "claude-3-haiku"},
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120, "cost": 0},
    }

    events = events_of(log)

    rid = "2f6946328ffc4946b8c9120704a4a155"
    assert [(e["id"], e["data"].get("model"), e["data"].get("tokens")) for e in events] == [
        (rid, None, None),
        (f"{rid}:in", "gpt-3.5-turbo-0613", 25),
        (f"{rid}:out", "gpt-3.5-turbo-0613", 12),
        (f"{rid}:ai-request-transformer:in", "claude-3-haiku", 100),
        (f"{rid}:ai-request-transformer:out", "claude-3-haiku", 20),
    ]


def test_blocks_without_usage_or_meta_are_not_token_blocks():
    log = load("ai_proxy.json")
    log["ai"]["compressor"] = {"original_token_count": 845, "compress_token_count": 485}
    log["ai"]["proxy"]["rag-inject"] = {"embeddings_tokens": 62}
    log["ai"]["proxy"]["ai-llm-as-judge"] = {
        "meta": {"request_mode": "oneshot"},
        "usage": {"llm_accuracy": 87},
    }

    assert [e["id"][-4:] for e in events_of(log)] == ["a155", "5:in", ":out"]


def test_input_and_output_tokens_are_read_when_prompt_and_completion_are_zero():
    log = load("ai_proxy.json")
    log["ai"]["proxy"]["usage"] = {
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "input_tokens": 50,
        "output_tokens": 4160,
        "input_tokens_details": {"text_tokens": 50, "image_tokens": 0},
        "output_tokens_details": {"image_tokens": 4160},
        "total_tokens": 4210,
        "cost": 0.16665,
    }

    events = events_of(log)

    assert [(e["data"]["type"], e["data"]["tokens"]) for e in events[1:]] == [("input", 50), ("output", 4160)]
    assert events[1]["data"]["text_tokens"] == 50 and events[1]["data"]["image_tokens"] == 0
    assert events[2]["data"]["image_tokens"] == 4160
    assert events[2]["data"]["total_tokens"] == 4210


def test_meta_without_usage_gives_only_the_api_request():
    log = load("ai_proxy.json")
    del log["ai"]["proxy"]["usage"]

    assert [e["type"] for e in events_of(log)] == ["api_request"]


@pytest.mark.parametrize(
    ("usage", "status", "sides"),
    [
        ({"prompt_tokens": 25}, 200, ["in"]),
        ({"prompt_tokens": 25, "completion_tokens": 0}, 200, ["in"]),  # embeddings
        ({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "cost": 0}, 200, []),
        (
            {"prompt_tokens": 12, "completion_tokens": 0, "total_tokens": 12, "cost": 0},
            500,
            [],
        ),  # failed call
        ({"prompt_tokens": 0, "completion_tokens": 0}, 429, []),
        ({"prompt_tokens": 25, "completion_tokens": 12}, 400, ["in", "out"]),  # used, then blocked: billable
    ],
)
def test_zero_sides_and_failed_calls_give_no_token_events(usage, status, sides):
    log = load("ai_proxy.json")
    log["ai"]["proxy"]["usage"] = usage
    log["response"]["status"] = status

    events = events_of(log)

    assert [e["id"].rsplit(":", 1)[-1] for e in events[1:]] == sides


def test_cost_goes_to_the_input_event_when_there_is_no_output_event():
    log = load("ai_proxy.json")
    log["ai"]["proxy"]["usage"] = {"prompt_tokens": 25, "completion_tokens": 0, "cost": 0.00025}

    events = events_of(log)

    assert [e["id"].rsplit(":", 1)[-1] for e in events[1:]] == ["in"]
    assert events[1]["data"]["cost"] == events[1]["data"]["request_cost"] == "0.00025"
    assert events[1]["data"]["output_tokens"] == 0


@pytest.mark.parametrize(
    ("block", "keys", "provider", "request_mode", "content_type", "details", "estimated"),
    [
        # not streamed: never an estimate
        ("proxy", "plural", "openai", None, "application/json", None, False),
        ("proxy", "plural", "openai", "oneshot", "text/event-stream", None, False),
        # 3.7: every streamed prompt gets Kong's word-count estimate
        ("ai-proxy", "singular", "anthropic", None, "text/event-stream", None, True),
        # 3.8-3.10: providers outside streaming_has_token_counts are estimated
        ("ai-proxy", "plural", "openai", None, "text/event-stream", None, True),
        ("ai-proxy", "plural", "gemini", None, "text/event-stream", None, False),
        ("proxy", "plural", "openai", None, "Text/Event-Stream; charset=utf-8", None, True),
        ("proxy", "plural", "azure", None, "text/event-stream", None, True),
        ("proxy", "plural", "anthropic", None, "text/event-stream", None, False),
        ("proxy", "plural", "bedrock", None, "text/event-stream", None, False),
        ("proxy", "plural", "cohere", None, "text/event-stream", None, False),
        ("proxy", "plural", "llama2", None, "text/event-stream", None, False),
        # 3.11+: the provider's own usage (non-empty details) is no estimate; empty details prove nothing
        ("proxy", "plural", "openai", "stream", None, {"cached_tokens": 0}, False),
        ("proxy", "plural", "openai", "stream", None, {}, True),
        ("proxy", "plural", "anthropic", "stream", None, {}, False),
        ("proxy", "plural", "openai", "realtime", None, None, False),
    ],
)
def test_estimated_only_where_kong_estimated(
    block, keys, provider, request_mode, content_type, details, estimated
):
    log = copy.deepcopy(load("ai_proxy.json"))
    proxy = log["ai"].pop("proxy")
    log["ai"][block] = proxy
    meta, usage = proxy["meta"], proxy["usage"]
    meta["provider_name"] = provider
    if keys == "singular":
        usage["prompt_token"], usage["completion_token"] = (
            usage.pop("prompt_tokens"),
            usage.pop("completion_tokens"),
        )
    if request_mode:
        meta["request_mode"] = request_mode
    if content_type:
        log["response"]["headers"]["content-type"] = content_type
    if details is not None:
        usage["prompt_tokens_details"] = details

    events = events_of(log)

    assert [e["data"]["estimated"] for e in events[1:]] == [estimated, estimated]


@pytest.mark.parametrize(
    ("cache", "status", "hit"),
    [
        ({"cache_status": "Hit", "fetch_latency": 12}, "Hit", True),
        ({"cache_status": "Miss"}, "Miss", False),
        ({"cache_status": "Bypass"}, "Bypass", False),
        ({"cache_status": "Refresh"}, "Refresh", False),
        ({}, None, False),  # 3.8's empty cache object
    ],
)
def test_cache_status_is_carried_on_token_events(cache, status, hit):
    log = load("ai_proxy.json")
    log["ai"]["proxy"]["cache"] = cache

    events = events_of(log)

    assert [(e["data"]["cache_status"], e["data"]["cache_hit"]) for e in events[1:]] == [(status, hit)] * 2
    assert "cache_hit" not in events[0]["data"]
