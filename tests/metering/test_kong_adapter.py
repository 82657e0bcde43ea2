"""Kong http-log → CloudEvents mapping (metering.adapters.kong). Pure: no database.

Fixtures in fixtures/kong/ follow the payload shape documented in ../shared/reference/kong.md.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.errors import ValidationFailed
from metering.adapters.kong import kong_to_cloudevents

FIXTURES = Path(__file__).parent / "fixtures" / "kong"


def load(name: str, **json_kwargs: Any) -> Any:
    return json.loads((FIXTURES / name).read_text(), **json_kwargs)


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


# --- exact events per fixture --------------------------------------------------------------------


def test_plain_request_log_gives_one_api_request_event():
    events = kong_to_cloudevents(load("plain_request.json"))

    assert events == [
        event(
            "8c1e3a6f0b7d4e2a9f5c0d1b2a3e4f50",
            "api_request",
            "cust_acme",
            "2024-11-25T16:00:00.123Z",
            {
                "method": "GET",
                "path": "/v1/orders",
                "status": 200,
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
    "estimated": False,
}


def test_ai_proxy_log_gives_request_input_and_output_events():
    events = kong_to_cloudevents(load("ai_proxy.json"))

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
            {"tokens": 25, "type": "input", **AI_PROXY_TOKENS, "cost": "0"},
        ),
        event(
            f"{rid}:out",
            "llm_tokens",
            subject,
            time,
            {"tokens": 12, "type": "output", **AI_PROXY_TOKENS, "cost": "0.00037"},
        ),
    ]
    assert all(type(e["data"]["tokens"]) is int for e in events[1:])


def test_streamed_ai_log_without_provider_usage_is_flagged_estimated():
    events = kong_to_cloudevents(load("ai_proxy_stream_estimated.json"))

    rid, subject, time = "5d0b9e2c7a4f41c8b3e6a1f0c9d8e7b6", "cust_123", "2024-11-25T16:01:01.007Z"
    tokens = {
        "model": "gpt-4o-2024-08-06",
        "provider": "openai",
        "input_tokens": 18,
        "output_tokens": 57,
        "total_tokens": 75,
        "request_cost": "0.00075",
        "estimated": True,
    }
    assert [e["id"] for e in events] == [rid, f"{rid}:in", f"{rid}:out"]
    assert events[0]["data"]["latency_ms"] == 2214
    assert events[0]["data"]["upstream_latency_ms"] == 2210
    assert events[1] == event(
        f"{rid}:in", "llm_tokens", subject, time, {"tokens": 18, "type": "input", **tokens, "cost": "0"}
    )
    assert events[2] == event(
        f"{rid}:out",
        "llm_tokens",
        subject,
        time,
        {"tokens": 57, "type": "output", **tokens, "cost": "0.00075"},
    )


def test_batched_array_of_three():
    events = kong_to_cloudevents(load("batch_3.json"))

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
    # v3.11 field names, *_details blocks; streamed but provider-reported (details present) → not estimated.
    tokens = {
        "model": "gpt-4o-mini",  # response_model null → request_model
        "provider": "openai",
        "input_tokens": 1200,
        "output_tokens": 300,
        "total_tokens": 1500,
        "request_cost": "0.00036",
        "cached_tokens": 1024,
        "reasoning_tokens": 64,
        "estimated": False,
    }
    assert events[3]["data"] == {"tokens": 1200, "type": "input", **tokens, "cost": "0"}
    assert events[4]["data"] == {"tokens": 300, "type": "output", **tokens, "cost": "0.00036"}


def test_log_without_consumer_is_quarantined_as_unknown_not_dropped():
    events = kong_to_cloudevents(load("no_consumer.json"))

    assert events == [
        event(
            "0e0e0e0e1f1f1f1f2a2a2a2a3b3b3b3b",
            "api_request",
            "unknown",
            "2024-11-25T16:02:02.999Z",
            {
                "method": "POST",
                "path": "/v1/reports",
                "status": 202,
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


def test_unknown_subject_flag_is_carried_on_token_events_too():
    log = load("ai_proxy.json")
    del log["consumer"]

    events = kong_to_cloudevents(log)

    assert [e["subject"] for e in events] == ["unknown"] * 3
    assert all(e["data"]["subject_unresolved"] is True for e in events)
    assert events[0]["data"]["consumer_id"] == "ae974d6c-0f8a-4dc5-b701-fa0aa38592bd"  # authenticated_entity


def test_source_parameter_is_used():
    events = kong_to_cloudevents(load("ai_proxy.json"), source="kong-eu-1")
    assert {e["source"] for e in events} == {"kong-eu-1"}


def test_empty_batch_gives_no_events():
    assert kong_to_cloudevents([]) == []


# --- subject precedence --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("consumer", "subject_header", "expected"),
    [
        ({"custom_id": "cust_1", "username": "user_1"}, "x-customer-id", "cust_1"),
        ({"custom_id": None, "username": "user_1"}, "x-customer-id", "user_1"),
        ({"custom_id": "", "username": "user_1"}, None, "user_1"),
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

    (api_event,) = kong_to_cloudevents(log, subject_header=subject_header)

    assert api_event["subject"] == expected
    assert api_event["data"].get("subject_unresolved", False) is (expected == "unknown")


def test_subject_header_takes_first_value_of_a_repeated_header_and_ignores_redacted():
    log = load("no_consumer.json")
    log["request"]["headers"]["x-tenant"] = ["", "t_1", "t_2"]
    log["request"]["headers"]["authorization"] = "REDACTED"

    assert kong_to_cloudevents(log, subject_header="x-tenant")[0]["subject"] == "t_1"
    assert kong_to_cloudevents(log, subject_header="authorization")[0]["subject"] == "unknown"


# --- errors name the field and the batch index ---------------------------------------------------


def errors_of(payload: Any) -> list[dict[str, str]]:
    with pytest.raises(ValidationFailed) as excinfo:
        kong_to_cloudevents(payload)
    return excinfo.value.errors


def test_missing_request_id_in_a_batch_names_the_index():
    batch = [*load("batch_3.json"), load("plain_request.json")]
    del batch[2]["request"]["id"]

    errors = errors_of(batch)

    assert [e["name"] for e in errors] == ["[2].request.id"]


def test_single_object_errors_have_no_index():
    log = load("plain_request.json")
    log["request"]["id"] = ""

    with pytest.raises(ValidationFailed) as excinfo:
        kong_to_cloudevents(log)

    assert excinfo.value.field == "request.id"
    assert [e["name"] for e in excinfo.value.errors] == ["request.id"]


def test_every_bad_entry_is_reported_and_nothing_is_returned():
    batch = load("batch_3.json")
    batch[0]["started_at"] = "yesterday"
    batch.insert(1, "not an object")
    del batch[3]["request"]
    batch[3]["ai"]["proxy"]["usage"]["input_tokens"] = "lots"

    errors = errors_of(batch)

    assert [e["name"] for e in errors] == [
        "[0].started_at",
        "[1]",
        "[3].request.id",
        "[3].ai.proxy.usage.input_tokens",
    ]


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

    assert [e["name"] for e in errors_of([log])] == ["[0].started_at"]


@pytest.mark.parametrize("payload", ["text", 42, None])
def test_body_that_is_neither_object_nor_array_is_rejected(payload):
    assert errors_of(payload) == [
        {"name": "body", "reason": "Body must be a Kong http-log object or an array of them."}
    ]


@pytest.mark.parametrize("bad", [-1, 2.5, "12a", True])
def test_bad_token_count_is_rejected_with_its_path(bad):
    log = load("ai_proxy.json")
    log["ai"]["proxy"]["usage"]["completion_tokens"] = bad

    assert [e["name"] for e in errors_of(log)] == ["ai.proxy.usage.completion_tokens"]


def test_non_numeric_cost_is_rejected():
    log = load("ai_proxy.json")
    log["ai"]["proxy"]["usage"]["cost"] = "NaN"

    assert [e["name"] for e in errors_of(log)] == ["ai.proxy.usage.cost"]


# --- numbers are carried exactly -----------------------------------------------------------------


def test_cost_is_carried_exactly_and_matches_kongs_formula():
    # kong.md: (prompt * input_cost + completion * output_cost) / 1e6, test vector 10.0 / 10.0 per 1M.
    events = kong_to_cloudevents(load("ai_proxy.json"))
    expected = (25 * Decimal("10.0") + 12 * Decimal("10.0")) / Decimal(1_000_000)

    assert events[1]["data"]["request_cost"] == events[2]["data"]["request_cost"] == "0.00037"
    # attributed once: summing `cost` over the request's token events gives Kong's cost exactly
    assert (events[1]["data"]["cost"], events[2]["data"]["cost"]) == ("0", "0.00037")
    assert sum(Decimal(e["data"]["cost"]) for e in events[1:]) == expected


def test_cost_from_decimal_parsed_json_is_identical():
    # The endpoint may parse with parse_float=Decimal (billing-pitfalls row 10); the result is the same.
    as_float = kong_to_cloudevents(load("ai_proxy.json"))
    as_decimal = kong_to_cloudevents(load("ai_proxy.json", parse_float=Decimal))

    assert as_decimal == as_float


@pytest.mark.parametrize(
    ("cost", "expected"),
    [(0, "0"), (1e-7, "0.0000001"), ("0.000370", "0.000370"), (Decimal("1.5E-5"), "0.000015"), (12, "12")],
)
def test_cost_string_is_plain_decimal_notation(cost, expected):
    log = load("ai_proxy.json")
    log["ai"]["proxy"]["usage"]["cost"] = cost

    assert kong_to_cloudevents(log)[2]["data"]["cost"] == expected


def test_integral_floats_become_ints():
    log = load("ai_proxy.json")
    log["ai"]["proxy"]["usage"].update({"prompt_tokens": 25.0, "completion_tokens": Decimal("12")})
    log["latencies"]["request"] = 173.0

    events = kong_to_cloudevents(log)

    assert type(events[0]["data"]["latency_ms"]) is int
    assert [type(e["data"]["tokens"]) for e in events[1:]] == [int, int]


# --- defensive AI parsing ------------------------------------------------------------------------


def test_docs_drift_singular_prompt_token_and_missing_total():
    log = load("ai_proxy.json")
    log["ai"]["proxy"]["usage"] = {"prompt_token": 25, "completion_token": 12, "cost": 0.00037}

    events = kong_to_cloudevents(log)

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

    events = kong_to_cloudevents(log)

    rid = "2f6946328ffc4946b8c9120704a4a155"
    assert [(e["id"], e["data"].get("model"), e["data"].get("tokens")) for e in events] == [
        (rid, None, None),
        (f"{rid}:in", "gpt-3.5-turbo-0613", 25),
        (f"{rid}:out", "gpt-3.5-turbo-0613", 12),
        (f"{rid}:ai-request-transformer:in", "claude-3-haiku", 100),
        (f"{rid}:ai-request-transformer:out", "claude-3-haiku", 20),
    ]


def test_ai_meta_without_usage_emits_only_the_api_request():
    log = load("ai_proxy.json")
    del log["ai"]["proxy"]["usage"]

    assert [e["type"] for e in kong_to_cloudevents(log)] == ["api_request"]


def test_only_the_known_side_gets_a_token_event():
    log = load("ai_proxy.json")
    log["ai"]["proxy"]["usage"] = {"prompt_tokens": 25}

    events = kong_to_cloudevents(log)

    assert [e["id"].rsplit(":", 1)[-1] for e in events[1:]] == ["in"]
    assert events[1]["data"]["output_tokens"] is None
    assert events[1]["data"]["total_tokens"] is None


@pytest.mark.parametrize(
    ("request_mode", "content_type", "details", "estimated"),
    [
        ("oneshot", "application/json", False, False),
        (None, None, False, False),
        ("stream", None, False, True),
        (None, "text/event-stream", False, True),
        (None, "Text/Event-Stream; charset=utf-8", False, True),
        ("stream", "text/event-stream", True, False),  # provider-reported usage details present
    ],
)
def test_estimated_flag_heuristic(request_mode, content_type, details, estimated):
    log = copy.deepcopy(load("ai_proxy.json"))
    meta, usage = log["ai"]["proxy"]["meta"], log["ai"]["proxy"]["usage"]
    if request_mode:
        meta["request_mode"] = request_mode
    if content_type:
        log["response"]["headers"]["content-type"] = content_type
    if details:
        usage["prompt_tokens_details"] = {"cached_tokens": 0}

    events = kong_to_cloudevents(log)

    assert [e["data"]["estimated"] for e in events[1:]] == [estimated, estimated]


def test_cost_goes_to_the_input_event_when_there_is_no_output_count():
    log = load("ai_proxy.json")
    log["ai"]["proxy"]["usage"] = {"prompt_tokens": 25, "cost": 0.00025}

    events = kong_to_cloudevents(log)

    assert [e["id"].rsplit(":", 1)[-1] for e in events[1:]] == ["in"]
    assert events[1]["data"]["cost"] == events[1]["data"]["request_cost"] == "0.00025"
