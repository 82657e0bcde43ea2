"""Property: for random events and random windows, the query API answers exactly what a brute-force
aggregation over the raw events gives, for every aggregation; before rollups, after rollups, and with
late events (old `time`, ingested after a rollup run) on top."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from metering import services
from metering.jsonpath import as_number
from tests.factories import ApiKeyFactory, MeterFactory, OrganizationFactory
from tests.metering.conftest import ce, post_events

pytestmark = pytest.mark.django_db

AGGS = ["SUM", "COUNT", "UNIQUE_COUNT", "AVG", "MIN", "MAX", "LATEST"]
BASE = datetime(2025, 3, 8, 0, 0, tzinfo=UTC)  # spans the US DST switch (2025-03-09)
SUBJECTS = ["s1", "s2", "s3"]
_org_counter = count()

value_st = st.one_of(
    st.integers(-1000, 1000),
    st.decimals(min_value=-1000, max_value=1000, places=3, allow_nan=False).map(lambda d: str(d)),
    st.sampled_from(["abc", None, True]),
)
event_st = st.fixed_dictionaries(
    {
        "subject": st.sampled_from(SUBJECTS),
        "minute": st.integers(0, 3 * 24 * 60 - 1),
        "second": st.sampled_from([0, 30]),
        "value": value_st,
        "model": st.sampled_from(["a", "b", None]),
    }
)
query_st = st.fixed_dictionaries(
    {
        "from_minute": st.one_of(st.none(), st.integers(-60, 3 * 24 * 60)),
        "length": st.integers(1, 4 * 24 * 60),
        "to_open": st.booleans(),
        "window": st.sampled_from([None, "MINUTE", "HOUR", "DAY"]),
        "tz": st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata"]),
        "group_model": st.booleans(),
        "by_subject": st.booleans(),
        "filter_model": st.sampled_from([None, "a"]),
    }
)


def ev_time(e) -> datetime:
    return BASE + timedelta(minutes=e["minute"], seconds=e["second"])


def window_start(t: datetime, window: str | None, tz: str) -> datetime | None:
    if window is None:
        return None
    local = t.astimezone(ZoneInfo(tz))
    if window == "MINUTE":
        local = local.replace(second=0, microsecond=0)
    elif window == "HOUR":
        local = local.replace(minute=0, second=0, microsecond=0)
    else:
        local = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return local.replace(tzinfo=None).replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)


def brute(events, agg, q, t_from, t_to):
    groups: dict[tuple, list] = defaultdict(list)
    for seq, e in enumerate(events):
        t = ev_time(e)
        if (t_from and t < t_from) or (t_to and t >= t_to):
            continue
        if q["filter_model"] is not None and e["model"] != q["filter_model"]:
            continue
        key = (
            window_start(t, q["window"], q["tz"]),
            e["subject"] if q["by_subject"] else None,
            e["model"] if q["group_model"] else None,
        )
        groups[key].append((t, seq, e["value"]))
    out = {}
    for key, items in groups.items():
        nums = [(t, s, as_number(v)) for t, s, v in items if as_number(v) is not None]
        if agg == "COUNT":
            value = Decimal(len(items))
        elif agg == "UNIQUE_COUNT":
            distinct = {str(v) if not isinstance(v, bool) else "true" for _, _, v in items if v is not None}
            if not distinct:
                continue
            value = Decimal(len(distinct))
        else:
            if not nums:
                continue
            value = numeric_agg(agg, nums)
        out[key] = value
    return out


def numeric_agg(agg: str, nums: list) -> Decimal:
    vals = [n for _, _, n in nums]
    if agg == "SUM":
        return sum(vals, Decimal(0))
    if agg == "AVG":
        return sum(vals, Decimal(0)) / len(vals)
    if agg == "MIN":
        return min(vals)
    if agg == "MAX":
        return max(vals)
    return max(nums, key=lambda x: (x[0], x[1]))[2]  # LATEST: greatest (time, ingestion order)


def api_rows(client, slug, q, t_from, t_to):
    params = [("windowTimeZone", q["tz"])]
    if q["window"]:
        params.append(("windowSize", q["window"]))
    if t_from:
        params.append(("from", t_from.isoformat().replace("+00:00", "Z")))
    if t_to:
        params.append(("to", t_to.isoformat().replace("+00:00", "Z")))
    if q["group_model"]:
        params.append(("groupBy", "model"))
    if q["by_subject"]:
        params.append(("groupBy", "subject"))
    if q["filter_model"]:
        params.append(("filterGroupBy[model]", q["filter_model"]))
    r = client.get(f"/api/v1/meters/{slug}/query?{urlencode(params)}")
    assert r.status_code == 200, r.content
    out = {}
    for d in r.json()["data"]:
        ws = datetime.fromisoformat(d["windowStart"]) if q["window"] else None
        key = (ws, d["subject"], d["groupBy"].get("model") if q["group_model"] else None)
        assert key not in out
        out[key] = d["value"]
    return out


def assert_same(got, want, agg):
    assert set(got) == set(want), (agg, got, want)
    for key, value in want.items():
        assert math.isclose(got[key], float(value), rel_tol=1e-9, abs_tol=1e-9), (agg, key, got[key], value)


@settings(max_examples=25)
@given(
    events=st.lists(event_st, min_size=0, max_size=40),
    late=st.lists(event_st, max_size=10),
    queries=st.lists(query_st, min_size=1, max_size=3),
)
def test_query_equals_brute_force(tenant_a, tenant_b, events, late, queries):
    n = next(_org_counter)
    org = OrganizationFactory(slug=f"prop-{n}", name="prop")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiKeyFactory(organization=org).secret}")
    for agg in AGGS:
        MeterFactory(
            organization=org,
            slug=agg.lower(),
            event_type="t",
            aggregation=agg,
            value_property=None if agg == "COUNT" else "$.v",
            group_by={"model": "$.model"},
        )

    def send(evs, prefix):
        if not evs:
            return
        body = []
        for i, e in enumerate(evs):
            data = {"model": e["model"]} if e["model"] is not None else {}
            if e["value"] is not None:
                data["v"] = e["value"]
            body.append(
                ce(
                    f"{prefix}{i}",
                    subject=e["subject"],
                    type_="t",
                    time=ev_time(e).isoformat().replace("+00:00", "Z"),
                    data=data,
                )
            )
        assert post_events(client, body).status_code == 204

    def check(all_events):
        for q in queries:
            t_from = BASE + timedelta(minutes=q["from_minute"]) if q["from_minute"] is not None else None
            t_to = None if q["to_open"] else (t_from or BASE) + timedelta(minutes=q["length"])
            for agg in AGGS:
                assert_same(
                    api_rows(client, agg.lower(), q, t_from, t_to),
                    brute(all_events, agg, q, t_from, t_to),
                    agg,
                )

    # tenant B ingests the same ids and subjects with huge values into its own meter: must never leak
    MeterFactory(
        organization=tenant_b.org, slug=f"sum-{n}", event_type="t", aggregation="SUM", value_property="$.v"
    )
    post_events(
        tenant_b.client("ingest"),
        [
            ce(
                f"e{i}",
                subject=s,
                type_="t",
                time=BASE.isoformat().replace("+00:00", "Z"),
                data={"v": 10**9, "model": "a"},
            )
            for i, s in enumerate(SUBJECTS)
        ],
    )
    send(events, "e")
    check(events)  # raw only
    services.rollups_advance(organization_id=org.id)
    check(events)  # rollups
    send(late, "late")
    check(events + late)  # rollups + fresh raw (late events in old windows)
    services.rollups_advance(organization_id=org.id)
    check(events + late)
