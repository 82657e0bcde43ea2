"""Which layer refuses what in a catalog document: the serializer's declared fields check the shape the
schema describes (types, required fields, enums, the price union by `type`, nested lists), the catalog's
rules check the raw document (floats, decimals, references, cross-field rules); one 400 names every
problem of both once, by its full path. The console and the Lago import keep answering their own errors."""

import copy
import json

import pytest
from django.test import Client

from catalog.api.serializers import PlanInput, RateCardSerializer
from catalog.models import PlanVersion
from core.errors import flatten_errors
from tests.catalog.factories import api, make_feature, make_meter
from tests.catalog.factories import plan_body as shared_plan_body
from tests.conftest import PASSWORD


@pytest.fixture
def tenants(tenant_a, tenant_b):
    for t in (tenant_a, tenant_b):
        make_meter(t.org)
        make_feature(t, "tokens")
    make_feature(tenant_b, "globex_only")  # B's feature: A's documents cannot reference it
    return tenant_a, tenant_b


def refused(response):
    """The problem's invalid_params as {name: reason}, after checking each name comes once."""
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    params = response.json()["invalid_params"]
    names = [p["name"] for p in params]
    assert len(names) == len(set(names)), names
    return {p["name"]: p["reason"] for p in params}


def shape_problems(serializer_class, body):
    """What the serializer's fields alone refuse (no database, no catalog rules)."""
    serializer = serializer_class(data=body)
    return (
        {} if serializer.is_valid() else {e["name"]: e["reason"] for e in flatten_errors(serializer.errors)}
    )


def plan_body(**overrides):
    """factories.plan_body, deep-copied: the tests below change its nested (shared) price."""
    return copy.deepcopy(shared_plan_body(**overrides))


def tokens_card(body):
    return body["phases"][1]["rateCards"][1]


CARD = "phases[1].rateCards[1]"  # the tokens card's path


def test_a_wrong_type_in_a_nested_rate_card_is_refused_by_the_serializer(tenants):
    a, _ = tenants
    body = plan_body()
    tokens_card(body)["name"] = 5
    # a boolean entitlement ignores isSoftLimit in the catalog's rules; the schema says boolean
    tokens_card(body)["entitlementTemplate"] = {"type": "boolean", "isSoftLimit": "yes"}
    expected = {f"{CARD}.name", f"{CARD}.entitlementTemplate.isSoftLimit"}
    assert set(shape_problems(PlanInput, body)) == expected
    problems = refused(api(a.client(), "post", "/api/v1/plans", body))
    assert set(problems) == expected
    assert problems[f"{CARD}.entitlementTemplate.isSoftLimit"] == "Must be a valid boolean."
    assert not PlanVersion.objects.filter(organization=a.org).exists()


def test_an_unknown_price_type_is_named_once(tenants):
    a, _ = tenants
    body = plan_body()
    tokens_card(body)["price"] = {"type": "bogus", "amount": "1"}
    assert shape_problems(PlanInput, body) == {
        f"{CARD}.price.type": "Must be one of: flat, unit, tiered, package, dynamic, percentage."
    }
    assert list(refused(api(a.client(), "post", "/api/v1/plans", body))) == [f"{CARD}.price.type"]


def test_the_price_union_checks_the_fields_of_its_type(tenants):
    a, _ = tenants
    body = plan_body()
    tokens_card(body)["price"] = {"type": "package", "amount": "5"}  # quantityPerPackage missing
    assert shape_problems(PlanInput, body) == {f"{CARD}.price.quantityPerPackage": "This field is required."}
    tokens_card(body)["price"] = {"type": "tiered", "mode": "stepped", "tiers": [{"unitPrice": "1"}]}
    expected = {f"{CARD}.price.mode", f"{CARD}.price.tiers[0].unitPrice"}
    assert set(shape_problems(PlanInput, body)) == expected
    assert set(refused(api(a.client(), "post", "/api/v1/plans", body))) == expected


def test_a_missing_name_is_refused_once(tenants):
    a, _ = tenants
    body = plan_body()
    del body["name"]
    assert shape_problems(PlanInput, body) == {"name": "This field is required."}
    assert refused(api(a.client(), "post", "/api/v1/plans", body)) == {"name": "This field is required."}


def test_floats_are_refused_on_the_raw_value(tenants):
    """The serializer does not turn 0.1 into "0.1": the catalog's rules see the float and refuse it."""
    a, _ = tenants
    body = plan_body()
    tokens_card(body)["price"]["tiers"][0]["unitPrice"]["amount"] = 0.1
    problems = refused(api(a.client(), "post", "/api/v1/plans", body))
    path = "phases[1].rateCards[1].price.tiers[0].unitPrice.amount"
    assert problems == {path: 'Must be a decimal string such as "0.5", not a JSON number with a fraction.'}
    # a whole number is read as the catalog reads it
    tokens_card(body)["price"]["tiers"][0]["unitPrice"]["amount"] = 1
    created = api(a.client(), "post", "/api/v1/plans", body)
    assert created.status_code == 201, created.content
    assert created.json()["phases"][1]["rateCards"][1]["price"]["tiers"][0]["unitPrice"]["amount"] == "1"


