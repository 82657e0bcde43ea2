"""Bad input on the Lago path answers in Lago's error shape (`{"status", "error", "code", "error_details"}`),
422 with the bad fields, 404 `<object>_not_found`, never 500, and stores nothing. Organization B's objects
(same codes and ids) are invisible to A."""

from __future__ import annotations

import json
from typing import Any

import pytest

from billing.models import Customer, Subscription
from catalog.models import Feature, PlanVersion
from invoicing.models import CustomerCredit
from lago.models import SubscriptionExternalId
from metering.models import Meter

V1 = "/lago/api/v1"


def post(client, path: str, body: Any, method: str = "post"):
    return getattr(client, method)(f"{V1}/{path}", data=json.dumps(body), content_type="application/json")


def invalid(response, details: dict[str, list[str]]) -> None:
    assert response.status_code == 422, response.content
    assert response.json() == {
        "status": 422,
        "error": "Unprocessable Entity",
        "code": "validation_errors",
        "error_details": details,
    }


def not_found(response, code: str) -> None:
    assert response.status_code == 404, response.content
    assert response.json() == {"status": 404, "error": "Not Found", "code": code}


def counts(org) -> tuple[int, ...]:
    return tuple(
        m.objects.filter(organization=org).count()
        for m in (Meter, Feature, PlanVersion, Customer, Subscription, SubscriptionExternalId, CustomerCredit)
    )


@pytest.fixture
def b_world(tenant_b):
    """B's own metric, plan, customer `cust-1` and subscription `sub-1`."""
    c = tenant_b.client()
    metric = post(
        c,
        "billable_metrics",
        {"billable_metric": {"name": "Calls", "code": "calls", "aggregation_type": "count_agg"}},
    )
    assert metric.status_code == 200, metric.content
    charge = {
        "billable_metric_id": metric.json()["billable_metric"]["lago_id"],
        "charge_model": "standard",
        "properties": {"amount": "1"},
    }
    plan = {
        "name": "Basic",
        "code": "basic",
        "interval": "monthly",
        "amount_cents": 1000,
        "amount_currency": "USD",
        "charges": [charge],
    }
    assert post(c, "plans", {"plan": plan}).status_code == 200
    assert post(c, "customers", {"customer": {"external_id": "cust-1", "currency": "USD"}}).status_code == 200
    sub = {"external_customer_id": "cust-1", "plan_code": "basic", "external_id": "sub-1"}
    assert post(c, "subscriptions", {"subscription": sub}).status_code == 200
    return tenant_b


def test_authentication_and_routes(tenant_a, b_world):
    anonymous = tenant_a.client()
    anonymous.credentials()
    r = anonymous.get(f"{V1}/customers")
    assert (r.status_code, r.json()) == (
        401,
        {"status": 401, "error": "Unauthorized", "code": "unauthorized"},
    )
    r = post(tenant_a.client("read"), "customers", {"customer": {"external_id": "x"}})
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")
    not_found(tenant_a.client().get(f"{V1}/no_such_thing"), "not_found")
    r = post(tenant_a.client(), "customers", {}, method="patch")
    assert (r.status_code, r.json()["code"]) == (405, "method_not_allowed")
    r = tenant_a.client().post(f"{V1}/customers", data="{not json", content_type="application/json")
    assert (r.status_code, r.json()["code"]) == (400, "bad_request")
    r = post(tenant_a.client(), "customers", {"external_id": "no envelope"})
    assert (r.status_code, r.json()["code"]) == (400, "bad_request")
    invalid(tenant_a.client().get(f"{V1}/customers?per_page=0"), {"per_page": ["invalid_value"]})
    assert counts(tenant_a.org) == (0, 0, 0, 0, 0, 0, 0)


