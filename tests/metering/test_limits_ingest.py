"""Ingest validates everything it will need later before it answers 204 (core/limits.py): an accepted event
is always storable and countable. Each refusal is a 400 naming the field, and nothing is accepted."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from metering import selectors
from metering.models import Event, InboxBatch, RejectedEvent
from tests.metering.conftest import ce, post_events

pytestmark = pytest.mark.django_db

URL = "/api/v1/events"
V3 = "/api/v3/openmeter/events"
BATCH = "application/cloudevents-batch+json"


def total(tenant, slug: str = "tokens") -> list:
    r = tenant.client("read").get(f"/api/v1/meters/{slug}/query")
    assert r.status_code == 200, r.content
    return [row["value"] for row in r.json()["data"]]


def refused(response, name: str, reason: str) -> None:
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    names = {p["name"]: p["reason"] for p in response.json()["invalid_params"]}
    assert name in names, names
    assert reason in names[name], names[name]


def nothing_accepted(org) -> None:
    assert not InboxBatch.objects.filter(organization=org).exists()
    assert not Event.objects.filter(organization=org).exists()


def test_one_bad_time_in_a_batch_of_101_refuses_the_batch_and_names_it(
    tenant_a, tenant_b, tokens_meter, tokens_meter_b
):
    b = post_events(tenant_b.client("ingest"), [ce("b1", data={"tokens": 7})])
    assert b.status_code == 204
    batch = [ce(f"e{i}", data={"tokens": 1}) for i in range(100)]
    batch.append(ce("bad", time="0001-01-01T00:00:00+15:00", data={"tokens": 1}))
    r = post_events(tenant_a.client("ingest"), batch)
    refused(r, "events[100].time", "1970")
    assert [p["name"] for p in r.json()["invalid_params"]] == ["events[100].time"]
    nothing_accepted(tenant_a.org)
    assert total(tenant_a) == []
    # the same 100 good events alone are accepted and every one counts
    assert post_events(tenant_a.client("ingest"), batch[:100]).status_code == 204
    assert total(tenant_a) == [100]
    assert total(tenant_b) == [7]
    assert not InboxBatch.objects.filter(failed_at__isnull=False).exists()


@pytest.mark.parametrize(
    ("time", "reason"),
    [
        ("9999-12-31T23:59:59Z", "in the future"),
        ("1969-12-31T23:59:59Z", "1970"),
        ("0001-01-01T00:00:00+15:00", "1970"),
        ("9999-12-31T23:59:59-15:00", "in the future"),
    ],
)
@pytest.mark.parametrize("url", [URL, V3])
def test_times_outside_1970_to_now_plus_skew_are_refused(tenant_a, time, reason, url):
    r = tenant_a.client("ingest").post(
        url, data=json.dumps(ce("t", time=time)), content_type="application/cloudevents+json"
    )
    refused(r, "time", reason)
    nothing_accepted(tenant_a.org)


def test_future_skew_is_a_setting(tenant_a, tokens_meter, settings):
    soon = (datetime.now(UTC) + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = post_events(tenant_a.client("ingest"), [ce("f", time=soon, data={"tokens": 2})])
    refused(r, "events[0].time", "300 s in the future (INGEST_MAX_FUTURE_SECONDS)")
    settings.INGEST_MAX_FUTURE_SECONDS = 3600
    assert post_events(tenant_a.client("ingest"), [ce("f", time=soon, data={"tokens": 2})]).status_code == 204
    assert Event.objects.filter(organization=tenant_a.org).count() == 1


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("1e30", "less than 1e20"),
        ("-1e30", "less than 1e20"),
        ("1e400", "less than 1e20"),
        ("100000000000000000000", "less than 1e20"),
    ],
)
def test_numbers_the_money_code_cannot_carry_are_refused(tenant_a, tokens_meter, raw, reason):
    body = (
        '[{"id":"ok","source":"app","specversion":"1.0","type":"prompt","subject":"c","data":{"tokens":1}},'
        '{"id":"big","source":"app","specversion":"1.0","type":"prompt","subject":"c",'
        f'"data":{{"usage":{{"tokens":{raw}}}}}}}]'
    )
    r = post_events(tenant_a.client("ingest"), body)
    refused(r, "events[1].data.usage.tokens", reason)
    nothing_accepted(tenant_a.org)


def test_numbers_below_the_bound_are_stored_and_summed_exactly(tenant_a, tenant_b, tokens_meter):
    body = (
        '[{"id":"a","source":"app","specversion":"1.0","type":"prompt","subject":"c",'
        '"data":{"tokens":99999999999999999999.5}},'
        '{"id":"b","source":"app","specversion":"1.0","type":"prompt","subject":"c","data":{"tokens":1e-12}}]'
    )
    assert post_events(tenant_a.client("ingest"), body).status_code == 204
    [row] = selectors.meter_query(
        organization=tenant_a.org, meter=tokens_meter, from_=None, to=None, window_size=None
    )
    assert row.value == Decimal("99999999999999999999.500000000001")
    assert not Event.objects.filter(organization=tenant_b.org).exists()


@pytest.mark.parametrize("url", [URL, V3, "/api/v1/meters", "/api/v1/plans", "/api/v1/customers"])
def test_json_nested_950_levels_answers_400_not_500(tenant_a, url):
    deep = "[" * 950 + "]" * 950
    r = tenant_a.client().generic("POST", url, deep, content_type="application/json")
    refused(r, "body", "32 levels")
    nothing_accepted(tenant_a.org)


def test_event_data_nested_beyond_the_limit_is_refused_and_within_is_listed(tenant_a, tenant_b):
    def nested(levels: int) -> dict:
        value: dict = {"leaf": 1}
        for _ in range(levels - 1):
            value = {"n": value}
        return value

    # the batch array and the event object are two levels: data may nest 30 more
    r = post_events(tenant_a.client("ingest"), [ce("deep", data=nested(31))])
    refused(r, "body", "32 levels")
    nothing_accepted(tenant_a.org)
    r = post_events(tenant_a.client("ingest"), [ce("ok", data=nested(30))])
    assert r.status_code == 204, r.content
    listed = tenant_a.client("read").get(URL)
    assert listed.status_code == 200
    assert [item["event"]["id"] for item in listed.json()] == ["ok"]
    assert tenant_b.client("read").get(URL).json() == []


def test_data_string_holding_deep_json_is_refused(tenant_a):
    inner = "[" * 2000 + "]" * 2000
    r = post_events(tenant_a.client("ingest"), [ce("s", data=inner)])
    refused(r, "events[0].data", "JSON object")
    nothing_accepted(tenant_a.org)


def test_brackets_inside_strings_do_not_count_as_nesting(tenant_a):
    text = "[[[[" * 20 + '\\"{{{{' * 20
    r = post_events(tenant_a.client("ingest"), [ce("s", data={"text": text, "q": '"]"'})])
    assert r.status_code == 204, r.content
    assert Event.objects.get(organization=tenant_a.org).data == {"text": text, "q": '"]"'}
    assert not RejectedEvent.objects.exists()