def test_every_problem_of_both_layers_at_once(tenants):
    a, _ = tenants
    body = plan_body(key="Not A Key", billingCadence="monthly")
    tokens_card(body)["featureKey"] = "globex_only"  # B's feature is unknown to A (catalog rules)
    del tokens_card(body)["entitlementTemplate"]  # (it would need a feature too)
    tokens_card(body)["discounts"] = {"usage": {"quantity": 2.5}}  # float (both layers: named once)
    body["phases"][0]["rateCards"][0]["taxBehavior"] = "sometimes"  # enum (both layers: named once)
    body["phases"][0]["metadata"] = {"owner": 7}  # not a string map (both layers: named once)
    body["phases"][0]["description"] = ["not", "text"]  # a JSON type (both layers)
    problems = refused(api(a.client(), "post", "/api/v1/plans", body))
    assert set(problems) == {
        "key",
        "billingCadence",
        "phases[1].rateCards[1].featureKey",
        "phases[1].rateCards[1].discounts.usage.quantity",
        "phases[0].rateCards[0].taxBehavior",
        "phases[0].metadata",
        "phases[0].description",
    }
    assert problems["phases[1].rateCards[1].featureKey"] == "No feature with key 'globex_only'."
    assert problems["phases[0].metadata"] == "Must be an object of string values."
    assert not PlanVersion.objects.filter(organization=a.org).exists()


def test_a_plan_update_names_a_changed_key_with_the_other_problems(tenants):
    a, _ = tenants
    plan = api(a.client(), "post", "/api/v1/plans", plan_body()).json()
    body = plan_body(key="other", currency=978)
    problems = refused(api(a.client(), "put", f"/api/v1/plans/{plan['id']}", body))
    assert problems["key"] == "A plan's key cannot change."
    assert set(problems) == {"key", "currency"}
    assert PlanVersion.objects.get(id=plan["id"]).currency == "USD"


def test_addon_bodies_are_checked_by_their_fields(tenants):
    a, _ = tenants
    addon = {
        "key": "seats",
        "name": "Seats",
        "currency": "USD",
        "instanceType": "many",
        "rateCards": {"type": "flat_fee"},
    }
    problems = refused(api(a.client(), "post", "/api/v1/addons", addon))
    assert set(problems) == {"instanceType", "rateCards"}


def test_a_rate_card_or_phase_alone_is_named_under_its_own_path(tenants):
    a, _ = tenants
    plan = api(a.client(), "post", "/api/v1/plans", plan_body()).json()
    card = {
        "type": "usage_based",
        "key": "calls",
        "name": 5,
        "featureKey": "globex_only",
        "billingCadence": "P1M",
        "price": {"type": "unit"},
    }
    assert set(shape_problems(RateCardSerializer, card)) == {"name", "price.amount"}
    url = f"/api/v1/plans/{plan['id']}/phases/standard/rate-cards"
    problems = refused(api(a.client(), "post", url, card))
    assert set(problems) == {"rateCard.name", "rateCard.featureKey", "rateCard.price.amount"}
    problems = refused(api(a.client(), "post", f"/api/v1/plans/{plan['id']}/phases", {"key": "x"}))
    assert set(problems) == {"phase.name"}
    # a phase update may leave fields out (it is merged into the phase); those it sends are checked
    url = f"/api/v1/plans/{plan['id']}/phases/trial"
    assert refused(api(a.client(), "put", url, {"duration": 14})) == {"phase.duration": "Not a valid string."}
    assert api(a.client(), "put", url, {"name": "Free trial"}).status_code == 200
    assert refused(api(a.client(), "post", url.rsplit("/", 1)[0], [])) == {
        "body": "The body must be a JSON object."
    }


def test_the_console_editor_answers_its_own_errors(tenants):
    """The console builds documents from its form and hands them to the same catalog rules."""
    a, _ = tenants
    client = Client()
    assert client.login(username=a.user.username, password=PASSWORD)
    client.post("/console/plans/", {"name": "Pro", "key": "pro", "currency": "USD", "billingCadence": "P1M"})
    r = client.post(
        "/console/plans/pro/v/1/phases/default/rate-cards/new/",
        {
            "name": "Tokens",
            "key": "tokens",
            "featureKey": "tokens",
            "billingCadence": "P1M",
            "priceModel": "unit",
            "amount": "abc",
        },
    )
    assert r.status_code == 400 and r["Content-Type"].startswith("text/html")
    assert "is not a decimal number" in r.content.decode()
    assert PlanVersion.objects.get(organization=a.org, key="pro").phases[0]["rateCards"] == []


def test_the_lago_import_answers_in_lagos_shape(tenants):
    a, b = tenants
    c = a.client()

    def lago(path, body):
        return c.post(f"/lago/api/v1/{path}", data=json.dumps(body), content_type="application/json")

    metric = {"name": "Calls", "code": "calls", "aggregation_type": "count_agg"}
    metric_id = lago("billable_metrics", {"billable_metric": metric}).json()["billable_metric"]["lago_id"]
    charge = {"billable_metric_id": metric_id, "charge_model": "standard", "properties": {"amount": "x"}}
    plan = {"name": "Basic", "code": "basic", "interval": "monthly", "amount_currency": "USD"}
    plan.update(amount_cents=1000, charges=[charge])
    r = lago("plans", {"plan": plan})
    assert r.status_code == 422 and not r["Content-Type"].startswith("application/problem+json")
    assert r.json()["code"] == "validation_errors"
    assert r.json()["error_details"] == {"charges[0].properties.amount": ["invalid_amount"]}
    assert not PlanVersion.objects.filter(organization__in=[a.org, b.org]).exists()
