"""Meter tools in the console: value paths are relative to data (`$.data.x` refused with the fix, console
and API), the path tester, archive with a check of the features that read the meter, and the meter
explorer (the API's query as a page); the event log flags subjects no customer has. Another organization's
meters and usage never show."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from billing.services import customer_create
from catalog.services import feature_create, feature_delete
from core.models import AuditLog
from metering import services
from metering.models import Meter
from tests.factories import MeterFactory
from tests.metering.conftest import ce, post_events

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def console(tenant) -> Client:
    c = Client()
    c.force_login(tenant.user)
    c.get("/console/")  # the first console request stores the organization in the session
    return c


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def test_data_prefixed_paths_are_refused_with_the_fix(tenant_a, tenant_b):
    c = console(tenant_a)
    r = c.post(
        "/console/meters/new/",
        {
            "slug": "tokens",
            "event_type": "prompt",
            "aggregation": "SUM",
            "value_property": "$.data.tokens",
            "group_by": "model=$.data.model",
        },
        **HTMX,
    )
    html = r.content.decode()
    assert "write $.tokens, not $.data.tokens" in html and "model: " in html and "write $.model" in html
    assert "`" not in html[html.index('id="meter-form-card"') :]  # no Markdown backticks in messages
    r = tenant_a.client("admin").post(
        "/api/v1/meters",
        {"slug": "tokens", "eventType": "prompt", "aggregation": "SUM", "valueProperty": "$.data.tokens"},
        format="json",
    )
    assert r.status_code == 400
    assert r.json()["invalid_params"] == [
        {
            "name": "valueProperty",
            "reason": "paths are read inside the event's data: write $.tokens, not $.data.tokens",
        }
    ]
    assert not Meter.objects.filter(slug="tokens").exists()


def test_path_tester_reads_a_pasted_event(tenant_a, tenant_b):
    c = console(tenant_a)
    sample = ce("e1", data={"tokens": 1200, "model": "gpt-4o", "usage": {"type": "output"}})
    r = c.post(
        "/console/meters/try-paths/",
        {
            "sample": json.dumps(sample),
            "aggregation": "SUM",
            "value_property": "$.tokens",
            "group_by": "model=$.model\ntype=$.usage.type\nregion=$.region",
        },
        **HTMX,
    )
    html = r.content.decode()
    assert r.status_code == 200 and "<html" not in html
    row = lambda name: html[html.index(f'id="reading-{name}"') :].split("</tr>")[0]  # noqa: E731
    assert '<td class="mono found">1200</td>' in row("value") and ">ok<" in row("value")
    assert '<td class="mono found">gpt-4o</td>' in row("model")
    assert '<td class="mono found">output</td>' in row("type")
    assert "nothing at this path" in row("region")
    # the data alone works too; $.data.x explains the fix; text is not a number
    r = c.post(
        "/console/meters/try-paths/",
        {"sample": json.dumps({"tokens": "lots"}), "aggregation": "SUM", "value_property": "$.data.tokens"},
        **HTMX,
    )
    assert "write $.tokens, not $.data.tokens" in r.content.decode()
    r = c.post(
        "/console/meters/try-paths/",
        {"sample": json.dumps({"tokens": "lots"}), "aggregation": "SUM", "value_property": "$.tokens"},
        **HTMX,
    )
    assert "not a number, so the meter would not count this event" in r.content.decode()
    r = c.post("/console/meters/try-paths/", {"sample": "{nope", "value_property": "$.tokens"}, **HTMX)
    assert "Not valid JSON" in r.content.decode()


def test_path_tester_on_an_existing_meter_uses_its_value_path(
    tenant_a, tenant_b, tokens_meter, tokens_meter_b
):
    c = console(tenant_a)
    r = c.post(
        "/console/meters/try-paths/",
        {
            "sample": json.dumps({"tokens": 7, "model": "m"}),
            "meter": tokens_meter.id,
            "group_by": "model=$.model",
        },
        **HTMX,
    )
    assert '<td class="mono">$.tokens</td>' in r.content.decode() and ">7<" in r.content.decode()
    r = c.post("/console/meters/try-paths/", {"sample": "{}", "meter": tokens_meter_b.id}, **HTMX)
    assert r.status_code == 404


def test_archive_is_refused_while_a_feature_reads_the_meter(tenant_a, tenant_b, tokens_meter, tokens_meter_b):
    feature_create(organization=tenant_a.org, key="ai_tokens", name="AI tokens", meter_slug="tokens")
    c = console(tenant_a)
    page = c.get(f"/console/meters/{tokens_meter.id}/archive/").content.decode()
    assert 'id="archive-blocked"' in page and "ai_tokens" in page and 'id="archive-form"' not in page
    r = c.post(f"/console/meters/{tokens_meter.id}/archive/")
    assert r.status_code == 409
    tokens_meter.refresh_from_db()
    assert tokens_meter.deleted_at is None
    feature_delete(organization=tenant_a.org, id_or_key="ai_tokens")
    page = c.get(f"/console/meters/{tokens_meter.id}/archive/").content.decode()
    assert 'id="archive-form"' in page
    r = c.post(f"/console/meters/{tokens_meter.id}/archive/")
    assert r.status_code == 302
    tokens_meter.refresh_from_db()
    assert tokens_meter.deleted_at is not None
    assert AuditLog.objects.filter(organization=tenant_a.org, action="meter.deleted").count() == 1
    assert "meter-tokens" not in c.get("/console/meters/").content.decode()
    # the other organization's meter of the same slug is untouched and unreachable from here
    assert c.post(f"/console/meters/{tokens_meter_b.id}/archive/").status_code == 404
    tokens_meter_b.refresh_from_db()
    assert tokens_meter_b.deleted_at is None


@pytest.fixture
def usage(tenant_a, tenant_b, tokens_meter, tokens_meter_b):
    rows = [
        (
            "a1",
            TODAY - timedelta(days=2, hours=-3),
            "cust-1",
            {"tokens": 100, "model": "gpt-4o", "type": "input"},
        ),
        (
            "a2",
            TODAY - timedelta(days=2, hours=-5),
            "cust-1",
            {"tokens": 50, "model": "mini", "type": "input"},
        ),
        (
            "a3",
            TODAY - timedelta(days=1, hours=-1),
            "cust-2",
            {"tokens": 30, "model": "gpt-4o", "type": "output"},
        ),
    ]
    post_events(tenant_a.client("ingest"), [ce(i, time=iso(t), subject=s, data=d) for i, t, s, d in rows])
    post_events(
        tenant_b.client("ingest"),
        [
            ce(
                "b1",
                time=iso(TODAY - timedelta(days=1)),
                data={"tokens": 98765, "model": "gpt-4o", "type": "input"},
            )
        ],
    )
    services.rollups_advance(organization_id=tenant_a.org.id)
    return tokens_meter


def test_explorer_shows_the_same_numbers_as_the_api(tenant_a, tenant_b, usage):
    c = console(tenant_a)
    html = c.get("/console/meters/tokens/").content.decode()
    assert 'id="explore-total">180<' in html and "98765" not in html and "98,765" not in html
    day1, day2 = (
        (TODAY - timedelta(days=2)).strftime("%Y-%m-%d"),
        (TODAY - timedelta(days=1)).strftime("%Y-%m-%d"),
    )
    assert f'<tr><td>{day1} 00:00</td><td class="num">150</td></tr>' in html
    assert f'<tr><td>{day2} 00:00</td><td class="num">30</td></tr>' in html
    html = c.get(
        "/console/meters/tokens/",
        {"group_by": ["model"], "filters": "type=input", "date_from": day1, "date_to": day2},
        **HTMX,
    ).content.decode()
    assert "<html" not in html and 'id="explore-total">150<' in html
    assert '<th class="num">gpt-4o</th><th class="num">mini</th>' in html
    assert (
        f'<tr><td>{day1} 00:00</td><td class="num">100</td><td class="num">50</td><td class="num">150</td></tr>'
        in html
    )
    assert "groupBy=model" in html and "filterGroupBy%5Btype%5D=input" in html
    api = (
        tenant_a.client("read")
        .get(
            "/api/v1/meters/tokens/query",
            {
                "from": f"{day1}T00:00:00Z",
                "to": iso(TODAY + timedelta(days=1)),
                "windowSize": "DAY",
                "groupBy": "model",
                "filterGroupBy[type]": "input",
            },
        )
        .json()
    )
    assert sorted((d["groupBy"]["model"], d["value"]) for d in api["data"]) == [("gpt-4o", 100), ("mini", 50)]
    html = c.get("/console/meters/tokens/", {"subject": "cust-2"}).content.decode()
    assert 'id="explore-total">30<' in html
    html = c.get("/console/meters/tokens/", {"filters": "nope=1"}).content.decode()
    assert "Write dimension=value with one of model, type." in html
    assert c.get("/console/meters/does-not-exist/").status_code == 404


def test_meter_pages_within_budget_and_constant(tenant_a, tenant_b, usage):
    c = console(tenant_a)
    urls = [
        "/console/meters/tokens/",
        "/console/meters/tokens/?group_by=model&group_by=subject&window=HOUR",
        f"/console/meters/{usage.id}/edit/",
        f"/console/meters/{usage.id}/archive/",
    ]

    def counts() -> list[int]:
        out = []
        for url in urls:
            with CaptureQueriesContext(connection) as ctx:
                assert c.get(url).status_code == 200, url
            out.append(len(ctx.captured_queries))
        return out

    small = counts()
    post_events(
        tenant_a.client("ingest"),
        [
            ce(
                f"m{i}",
                time=iso(TODAY - timedelta(days=i % 20, hours=-(i % 12))),
                subject=f"s{i % 7}",
                data={"tokens": i, "model": f"m{i % 4}", "type": "input"},
            )
            for i in range(200)
        ],
    )
    services.rollups_advance(organization_id=tenant_a.org.id)
    for i in range(5):
        feature_create(organization=tenant_a.org, key=f"f{i}", name=f"F{i}", meter_slug="tokens")
    big = counts()
    assert small == big and max(big) <= 10, (small, big)


def test_event_log_marks_partly_counted_events_as_such(tenant_a, tenant_b, tokens_meter):
    MeterFactory(
        organization=tenant_a.org,
        slug="latency",
        event_type="prompt",
        aggregation="MAX",
        value_property="$.ms",
    )
    post_events(
        tenant_a.client("ingest"),
        [ce("p1", data={"tokens": 5, "model": "m"}), ce("p2", type_="other", data={"x": 1})],
    )
    post_events(tenant_b.client("ingest"), [ce("b1", data={"tokens": 5})])
    html = console(tenant_a).get("/console/events/").content.decode()
    p1 = html[html.index("app/p1") :].split("</tr>")[0]
    assert '<span class="badge amber">partly counted</span>' in p1 and "meter latency: $.ms is missing" in p1
    assert "badge red" not in p1
    p2 = html[html.index("app/p2") :].split("</tr>")[0]
    assert '<span class="badge red">not counted</span>' in p2 and "matched no meter" in p2
    assert "app/b1" not in html


def test_event_log_filters_by_period(tenant_a, tenant_b, tokens_meter):
    day = lambda n: (TODAY - timedelta(days=n)).strftime("%Y-%m-%d")  # noqa: E731
    post_events(
        tenant_a.client("ingest"),
        [
            ce("old", time=iso(TODAY - timedelta(days=5, hours=-2)), data={"tokens": 1}),
            ce("mid", time=iso(TODAY - timedelta(days=3, hours=-2)), data={"tokens": 2}),
            ce("new", time=iso(TODAY - timedelta(days=1, hours=-2)), data={"tokens": 3}),
        ],
    )
    post_events(tenant_b.client("ingest"), [ce("b-mid", time=iso(TODAY - timedelta(days=3, hours=-2)))])
    c = console(tenant_a)
    html = c.get("/console/events/", {"date_from": day(4), "date_to": day(2)}).content.decode()
    assert "app/mid" in html and "app/old" not in html and "app/new" not in html and "b-mid" not in html
    html = c.get(
        "/console/events/", {"date_from": day(3), "date_to": day(3)}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "app/mid" in html and "<html" not in html
    html = c.get("/console/events/", {"date_from": day(30), "date_to": day(20)}).content.decode()
    assert "No events match these filters." in html


def test_event_log_flags_unknown_subjects_and_filters_them(
    tenant_a, tenant_b, tokens_meter, django_assert_max_num_queries
):
    customer_create(organization=tenant_a.org, name="Known", key="known", subject_keys=["known-1"])
    # tenant B owns "stranger": that must not make it known in tenant A
    customer_create(organization=tenant_b.org, name="B", key="b", subject_keys=["stranger"])
    post_events(
        tenant_a.client("ingest"),
        [
            ce("k1", subject="known-1", data={"tokens": 1}),
            ce("u1", subject="stranger", data={"tokens": 2}),
        ],
    )
    post_events(tenant_b.client("ingest"), [ce("b1", subject="stranger", data={"tokens": 3})])
    c = console(tenant_a)
    with django_assert_max_num_queries(12) as first:
        html = c.get("/console/events/").content.decode()
    known = html[html.index("app/k1") :].split("</tr>")[0]
    unknown = html[html.index("app/u1") :].split("</tr>")[0]
    assert "unknown subject" not in known
    assert 'class="badge amber unknown-subject"' in unknown
    assert "app/b1" not in html
    html = c.get("/console/events/", {"unknown_subject": "1"}, HTTP_HX_REQUEST="true").content.decode()
    assert "app/u1" in html and "app/k1" not in html and "<html" not in html
    # constant in rows: 30 more events on 30 more unknown subjects cost no query more
    post_events(
        tenant_a.client("ingest"),
        [ce(f"x{i}", subject=f"s{i}", data={"tokens": i}) for i in range(30)],
    )
    with CaptureQueriesContext(connection) as second:
        html = c.get("/console/events/", {"unknown_subject": "1"}).content.decode()
    assert len(second.captured_queries) <= len(first.captured_queries)
    assert html.count('class="badge amber unknown-subject"') == 31
    # B sees its own event, and "stranger" is B's customer's subject there
    html_b = console(tenant_b).get("/console/events/").content.decode()
    assert "app/b1" in html_b and "app/u1" not in html_b and "unknown-subject" not in html_b