def test_billable_metric_errors(tenant_a, b_world):
    c = tenant_a.client()
    invalid(
        post(c, "billable_metrics", {"billable_metric": {"field_name": "x"}}),
        {
            "code": ["value_is_mandatory"],
            "name": ["value_is_mandatory"],
            "aggregation_type": ["value_is_invalid"],
        },
    )
    invalid(
        post(
            c,
            "billable_metrics",
            {
                "billable_metric": {
                    "name": "W",
                    "code": "w",
                    "aggregation_type": "weighted_sum_agg",
                    "field_name": "v",
                }
            },
        ),
        {"aggregation_type": ["not_supported"]},
    )
    invalid(
        post(
            c,
            "billable_metrics",
            {"billable_metric": {"name": "S", "code": "API-Calls", "aggregation_type": "sum_agg"}},
        ),
        {"code": ["invalid_format"], "field_name": ["value_is_mandatory"]},
    )
    invalid(
        post(
            c,
            "billable_metrics",
            {
                "billable_metric": {
                    "name": "R",
                    "code": "r",
                    "aggregation_type": "count_agg",
                    "recurring": True,
                    "filters": "x",
                }
            },
        ),
        {"recurring": ["not_supported"], "filters": ["invalid_value"]},
    )
    assert counts(tenant_a.org) == (0, 0, 0, 0, 0, 0, 0)
    ok = post(
        c,
        "billable_metrics",
        {"billable_metric": {"name": "Calls", "code": "calls", "aggregation_type": "count_agg"}},
    )
    assert ok.status_code == 200  # B's `calls` does not collide
    invalid(
        post(
            c,
            "billable_metrics",
            {"billable_metric": {"name": "Calls", "code": "calls", "aggregation_type": "count_agg"}},
        ),
        {"code": ["value_already_exist"]},
    )
    not_found(c.get(f"{V1}/billable_metrics/nope"), "billable_metric_not_found")
    assert [m["code"] for m in c.get(f"{V1}/billable_metrics").json()["billable_metrics"]] == ["calls"]


def test_plan_errors(tenant_a, b_world):
    c = tenant_a.client()
    b_metric = b_world.client().get(f"{V1}/billable_metrics/calls").json()["billable_metric"]["lago_id"]
    base = {"name": "P", "code": "p", "interval": "monthly", "amount_cents": 100, "amount_currency": "USD"}
    invalid(
        post(
            c,
            "plans",
            {"plan": {**base, "interval": "daily", "amount_cents": 4900.5, "amount_currency": "ZZZ"}},
        ),
        {
            "interval": ["value_is_invalid"],
            "amount_currency": ["value_is_invalid"],
            "amount_cents": ["invalid_amount"],
        },
    )
    invalid(
        post(c, "plans", {"plan": {**base, "minimum_commitment": {"amount_cents": 100}}}),
        {"minimum_commitment": ["not_supported"]},
    )
    # B's metric id is unknown here.
    charge = {"billable_metric_id": b_metric, "charge_model": "standard", "properties": {"amount": "1"}}
    invalid(
        post(c, "plans", {"plan": {**base, "charges": [charge]}}),
        {"charges[0].billable_metric_id": ["billable_metric_not_found"]},
    )
    mine = post(
        c,
        "billable_metrics",
        {"billable_metric": {"name": "Calls", "code": "calls", "aggregation_type": "count_agg"}},
    )
    metric = mine.json()["billable_metric"]["lago_id"]
    bad_charges = [
        {
            "billable_metric_id": metric,
            "charge_model": "graduated",
            "properties": {
                "graduated_ranges": [
                    {"from_value": 0, "to_value": 10, "per_unit_amount": "1", "flat_amount": "0"},
                    {"from_value": 11, "to_value": 5, "per_unit_amount": "x", "flat_amount": "0"},
                ]
            },
        },
        {
            "billable_metric_id": metric,
            "charge_model": "package",
            "code": "pkg",
            "properties": {"amount": "1", "package_size": 0},
        },
        {
            "billable_metric_id": metric,
            "charge_model": "percentage",
            "code": "pct",
            "properties": {
                "rate": "1",
                "per_transaction_min_amount": "5",
                "per_transaction_max_amount": "0.5",
                "free_units_per_events": 1.5,
            },
        },
        {
            "billable_metric_id": metric,
            "charge_model": "standard",
            "code": "adv",
            "pay_in_advance": "yes",
            "properties": {"amount": "1"},
        },
    ]
    invalid(
        post(c, "plans", {"plan": {**base, "charges": bad_charges}}),
        {
            "charges[0].properties.graduated_ranges[1].to_value": ["invalid_graduated_ranges"],
            "charges[0].properties.graduated_ranges[1].per_unit_amount": ["invalid_amount"],
            "charges[1].properties.package_size": ["invalid_package_size"],
            "charges[2].properties.per_transaction_max_amount": ["invalid_value"],
            "charges[2].properties.free_units_per_events": ["invalid_value"],
            "charges[3].pay_in_advance": ["invalid_value"],
        },
    )
    assert PlanVersion.objects.filter(organization=tenant_a.org).count() == 0
    not_found(c.get(f"{V1}/plans/basic"), "plan_not_found")  # B's plan


