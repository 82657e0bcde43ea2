"""The official `openmeter` SDK (1.0.0b236), unchanged, against a live server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sdk(live_server, tenant_a, tenant_b, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the SDK must not pick up a local types.py
    import openmeter

    client = openmeter.Client(endpoint=live_server.url, token=tenant_a.keys["admin"])
    other = openmeter.Client(endpoint=live_server.url, token=tenant_b.keys["admin"])
    yield client, other
    client.close()
    other.close()


def test_sdk_ingest_list_meters_query(sdk):
    from openmeter.models import Event, MeterCreate

    client, other = sdk
    created = client.meters.create(
        MeterCreate(
            slug="tokens_total",
            name="Tokens",
            aggregation="SUM",
            event_type="prompt",
            value_property="$.tokens",
            group_by={"model": "$.model", "type": "$.type"},
        )
    )
    assert created.slug == "tokens_total"
    other.meters.create(MeterCreate(slug="tokens_total", aggregation="COUNT", event_type="prompt"))

    t = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    client.events.ingest_event(
        Event(
            id="evt-1",
            source="my-app",
            specversion="1.0",
            type="prompt",
            subject="customer-1",
            time=t,
            data={"tokens": 100, "model": "gpt-4o", "type": "input"},
        )
    )
    batch = [
        Event(
            id=f"evt-{i}",
            source="my-app",
            specversion="1.0",
            type="prompt",
            subject="customer-1",
            time=datetime(2025, 1, 2, 9, 0, tzinfo=UTC),
            data={"tokens": 10 * i, "model": "gpt-4o-mini", "type": "output"},
        )
        for i in range(2, 5)
    ]
    client.events.ingest_events(batch)
    client.events.ingest_events(batch)  # a retry: deduplicated
    client.events.ingest_events_json(
        [
            {
                "id": "evt-9",
                "source": "my-app",
                "specversion": "1.0",
                "type": "prompt",
                "subject": "customer-2",
                "time": "2025-01-01T13:00:00Z",
                "data": {"tokens": 5, "model": "gpt-4o", "type": "input"},
            }
        ]
    )
    other.events.ingest_event(
        Event(
            id="evt-1",
            source="my-app",
            specversion="1.0",
            type="prompt",
            subject="customer-1",
            time=t,
            data={"tokens": 99999},
        )
    )

    meters = client.meters.list()
    assert [m.slug for m in meters] == ["tokens_total"]
    assert client.meters.get("tokens_total").group_by == {"model": "$.model", "type": "$.type"}

    result = client.meters.query_json(
        "tokens_total",
        from_parameter=datetime(2025, 1, 1, tzinfo=UTC),
        to=datetime(2025, 1, 3, tzinfo=UTC),
        window_size="DAY",
        group_by=["model"],
    )
    rows = sorted((r.window_start.isoformat(), r.group_by["model"], r.value) for r in result.data)
    assert rows == [
        ("2025-01-01T00:00:00+00:00", "gpt-4o", 105.0),
        ("2025-01-02T00:00:00+00:00", "gpt-4o-mini", 90.0),
    ]

    by_subject = client.meters.query_json(
        "tokens_total", window_size="DAY", subject=["customer-1"], filter_group_by={"model": "gpt-4o"}
    )
    assert [(r.subject, r.value) for r in by_subject.data] == [("customer-1", 100.0)]

    from openmeter.models import MeterQueryRequest

    posted = client.meters.query("tokens_total", MeterQueryRequest(window_size="DAY", group_by=["type"]))
    assert sorted((r.group_by["type"], r.value) for r in posted.data) == [("input", 105.0), ("output", 90.0)]

    csv_text = client.meters.query_csv("tokens_total", window_size="DAY")
    assert "window_start" in (csv_text if isinstance(csv_text, str) else "".join(map(str, csv_text)))

    events = client.events.list(subject="customer-1", limit=10)
    assert sorted(e.event.id for e in events) == ["evt-1", "evt-2", "evt-3", "evt-4"]
    assert [e.event.data["tokens"] for e in other.events.list()] == [99999]
    assert client.meters.list_subjects("tokens_total") == ["customer-1", "customer-2"]
    assert client.meters.list_group_by_values("tokens_total", "model") == ["gpt-4o", "gpt-4o-mini"]
    other_result = other.meters.query_json("tokens_total")
    assert [r.value for r in other_result.data] == [1.0]


def test_sdk_auth_errors(live_server, tenant_a, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import openmeter
    from corehttp.exceptions import ClientAuthenticationError, HttpResponseError
    from openmeter.models import Event

    bad = openmeter.Client(endpoint=live_server.url, token="ml_nope")
    with pytest.raises(ClientAuthenticationError):
        bad.meters.list()
    read_only = openmeter.Client(endpoint=live_server.url, token=tenant_a.keys["read"])
    with pytest.raises(HttpResponseError) as exc:
        read_only.events.ingest_event(Event(id="x", source="s", specversion="1.0", type="t", subject="u"))
    assert exc.value.status_code == 403
