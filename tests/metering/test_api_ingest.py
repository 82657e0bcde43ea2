"""POST /api/v1/events and /api/v3/openmeter/events: content types, dedup, errors, atomic batches."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.db import connection

from metering import drain
from metering.models import Event, RejectedEvent
from tests.metering.conftest import ce, post_events

pytestmark = pytest.mark.django_db


def stored(org) -> list[tuple]:
    """What the event store holds once the organization's accepted batches are drained (as a read does)."""
    drain.events_flush(organization_id=org.id)
    return list(
        Event.objects.filter(organization=org).order_by("seq").values_list("source", "event_id", "subject")
    )


@pytest.mark.parametrize(
    "ctype",
    [
        "application/cloudevents+json",
        "application/json",
        "application/cloudevents+json; charset=utf-8",
        "application/json;charset=UTF-8",
    ],
)
def test_single_event_content_types_answer_204_empty(tenant_a, ctype):
    r = post_events(tenant_a.client("ingest"), ce("e1", data={"tokens": 5}), content_type=ctype)
    assert r.status_code == 204, r.content
    assert r.content == b""
    assert stored(tenant_a.org) == [("app", "e1", "cust-1")]


@pytest.mark.parametrize(
    "ctype",
    [
        "application/cloudevents-batch+json",
        "application/json",
        "application/cloudevents-batch+json; charset=utf-8",
    ],
)
def test_batch_content_types(tenant_a, ctype):
    batch = [ce(f"e{i}", data={"tokens": i}) for i in range(50)]  # above SMALL_BATCH: COPY path
    r = post_events(tenant_a.client("ingest"), batch, content_type=ctype)
    assert r.status_code == 204, r.content
    assert len(stored(tenant_a.org)) == 50


def test_resent_events_are_accepted_and_stored_once(tenant_a):
    client = tenant_a.client("ingest")
    small = [ce("a"), ce("b")]
    big = [ce(f"x{i}") for i in range(40)]
    for _ in range(2):
        assert post_events(client, small).status_code == 204
        assert post_events(client, big).status_code == 204
    assert len(stored(tenant_a.org)) == 42
    assert not RejectedEvent.objects.exists()


def test_same_id_other_source_is_a_different_event(tenant_a):
    r = post_events(tenant_a.client("ingest"), [ce("a", source="s1"), ce("a", source="s2")])
    assert r.status_code == 204
    assert [s[0] for s in stored(tenant_a.org)] == ["s1", "s2"]


@pytest.mark.parametrize("n_filler", [0, 40])
def test_same_id_different_payload_first_write_wins_and_conflict_is_logged(tenant_a, n_filler):
    client = tenant_a.client("ingest")
    filler = [ce(f"f{i}") for i in range(n_filler)]
    assert post_events(client, [ce("a", data={"tokens": 1}), *filler]).status_code == 204
    assert post_events(client, [ce("a", data={"tokens": 999}), *filler]).status_code == 204
    ev = Event.objects.get(organization=tenant_a.org, event_id="a")
    assert ev.data == {"tokens": 1}
    rej = RejectedEvent.objects.get(organization=tenant_a.org)
    assert (rej.event_id, rej.reason, rej.data) == ("a", "duplicate_conflict", {"tokens": 999})


def test_duplicate_inside_one_batch_first_wins(tenant_a):
    r = post_events(tenant_a.client("ingest"), [ce("a", data={"n": 1}), ce("a", data={"n": 2})])
    assert r.status_code == 204
    assert Event.objects.get(event_id="a").data == {"n": 1}
    assert RejectedEvent.objects.get().data == {"n": 2}


def test_numbers_are_stored_exactly(tenant_a):
    body = (
        '{"id":"p","source":"s","specversion":"1.0","type":"t","subject":"u",'
        '"data":{"big":123456789012345678.123456789,"small":0.1,"int":12345678901234567890}}'
    )
    r = post_events(tenant_a.client("ingest"), body, content_type="application/cloudevents+json")
    assert r.status_code == 204
    with connection.cursor() as cur:
        cur.execute(
            "SELECT data->>'big', data->>'small', data->>'int' FROM metering_event WHERE event_id='p'"
        )
        assert cur.fetchone() == ("123456789012345678.123456789", "0.1", "12345678901234567890")