def test_customer_subscription_and_event_errors(tenant_a, b_world):
    c = tenant_a.client()
    invalid(post(c, "customers", {"customer": {"name": "No id"}}), {"external_id": ["value_is_mandatory"]})
    invalid(
        post(c, "customers", {"customer": {"external_id": "c", "currency": "ZZZ"}}),
        {"currency": ["value_is_invalid"]},
    )
    invalid(
        post(c, "customers", {"customer": {"external_id": "c", "timezone": "Mars/Base"}}),
        {"timezone": ["invalid_timezone"]},
    )
    not_found(c.get(f"{V1}/customers/cust-1"), "customer_not_found")  # B's customer
    sub = {"external_customer_id": "cust-1", "plan_code": "basic", "external_id": "sub-1"}
    not_found(post(c, "subscriptions", {"subscription": sub}), "customer_not_found")
    invalid(
        post(
            c, "subscriptions", {"subscription": {**sub, "billing_time": "weekly", "subscription_at": "soon"}}
        ),
        {"billing_time": ["value_is_invalid"], "subscription_at": ["invalid_date"]},
    )
    not_found(c.get(f"{V1}/subscriptions/sub-1"), "subscription_not_found")
    not_found(
        c.get(f"{V1}/customers/cust-1/current_usage?external_subscription_id=sub-1"), "customer_not_found"
    )

    ingest = tenant_a.client("ingest")
    invalid(
        post(ingest, "events", {"event": {"code": "calls", "timestamp": "yesterday", "properties": [1]}}),
        {
            "transaction_id": ["value_is_mandatory"],
            "external_subscription_id": ["value_is_mandatory"],
            "timestamp": ["invalid_format"],
            "properties": ["invalid_value"],
        },
    )
    far = {"transaction_id": "t", "external_subscription_id": "s", "code": "calls", "timestamp": 4000000000}
    invalid(post(ingest, "events", {"event": far}), {"timestamp": ["invalid_value"]})
    many = [{"transaction_id": f"t{i}", "external_subscription_id": "s", "code": "calls"} for i in range(101)]
    invalid(post(ingest, "events/batch", {"events": many}), {"events": ["too_many_events"]})
    invalid(
        post(ingest, "events/batch", {"events": [many[0], {"code": "calls"}]}),
        {
            "events[1].transaction_id": ["value_is_mandatory"],
            "events[1].external_subscription_id": ["value_is_mandatory"],
        },
    )
    not_found(c.get(f"{V1}/events/t0"), "event_not_found")
    not_found(c.get(f"{V1}/invoices/01ARZ3NDEKTSV4RRFFQ69G5FAV"), "invoice_not_found")
    invalid(
        post(
            c,
            "wallets",
            {"wallet": {"external_customer_id": "cust-1", "rate_amount": "2", "granted_credits": "-1"}},
        ),
        {
            "rate_amount": ["not_supported"],
            "granted_credits": ["invalid_amount"],
        },
    )
    not_found(
        post(c, "wallets", {"wallet": {"external_customer_id": "cust-1", "granted_credits": "5"}}),
        "customer_not_found",
    )
    b_wallet = b_world.client().get(f"{V1}/customers/cust-1").json()["customer"]["lago_id"]
    not_found(c.get(f"{V1}/wallets/{b_wallet}"), "wallet_not_found")
    assert counts(tenant_a.org) == (0, 0, 0, 0, 0, 0, 0)
    assert counts(b_world.org) == (1, 1, 1, 1, 1, 1, 0)


