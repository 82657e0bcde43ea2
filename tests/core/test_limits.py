"""core/limits.py and where the API applies it: every refusal is a 400 problem+json naming the field, and
nothing is written (each reproduction here answered 500, and often saved the row, before the limits)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from billing import services as billing_services
from billing.models import Customer, Grant, Subscription
from catalog.models import PlanVersion
from core import limits
from core.models import AuditLog
from metering.models import Meter
from tests.billing.real_catalog import publish_pro_plan

# --- pure rules ------------------------------------------------------------------------------------


def nested(levels: int, open_: str = "[", close: str = "]") -> bytes:
    return (open_ * levels + close * levels).encode()


@pytest.mark.parametrize(
    ("body", "deeper"),
    [
        (nested(32), False),
        (nested(33), True),
        (b'{"a":' * 32 + b"1" + b"}" * 32, False),
        (b'{"a":' * 33 + b"1" + b"}" * 33, True),
        (nested(950), True),
        (b'["' + b"[" * 100 + b'"]', False),  # brackets inside a string are text
        (b'["\\"' + b"[" * 100 + b'"]', False),  # after an escaped quote, still inside the string
        (b'["\\\\"' + b",[" * 40 + b"]" * 40 + b"]", True),  # an escaped backslash closes the string
        (b"[" * 40, False),  # malformed: the parser names it
    ],
)
def test_json_depth_is_judged_on_the_bytes(body, deeper):
    assert limits.json_depth_exceeds(body) is deeper


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (Decimal("999999999999999999.999999999999"), None),
        (Decimal("1e18"), "must be less than 1e18 in absolute value"),
        (Decimal("-1e18"), "must be less than 1e18 in absolute value"),
        (Decimal("1" * 38), "must be less than 1e18 in absolute value"),
        (Decimal("0.0000000000001"), "at most 12 decimal places"),
        (Decimal("1.500000000000000"), None),
        (float("inf"), "must be a finite number"),
        (Decimal("NaN"), "must be a finite number"),
        ("12.5", None),
        ("abc", "must be a number"),
        (True, "must be a number"),
    ],
)
def test_amounts(value, problem):
    assert limits.number_problem(value) == problem


def test_times():
    assert limits.time_problem(datetime(1970, 1, 1, tzinfo=UTC)) is None
    assert limits.time_problem(datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC)) is None
    for bad in (
        datetime(2100, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=15))),  # before year 1 in UTC
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-15))),  # after 9999 in UTC
    ):
        assert limits.time_problem(bad) == "must be between 1970-01-01T00:00:00Z and 2099-12-31T23:59:59Z"
    now = datetime(2026, 1, 1, tzinfo=UTC)
    latest = now + timedelta(seconds=300)
    assert limits.event_time_problem(latest, latest=latest) is None
    assert "in the future" in limits.event_time_problem(latest + timedelta(seconds=1), latest=latest)


def test_json_problems_name_every_path():
    value = {"a": {"b": ["x\x00y", 1e400]}, "c": 10**27, "ok": 1.5}
    assert list(limits.json_problems(value)) == [
        ("a.b[0]", "must not contain a NUL character (\\u0000)"),
        ("a.b[1]", "must be a finite number"),
        ("c", "must be less than 1e26 in absolute value"),
    ]


# --- the API ---------------------------------------------------------------------------------------


def problem_names(response) -> dict[str, str]:
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    return {p["name"]: p["reason"] for p in response.json()["invalid_params"]}


@pytest.fixture
def subscribed(tenant_a, tenant_b):
    """A: the Pro plan, customer acme with a subscription from 2026-01-31; B: its own plan and customer."""
    for tenant in (tenant_a, tenant_b):
        publish_pro_plan(tenant.org)
        billing_services.customer_create(
            organization=tenant.org, name="Acme", key="acme", subject_keys=["s-1"]
        )
    r = tenant_a.client().post(
        "/api/v1/subscriptions",
        {"customerKey": "acme", "plan": {"key": "pro"}, "activeFrom": "2026-01-31T00:00:00Z"},
        format="json",
    )
    assert r.status_code == 201, r.content
    return r.json()["id"]


def snapshot(org) -> tuple:
    return (
        list(Meter.objects.filter(organization=org).values_list("slug", flat=True).order_by("slug")),
        list(Subscription.objects.filter(organization=org).values_list("id", "plan_version", "active_to")),
        Customer.objects.filter(organization=org).count(),
        Grant.objects.filter(organization=org).count(),
        PlanVersion.objects.filter(organization=org).count(),
        AuditLog.objects.filter(organization=org).count(),
    )


@pytest.mark.django_db
def test_meter_with_event_from_before_year_1_is_refused_and_not_saved(tenant_a, tenant_b, subscribed):
    before, before_b = snapshot(tenant_a.org), snapshot(tenant_b.org)
    r = tenant_a.client().post(
        "/api/v1/meters",
        {
            "slug": "calls",
            "eventType": "call",
            "aggregation": "COUNT",
            "eventFrom": "0001-01-01T00:00:00+15:00",
        },
        format="json",
    )
    assert problem_names(r) == {
        "eventFrom": "eventFrom must be between 1970-01-01T00:00:00Z and 2099-12-31T23:59:59Z."
    }
    assert snapshot(tenant_a.org) == before and snapshot(tenant_b.org) == before_b
    assert tenant_a.client("read").get("/api/v1/meters").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    "timing", ["9999-12-31T23:59:59Z", "1900-01-01T00:00:00Z", "0001-01-01T00:00:00+15:00"]
)
def test_subscription_change_at_an_absurd_time_is_refused_and_not_saved(
    tenant_a, tenant_b, subscribed, timing
):
    before, before_b = snapshot(tenant_a.org), snapshot(tenant_b.org)
    r = tenant_a.client().post(
        f"/api/v1/subscriptions/{subscribed}/change",
        {"plan": {"key": "pro"}, "timing": timing},
        format="json",
    )
    assert list(problem_names(r)) == ["timing"]
    assert snapshot(tenant_a.org) == before and snapshot(tenant_b.org) == before_b
    listed = tenant_a.client("read").get("/api/v1/subscriptions")
    assert listed.status_code == 200 and listed.json()["totalCount"] == 1
    assert tenant_b.client("read").get("/api/v1/subscriptions").json()["totalCount"] == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"activeFrom": "9999-12-31T23:59:59Z"}, "activeFrom"),
        ({"billingAnchor": "2100-01-01T00:00:00Z"}, "billingAnchor"),
    ],
)
def test_subscription_create_at_an_absurd_time_is_refused(tenant_a, tenant_b, subscribed, body, field):
    billing_services.customer_create(
        organization=tenant_a.org, name="Other", key="other", subject_keys=["s-2"]
    )
    before = snapshot(tenant_a.org)
    r = tenant_a.client().post(
        "/api/v1/subscriptions", {"customerKey": "other", "plan": {"key": "pro"}, **body}, format="json"
    )
    assert list(problem_names(r)) == [field]
    assert snapshot(tenant_a.org) == before


GRANTS = "/api/v2/customers/acme/entitlements/tokens/grants"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "1" * 38}, "amount"),
        ({"amount": "1" * 25}, "amount"),
        ({"amount": "1e400"}, "amount"),
        ({"amount": "10", "expiration": {"duration": "DAY", "count": 10**12}}, "expiration.count"),
        ({"amount": "10", "expiration": {"duration": "YEAR", "count": 101}}, "expiration.count"),
        ({"amount": "10", "effectiveAt": "9999-12-31T23:59:59Z"}, "effectiveAt"),
        ({"amount": "10", "minRolloverAmount": "1e30"}, "minRolloverAmount"),
    ],
)
def test_grant_amounts_counts_and_times_are_bounded(tenant_a, tenant_b, subscribed, body, field):
    before, before_b = snapshot(tenant_a.org), snapshot(tenant_b.org)
    r = tenant_a.client().post(GRANTS, body, format="json")
    assert list(problem_names(r)) == [field]
    assert snapshot(tenant_a.org) == before and snapshot(tenant_b.org) == before_b
    value = tenant_a.client("read").get("/api/v2/customers/acme/entitlements/tokens/value")
    assert value.status_code == 200 and value.json()["balance"] == 1000


@pytest.mark.django_db
def test_a_bounded_grant_is_accepted(tenant_a, tenant_b, subscribed):
    r = tenant_a.client().post(
        GRANTS,
        {"amount": "999999999999999999.5", "expiration": {"duration": "YEAR", "count": 100}},
        format="json",
    )
    assert r.status_code == 201, r.content
    assert Grant.objects.get(organization=tenant_a.org).amount == Decimal("999999999999999999.5")
    assert not Grant.objects.filter(organization=tenant_b.org).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/v1/customers", {"name": "n", "key": "k", "metadata": {"note": "a\x00b"}}, "metadata.note"),
        ("/api/v1/customers", {"name": "n", "key": "k", "timezone": "Mars/Olympus"}, "timezone"),
        ("/api/v1/customers", '{"name": "n", "key": "k", "metadata": {"x": 1e400}}', "metadata.x"),
        ("/api/v1/customers", '{"name": "n", "key": "k", "x": NaN}', "body"),
        (
            "/api/v1/plans",
            json.dumps(
                {"key": "p2", "name": "P", "currency": "USD", "billingCadence": "P99999999999D", "phases": []}
            ),
            "billingCadence",
        ),
        (
            "/api/v1/meters",
            {"slug": "m", "eventType": "x", "aggregation": "COUNT", "eventFrom": "2100-01-01T00:00:00Z"},
            "eventFrom",
        ),
        (
            "/api/v1/plans",
            {
                "key": "huge",
                "name": "Huge",
                "currency": "USD",
                "billingCadence": "P1M",
                "phases": [
                    {
                        "key": "default",
                        "name": "Default",
                        "rateCards": [
                            {
                                "type": "usage_based",
                                "key": "tokens",
                                "name": "Tokens",
                                "featureKey": "tokens",
                                "billingCadence": "P1M",
                                "price": {"type": "unit", "amount": "1" + "0" * 25},
                            }
                        ],
                    }
                ],
            },
            "phases[0].rateCards[0].price.amount",
        ),
    ],
)
def test_bodies_the_limits_refuse(tenant_a, tenant_b, subscribed, url, body, field):
    before, before_b = snapshot(tenant_a.org), snapshot(tenant_b.org)
    if isinstance(body, str):
        r = tenant_a.client().generic("POST", url, body, content_type="application/json")
    else:
        r = tenant_a.client().post(url, body, format="json")
    assert field in problem_names(r) or (field == "body" and r.json()["title"] == "Malformed request body")
    assert snapshot(tenant_a.org) == before and snapshot(tenant_b.org) == before_b


@pytest.mark.django_db
@pytest.mark.parametrize("expires_in", ["P99999999999D", 10**20, "9" * 30])
def test_portal_token_lifetimes_beyond_any_date_are_refused(tenant_a, tenant_b, subscribed, expires_in):
    from portal.models import PortalToken

    r = tenant_a.client().post(
        "/api/v1/portal/tokens", {"customerId": "acme", "expiresIn": expires_in}, format="json"
    )
    assert list(problem_names(r)) == ["expiresIn"]
    assert not PortalToken.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/customers/a%00b", "path"),
        ("/api/v1/meters/tokens_total/query?subject=a%00b", "subject"),
        ("/api/v1/events?subject=" + "x" * 3000, "subject"),
        ("/api/v1/meters/tokens_total/query?from=9999-12-31T23:59:59Z", "from"),
        ("/api/v1/meters/tokens_total/query?windowSize=DAY&windowTimeZone=Mars/Olympus", "windowTimeZone"),
        ("/api/v2/customers/acme/entitlements/tokens/value?time=9999-12-31T23:59:59Z", "time"),
    ],
)
def test_paths_and_query_strings_the_limits_refuse(tenant_a, subscribed, path, field):
    r = tenant_a.client("read").get(path)
    assert field in problem_names(r)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"subject": {"a": 1}}, "subject"),
        ({"groupBy": [1, 2]}, "groupBy"),
        ({"windowSize": ["DAY"]}, "windowSize"),
        ({"windowTimeZone": 5}, "windowTimeZone"),
        ({"filterGroupBy": {"model": {"$in": 5}}}, "filterGroupBy.model"),
        ({"filterGroupBy": {"model": [{"x": 1}]}}, "filterGroupBy.model"),
        ({"from": "2100-01-01T00:00:00Z"}, "from"),
    ],
)
def test_query_bodies_with_wrong_json_types(tenant_a, subscribed, body, field):
    r = tenant_a.client("read").post("/api/v1/meters/tokens_total/query", body, format="json")
    assert field in problem_names(r)


def test_console_paths_with_nul_are_a_plain_400(client):
    r = client.get("/console/meters/%00/edit/")
    assert r.status_code == 400 and r["Content-Type"].startswith("text/plain")


@pytest.mark.django_db
def test_api_bodies_are_bounded_in_bytes_and_string_length(tenant_a, tenant_b):
    client = tenant_a.client()
    huge = json.dumps({"name": "n", "key": "k", "metadata": {"a": "x" * (1024 * 1024)}})
    r = client.generic("POST", "/api/v1/customers", huge, content_type="application/json")
    assert (r.status_code, r["Content-Type"], r.json()["limit"]) == (413, "application/problem+json", 1048576)
    r = client.post(
        "/api/v1/customers", {"name": "n", "key": "k", "metadata": {"a": "x" * 65537}}, format="json"
    )
    assert problem_names(r) == {"metadata.a": "at most 65536 characters"}
    assert not Customer.objects.exists()
    r = client.post(
        "/api/v1/customers", {"name": "n", "key": "k", "metadata": {"a": "x" * 65536}}, format="json"
    )
    assert r.status_code == 201
    assert list(Customer.objects.values_list("organization_id", flat=True)) == [tenant_a.org.id]


@pytest.mark.django_db
def test_too_many_query_parameters(tenant_a):
    r = tenant_a.client("read").get("/api/v1/events?" + "&".join(f"p{i}=1" for i in range(1001)))
    assert problem_names(r) == {"query": "at most 1000 parameters"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("from=0001-01-01T00:00:00%2B15:00", "between 1970"),
        ("to=9999-12-31T23:59:59-15:00", "between 1970"),
        ("from=2025-02-30T00:00:00Z", "RFC 3339"),
    ],
)
def test_portal_meter_query_times_are_bounded(tenant_a, tenant_b, query, reason):
    from rest_framework.test import APIClient

    from tests.portal.conftest import make_portal_customer, make_token_meter

    make_token_meter(tenant_a)
    portal = make_portal_customer(tenant_a)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {portal.token}")
    r = client.get(f"/api/v1/portal/meters/tokens/query?{query}")
    [(name, text)] = problem_names(r).items()
    assert name in ("from", "to") and reason in text