def test_time_defaults_to_receipt_and_accepts_offsets_and_millis(tenant_a):
    evs = [ce("a", time="2025-01-01T12:00:00.000Z"), ce("b", time="2025-01-01T13:00:00+01:00")]
    no_time = ce("c")
    del no_time["time"]
    assert post_events(tenant_a.client("ingest"), [*evs, no_time]).status_code == 204
    times = dict(Event.objects.values_list("event_id", "time"))
    assert times["a"] == times["b"]
    assert times["c"] > times["a"]


def test_data_as_json_string_holding_an_object(tenant_a):
    r = post_events(
        tenant_a.client("ingest"), ce("a", data='{"tokens": 3}'), content_type="application/cloudevents+json"
    )
    assert r.status_code == 204
    assert Event.objects.get().data == {"tokens": 3}


def test_bad_batch_names_every_index_and_field_and_stores_nothing(tenant_a):
    batch = [
        ce("ok1"),
        ce("bad1", subject=""),
        ce("ok2"),
        {**ce("bad3"), "time": "yesterday"},
        {**ce("bad4"), "specversion": "0.3"},
        "nope",
    ]
    r = post_events(tenant_a.client("ingest"), batch)
    assert r.status_code == 400
    assert r["Content-Type"] == "application/problem+json"
    names = [p["name"] for p in r.json()["invalid_params"]]
    assert names == ["events[1].subject", "events[3].time", "events[4].specversion", "events[5]"]
    assert "events[1].subject" in r.json()["detail"]
    assert stored(tenant_a.org) == []


def test_single_bad_event_names_the_field(tenant_a):
    ev = ce("a")
    del ev["source"]
    r = post_events(tenant_a.client("ingest"), ev, content_type="application/cloudevents+json")
    assert r.status_code == 400
    assert r.json()["invalid_params"] == [{"name": "source", "reason": "required, a non-empty string"}]


def test_data_must_be_an_object(tenant_a):
    r = post_events(tenant_a.client("ingest"), [ce("a", data=[1, 2])])
    assert r.status_code == 400
    assert r.json()["invalid_params"][0]["name"] == "events[0].data"


def test_malformed_json_and_nul_and_empty_batch(tenant_a):
    c = tenant_a.client("ingest")
    assert post_events(c, b"{not json").status_code == 400
    assert (
        post_events(c, json.dumps([ce("a", data={"s": "\u0000"})])).json()["invalid_params"][0]["name"]
        == "body"
    )
    assert post_events(c, b"[]").status_code == 400
    assert stored(tenant_a.org) == []


@pytest.mark.parametrize(
    "bad",
    [b'"ext": "caf\xe9"', b'"data": {"model": "caf\xe9"}', b'"data": {"\xff": 1}', b'"subject": "\xc3"'],
    ids=["extension attribute", "data value", "data key", "subject"],
)
def test_a_body_that_is_not_utf8_is_refused_before_it_is_accepted(tenant_a, bad):
    """The fast path's decoder steps over unknown attributes and `data` without building their strings;
    PostgreSQL would refuse such bytes when the drain parses the batch, after the client had its 204."""
    good = json.dumps(ce("ok", data={"model": "caf\u00e9 \u00fcber"}), ensure_ascii=False).encode()
    one = json.dumps(ce("bad")).encode()[:-1] + b", " + bad + b"}"
    r = post_events(tenant_a.client("ingest"), b"[" + good + b", " + one + b"]")
    assert r.status_code == 400, r.content
    assert [p["name"] for p in r.json()["invalid_params"]] == ["body"]
    assert "not valid UTF-8" in r.json()["detail"]
    assert stored(tenant_a.org) == []
    assert post_events(tenant_a.client("ingest"), b"[" + good + b"]").status_code == 204
    assert Event.objects.get(organization=tenant_a.org).data == {"model": "caf\u00e9 \u00fcber"}