JUNK: list[Any] = [None, [], "x", 0, 1.5, True, {}, {"a": {"b": [None]}}]
FIELDS = {
    "billable_metric": [
        "name",
        "code",
        "aggregation_type",
        "field_name",
        "filters",
        "recurring",
        "expression",
    ],
    "plan": [
        "name",
        "code",
        "interval",
        "amount_cents",
        "amount_currency",
        "pay_in_advance",
        "trial_period",
        "charges",
        "bill_charges_monthly",
        "minimum_commitment",
        "description",
    ],
    "customer": [
        "external_id",
        "name",
        "email",
        "currency",
        "timezone",
        "city",
        "country",
        "tax_identification_number",
        "legal_name",
    ],
    "subscription": [
        "external_customer_id",
        "plan_code",
        "external_id",
        "subscription_at",
        "billing_time",
        "ending_at",
        "plan_overrides",
    ],
    "event": [
        "transaction_id",
        "external_subscription_id",
        "external_customer_id",
        "code",
        "timestamp",
        "properties",
    ],
    "wallet": [
        "external_customer_id",
        "rate_amount",
        "paid_credits",
        "granted_credits",
        "expiration_at",
        "priority",
        "currency",
    ],
    "wallet_transaction": ["wallet_id", "paid_credits", "granted_credits", "voided_credits"],
}
PATHS = {
    "billable_metric": "billable_metrics",
    "plan": "plans",
    "customer": "customers",
    "subscription": "subscriptions",
    "event": "events",
    "wallet": "wallets",
    "wallet_transaction": "wallet_transactions",
}


def test_no_input_causes_a_500(tenant_a, b_world):
    """Every field of every write set to values of the wrong kind (alone, on top of a valid-looking base),
    whole bodies of the wrong kind, and charges of every model with junk properties: 4xx, never 5xx."""
    c = tenant_a.client()
    post(c, "customers", {"customer": {"external_id": "cust-1", "currency": "USD"}})
    metric = post(
        c,
        "billable_metrics",
        {"billable_metric": {"name": "Calls", "code": "calls", "aggregation_type": "count_agg"}},
    )
    metric_id = metric.json()["billable_metric"]["lago_id"]
    base = {
        "billable_metric": {"name": "N", "code": "n", "aggregation_type": "sum_agg", "field_name": "v"},
        "plan": {
            "name": "P",
            "code": "p",
            "interval": "monthly",
            "amount_cents": 100,
            "amount_currency": "USD",
        },
        "customer": {"external_id": "cust-9"},
        "subscription": {"external_customer_id": "cust-1", "plan_code": "p", "external_id": "s"},
        "event": {"transaction_id": "t", "external_subscription_id": "s", "code": "calls"},
        "wallet": {"external_customer_id": "cust-1", "granted_credits": "1"},
        "wallet_transaction": {"wallet_id": "nope", "granted_credits": "1"},
    }
    statuses = set()
    for root, fields in FIELDS.items():
        for junk in JUNK:
            r = post(c, PATHS[root], {root: junk})
            statuses.add(r.status_code)
            assert r.status_code < 500, (root, junk, r.content)
            for name in fields:
                r = post(c, PATHS[root], {root: {**base[root], name: junk}})
                statuses.add(r.status_code)
                assert r.status_code < 500, (root, name, junk, r.content)
    for model in ("standard", "graduated", "volume", "package", "percentage", "dynamic", None, 3):
        bad_ranges = {
            "graduated_ranges": JUNK,
            "volume_ranges": [{"from_value": "a"}],
            "amount": [],
            "package_size": "x",
            "rate": {},
            "free_units": -1,
        }
        for props in [*JUNK, bad_ranges]:
            charge = {"billable_metric_id": metric_id, "charge_model": model, "properties": props}
            r = post(c, "plans", {"plan": {**base["plan"], "charges": [charge, "not a charge"]}})
            assert r.status_code in (400, 422), (model, props, r.content)
        for junk in JUNK:  # charge filters of the wrong kind, at every level
            for filters in (junk, [junk], [{"values": junk, "properties": {}}], [{"values": {"k": junk}}]):
                charge = {"billable_metric_id": metric_id, "charge_model": model, "filters": filters}
                r = post(c, "plans", {"plan": {**base["plan"], "charges": [charge]}})
                assert r.status_code in (400, 422), (model, filters, r.content)
    for junk in JUNK:
        r = post(c, "events/batch", {"events": [junk]})
        assert r.status_code == 422, r.content
        r = c.get(f"{V1}/customers/cust-1/current_usage", {"external_subscription_id": str(junk)})
        assert r.status_code == 404, r.content
    assert 500 not in statuses and max(statuses) < 500


