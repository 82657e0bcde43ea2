"""GET/POST /api/v1/meters/{idOrSlug}/query and friends: windows, groupBy, filters in every wire form."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import quote

import pytest

from metering import hooks, services
from metering.selectors import meter_query, meter_usage_total
from tests.metering.conftest import ce, post_events

pytestmark = pytest.mark.django_db


@pytest.fixture
def usage(tenant_a, tenant_b, tokens_meter, tokens_meter_b):
    events = [
        ce(
            "1",
            subject="c1",
            time="2025-01-01T10:00:00Z",
            data={"tokens": 100, "model": "gpt-4o", "type": "input"},
        ),
        ce(
            "2",
            subject="c1",
            time="2025-01-01T11:30:00Z",
            data={"tokens": 50, "model": "gpt-4o", "type": "output"},
        ),
        ce(
            "3",
            subject="c1",
            time="2025-01-02T09:00:00Z",
            data={"tokens": 7, "model": "mini", "type": "input"},
        ),
        ce(
            "4",
            subject="c2",
            time="2025-01-01T23:30:00Z",
            data={"tokens": "1000", "model": "gpt-4o", "type": "input"},
        ),
        ce("5", subject="c2", time="2025-01-01T12:00:00Z", data={"tokens": "n/a", "model": "gpt-4o"}),
        ce("6", subject="c1", time="2025-01-01T12:00:00Z", type_="other", data={"tokens": 1}),
    ]
    assert post_events(tenant_a.client("ingest"), events).status_code == 204
    # tenant B: same subjects and ids, other numbers; must never leak into A's answers
    events_b = [ce("1", subject="c1", time="2025-01-01T10:00:00Z", data={"tokens": 5555, "model": "gpt-4o"})]
    assert post_events(tenant_b.client("ingest"), events_b).status_code == 204
    return tokens_meter


def q(tenant, path: str, **kw):
    return tenant.client("read").get(f"/api/v1/meters/tokens/query{path}", **kw)


def test_total_and_by_day_and_by_subject(tenant_a, tenant_b, usage):
    r = q(tenant_a, "")
    assert r.status_code == 200
    assert [row["value"] for row in r.json()["data"]] == [1157.0]
    r = q(
        tenant_a,
        "?from=2025-01-01T00:00:00.000Z&to=2025-01-03T00:00:00.000Z&windowSize=DAY&subject=c1&subject=c2",
    )
    data = r.json()["data"]
    assert [(d["windowStart"], d["windowEnd"], d["subject"], d["value"]) for d in data] == [
        ("2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z", "c1", 150.0),
        ("2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z", "c2", 1000.0),
        ("2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z", "c1", 7.0),
    ]
    assert r.json()["from"] == "2025-01-01T00:00:00Z" and r.json()["windowSize"] == "DAY"
    assert [d["value"] for d in q(tenant_b, "").json()["data"]] == [5555.0]


def test_time_zone_moves_day_boundaries(tenant_a, usage):
    r = q(tenant_a, "?windowSize=DAY&windowTimeZone=Europe%2FBudapest&subject=c2")
    # 23:30Z on Jan 1 is 00:30 on Jan 2 in Budapest
    assert [(d["windowStart"], d["value"]) for d in r.json()["data"]] == [("2025-01-01T23:00:00Z", 1000.0)]


def test_group_by_and_filters_in_every_form(tenant_a, usage):
    r = q(tenant_a, "?groupBy=model&groupBy=type")
    rows = {(d["groupBy"]["model"], d["groupBy"]["type"]): d["value"] for d in r.json()["data"]}
    assert rows == {("gpt-4o", "input"): 1100.0, ("gpt-4o", "output"): 50.0, ("mini", "input"): 7.0}
    deep = q(tenant_a, "?filterGroupBy%5Bmodel%5D=mini").json()["data"]
    repr_form = q(tenant_a, "?filterGroupBy=" + quote("{'model': 'mini'}")).json()["data"]
    adv = q(tenant_a, "?advancedMeterGroupByFilters=" + quote('{"model": {"$in": ["mini"]}}')).json()["data"]
    eq = q(tenant_a, "?advancedMeterGroupByFilters=" + quote('{"model": {"$eq": "mini"}}')).json()["data"]
    assert (
        [d["value"] for d in deep]
        == [d["value"] for d in repr_form]
        == [d["value"] for d in adv]
        == [d["value"] for d in eq]
        == [7.0]
    )
    bad = q(tenant_a, "?advancedMeterGroupByFilters=" + quote('{"model": {"$gt": 1}}'))
    assert bad.status_code == 400
    assert q(tenant_a, "?groupBy=nope").json()["invalid_params"][0]["name"] == "groupBy"


def test_post_query_like_the_sdk(tenant_a, usage):
    body = {
        "from": "2025-01-01T00:00:00Z",
        "windowSize": "DAY",
        "subject": ["c1"],
        "groupBy": ["model"],
        "filterGroupBy": {"model": ["gpt-4o"]},
    }
    r = tenant_a.client("read").post("/api/v1/meters/tokens/query", body, format="json")
    assert r.status_code == 200, r.content
    assert [(d["subject"], d["groupBy"], d["value"]) for d in r.json()["data"]] == [
        ("c1", {"model": "gpt-4o"}, 150.0)
    ]


def test_csv(tenant_a, usage):
    r = q(tenant_a, "?windowSize=DAY&groupBy=model", HTTP_ACCEPT="text/csv")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("text/csv")
    lines = r.content.decode().strip().splitlines()
    assert lines[0] == "window_start,window_end,subject,customer_id,model,value"
    assert lines[1] == "2025-01-01T00:00:00Z,2025-01-02T00:00:00Z,,,gpt-4o,1150"


def test_bad_parameters(tenant_a, usage):
    assert q(tenant_a, "?windowSize=WEEK").status_code == 400
    assert q(tenant_a, "?from=yesterday").json()["invalid_params"][0]["name"] == "from"
    assert q(tenant_a, "?windowTimeZone=Mars%2FBase").status_code == 400
    assert tenant_a.client("read").get("/api/v1/meters/nope/query").status_code == 404
    assert tenant_a.client("ingest").get("/api/v1/meters/tokens/query").status_code == 403


def test_subjects_and_group_values(tenant_a, tenant_b, usage):
    c = tenant_a.client("read")
    assert c.get("/api/v1/meters/tokens/subjects").json() == ["c1", "c2"]
    assert c.get("/api/v1/meters/tokens/group-by/model/values").json() == ["gpt-4o", "mini"]
    services.rollups_advance()
    assert c.get("/api/v1/meters/tokens/group-by/model/values").json() == ["gpt-4o", "mini"]
    assert c.get("/api/v1/meters/tokens/group-by/nope/values").status_code == 404
    assert tenant_b.client("read").get("/api/v1/meters/tokens/subjects").json() == ["c1"]


def test_same_answers_after_rollup_and_with_late_events(tenant_a, usage):
    before = q(tenant_a, "?windowSize=HOUR&groupBy=model&subject=c1&subject=c2").json()["data"]
    services.rollups_advance()
    assert q(tenant_a, "?windowSize=HOUR&groupBy=model&subject=c1&subject=c2").json()["data"] == before
    late = ce("late", subject="c1", time="2025-01-01T10:15:00Z", data={"tokens": 1, "model": "gpt-4o"})
    post_events(tenant_a.client("ingest"), [late])
    after = q(tenant_a, "?windowSize=HOUR&groupBy=model&subject=c1&subject=c2").json()["data"]
    assert after[0]["value"] == before[0]["value"] + 1
    services.rollups_advance()
    assert q(tenant_a, "?windowSize=HOUR&groupBy=model&subject=c1&subject=c2").json()["data"] == after


def test_usage_total_for_billing(tenant_a, usage):
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC)
    assert meter_usage_total(
        organization=tenant_a.org, meter="tokens", subjects=["c1", "c2"], start=start, end=end
    ) == Decimal(1150)
    assert meter_usage_total(
        organization=tenant_a.org,
        meter="tokens",
        subjects=["c1"],
        start=start,
        end=end,
        filters={"type": "output"},
    ) == Decimal(50)
    assert meter_usage_total(
        organization=tenant_a.org, meter="tokens", subjects=["zz"], start=start, end=end
    ) == Decimal(0)


def test_customer_hook(tenant_a, usage):
    def resolver(*, organization, customer_ids, subjects):
        assert organization == tenant_a.org
        table = {"CUST_A": ["c1"], "CUST_B": ["c2"]}
        return {c: table[c] for c in customer_ids or table if c in table}

    installed = hooks.customer_resolver()  # billing registers its own in ready()
    try:
        hooks.set_customer_resolver(None)
        assert q(tenant_a, "?filterCustomerId=CUST_A").status_code == 400  # no resolver: explicit error
        hooks.set_customer_resolver(resolver)
        r = q(tenant_a, "?filterCustomerId=CUST_A&filterCustomerId=CUST_B")
        assert [(d["customerId"], d["value"]) for d in r.json()["data"]] == [
            ("CUST_A", 157.0),
            ("CUST_B", 1000.0),
        ]
        assert q(tenant_a, "?filterCustomerId=NOPE").status_code == 404
        rows = meter_query(organization=tenant_a.org, meter=usage, customers={"X": ["c1", "c2"]})
        assert [(r.customer_id, r.value) for r in rows] == [("X", Decimal(1157))]
    finally:
        hooks.set_customer_resolver(installed)


def test_events_list_explains_uncounted_events(tenant_a, tenant_b, usage):
    post_events(
        tenant_a.client("ingest"),
        [
            ce(
                "1",
                subject="c1",
                time="2025-01-01T10:00:00Z",
                data={"tokens": 999, "model": "gpt-4o", "type": "input"},
            )
        ],
    )
    c = tenant_a.client("read")
    items = c.get("/api/v1/events?limit=100").json()
    by_id = {}
    for item in items:
        by_id.setdefault(item["event"]["id"], []).append(item.get("validationError"))
    assert by_id["2"] == [None]
    assert "not a number" in by_id["5"][0]
    assert "matched no meter" in by_id["6"][0]
    assert by_id["1"][1] is None and by_id["1"][0].startswith("duplicate_conflict")  # newest first
    assert [i["event"]["id"] for i in c.get("/api/v1/events?subject=c2").json()] == ["5", "4"]
    assert [i["event"]["id"] for i in c.get("/api/v1/events?id=3").json()] == ["3"]
    assert len(c.get("/api/v1/events?limit=2").json()) == 2
    assert {i["event"]["id"] for i in c.get("/api/v1/events?from=2025-01-02T00:00:00Z").json()} == {"3"}
    assert [i["event"]["data"]["tokens"] for i in tenant_b.client("read").get("/api/v1/events").json()] == [
        5555
    ]