def test_unsupported_content_type_is_415(tenant_a):
    r = post_events(tenant_a.client("ingest"), [ce("a")], content_type="text/plain")
    assert r.status_code == 415
    assert r["Content-Type"] == "application/problem+json"


def test_oversized_body_is_413_naming_the_limit(tenant_a, settings):
    settings.INGEST_MAX_BODY_BYTES = 2048
    batch = [ce(f"e{i}", data={"pad": "x" * 100}) for i in range(30)]
    r = post_events(tenant_a.client("ingest"), batch)
    assert r.status_code == 413
    assert r["Content-Type"] == "application/problem+json"
    assert "2048" in r.json()["detail"]
    assert r.json()["limit"] == 2048
    assert stored(tenant_a.org) == []


def test_key_without_ingest_scope_is_403_problem(tenant_a):
    r = post_events(tenant_a.client("read"), [ce("a")])
    assert r.status_code == 403
    assert r["Content-Type"] == "application/problem+json"
    assert "ingest" in r.json()["detail"]
    assert stored(tenant_a.org) == []


def test_no_key_is_401(client):
    r = client.post("/api/v1/events", data=json.dumps(ce("a")), content_type="application/json")
    assert r.status_code == 401
    assert r["Content-Type"] == "application/problem+json"


def test_v3_openmeter_path_answers_202_and_rejects_unknown_properties(tenant_a):
    c = tenant_a.client("ingest")
    assert post_events(c, [ce("a")], path="/api/v3/openmeter/events").status_code == 202
    r = post_events(c, [{**ce("b"), "foo": 1}], path="/api/v3/openmeter/events")
    assert r.status_code == 400
    assert r.json()["invalid_params"][0]["name"] == "events[0].foo"
    assert post_events(c, [{**ce("c"), "foo": 1}]).status_code == 204  # v1 ignores extensions


def test_tenants_dedup_separately_and_never_see_each_other(tenant_a, tenant_b):
    assert post_events(tenant_a.client("ingest"), [ce("same", data={"tokens": 1})]).status_code == 204
    assert post_events(tenant_b.client("ingest"), [ce("same", data={"tokens": 2})]).status_code == 204
    assert Event.objects.get(organization=tenant_a.org).data == {"tokens": 1}
    assert Event.objects.get(organization=tenant_b.org).data == {"tokens": 2}
    assert not RejectedEvent.objects.exists()
    ra = tenant_a.client("read").get("/api/v1/events").json()
    rb = tenant_b.client("read").get("/api/v1/events").json()
    assert [e["event"]["data"] for e in ra] == [{"tokens": 1}]
    assert [e["event"]["data"] for e in rb] == [{"tokens": 2}]


def test_decimal_values_round_trip_in_store(tenant_a):
    post_events(tenant_a.client("ingest"), [ce("a", data={"cost": "0.00037", "n": 1.5})])
    ev = Event.objects.get()
    assert ev.data["cost"] == "0.00037"
    assert Decimal(str(ev.data["n"])) == Decimal("1.5")


@pytest.mark.parametrize(
    ("ctype", "body", "says"),
    [
        ("application/cloudevents+json", [ce("e1")], "one CloudEvent"),
        ("application/cloudevents-batch+json", ce("e1"), "an array of CloudEvents"),
    ],
)
def test_a_cloudevents_media_type_and_its_body_must_agree(tenant_a, tenant_b, ctype, body, says):
    r = post_events(tenant_a.client("ingest"), body, content_type=ctype)
    assert r.status_code == 400, r.content
    assert r["Content-Type"] == "application/problem+json"
    assert r.json()["invalid_params"] == [{"name": "body", "reason": r.json()["detail"]}]
    assert says in r.json()["detail"]
    assert stored(tenant_a.org) == [] and stored(tenant_b.org) == []  # nothing written anywhere