def test_deleting_metrics_and_plans(tenant_a, b_world):
    c = tenant_a.client()
    calls = post(
        c,
        "billable_metrics",
        {"billable_metric": {"name": "Calls", "code": "calls", "aggregation_type": "count_agg"}},
    )
    post(
        c,
        "billable_metrics",
        {"billable_metric": {"name": "Spare", "code": "spare", "aggregation_type": "count_agg"}},
    )
    charge = {
        "billable_metric_id": calls.json()["billable_metric"]["lago_id"],
        "charge_model": "standard",
        "properties": {"amount": "1"},
    }
    plan = {
        "name": "Basic",
        "code": "basic",
        "interval": "monthly",
        "amount_currency": "USD",
        "charges": [charge],
    }
    assert post(c, "plans", {"plan": plan}).status_code == 200

    gone = c.delete(f"{V1}/billable_metrics/spare")
    assert (gone.status_code, gone.json()["billable_metric"]["code"]) == (200, "spare")
    not_found(c.get(f"{V1}/billable_metrics/spare"), "billable_metric_not_found")
    assert list(
        Meter.objects.filter(organization=tenant_a.org, deleted_at__isnull=True).values_list(
            "slug", flat=True
        )
    ) == ["calls"]
    assert not Feature.objects.filter(organization=tenant_a.org, key="spare").exists()
    invalid(c.delete(f"{V1}/billable_metrics/calls"), {"billable_metric": ["used_by_plans"]})
    not_found(c.delete(f"{V1}/billable_metrics/spare"), "billable_metric_not_found")

    archived = c.delete(f"{V1}/plans/basic")
    assert (archived.status_code, archived.json()["plan"]["code"]) == (200, "basic")
    not_found(c.get(f"{V1}/plans/basic"), "plan_not_found")
    assert list(PlanVersion.objects.filter(organization=tenant_a.org).values_list("status", flat=True)) == [
        "archived"
    ]
    # B's namesakes are untouched.
    assert b_world.client().get(f"{V1}/plans/basic").status_code == 200
    assert b_world.client().get(f"{V1}/billable_metrics/calls").status_code == 200


def test_one_live_subscription_per_customer(tenant_a, b_world):
    from billing.models import CustomerSubject

    b = b_world.client()
    before = (
        counts(b_world.org),
        sorted(
            CustomerSubject.objects.filter(organization=b_world.org).values_list("subject_key", flat=True)
        ),
    )
    r = post(
        b,
        "subscriptions",
        {"subscription": {"external_customer_id": "cust-1", "plan_code": "basic", "external_id": "sub-2"}},
    )
    assert (r.status_code, r.json()["code"], list(r.json()["error_details"])) == (
        422,
        "validation_errors",
        ["customer_id"],
    )
    after = (
        counts(b_world.org),
        sorted(
            CustomerSubject.objects.filter(organization=b_world.org).values_list("subject_key", flat=True)
        ),
    )
    assert (
        after == before == ((1, 1, 1, 1, 1, 1, 0), ["cust-1", "sub-1"])
    )  # nothing changed, no subject added
    assert counts(tenant_a.org) == (0, 0, 0, 0, 0, 0, 0)
