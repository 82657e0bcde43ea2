"""Add-ons API: versioned like plans, linked to plans with maxQuantity; tenancy."""

import pytest

from tests.catalog.factories import api, make_feature, make_meter, plan_body

ADDON = {
    "key": "extra_seats",
    "name": "Extra seats",
    "currency": "USD",
    "instanceType": "multiple",
    "rateCards": [
        {
            "type": "flat_fee",
            "key": "seat",
            "name": "Seat",
            "billingCadence": "P1M",
            "price": {"type": "flat", "amount": "15"},
        }
    ],
}


@pytest.fixture
def tenants(tenant_a, tenant_b):
    for t in (tenant_a, tenant_b):
        make_meter(t.org)
        make_feature(t, "tokens")
    b = api(tenant_b.client(), "post", "/api/v1/addons", {**ADDON, "key": "globex_addon"})
    assert b.status_code == 201, b.content
    return tenant_a, tenant_b, b.json()


def test_addon_lifecycle_and_plan_link(tenants):
    a, _, _ = tenants
    admin = a.client()
    created = api(admin, "post", "/api/v1/addons", ADDON)
    assert created.status_code == 201, created.content
    addon = created.json()
    assert (addon["version"], addon["status"], addon["instanceType"]) == (1, "draft", "multiple")
    assert api(admin, "post", f"/api/v1/addons/{addon['id']}/publish").json()["status"] == "published"
    assert api(admin, "put", f"/api/v1/addons/{addon['id']}", {**ADDON, "name": "x"}).status_code == 409
    nxt = api(admin, "post", "/api/v1/addons/extra_seats/next")
    assert nxt.status_code == 201 and nxt.json()["version"] == 2

    body = plan_body(addons=[{"addonKey": "extra_seats", "fromPlanPhase": "standard", "maxQuantity": 10}])
    plan = api(admin, "post", "/api/v1/plans", body)
    assert plan.status_code == 201, plan.content
    assert plan.json()["addons"] == [
        {"addonKey": "extra_seats", "fromPlanPhase": "standard", "maxQuantity": 10}
    ]

    bad = plan_body(
        key="bad", addons=[{"addonKey": "extra_seats", "fromPlanPhase": "nope", "maxQuantity": 0}]
    )
    r = api(admin, "post", "/api/v1/plans", bad)
    assert {p["name"] for p in r.json()["invalid_params"]} == {
        "addons[0].fromPlanPhase",
        "addons[0].maxQuantity",
    }


def test_single_instance_addon_max_quantity(tenants):
    a, _, _ = tenants
    api(a.client(), "post", "/api/v1/addons", {**ADDON, "key": "sso", "instanceType": "single"})
    r = api(a.client(), "post", "/api/v1/plans", plan_body(addons=[{"addonKey": "sso", "maxQuantity": 3}]))
    assert r.status_code == 400 and r.json()["invalid_params"][0]["name"] == "addons[0].maxQuantity"


def test_other_organizations_addons_invisible(tenants):
    a, _, b_addon = tenants
    assert api(a.client("read"), "get", "/api/v1/addons").json()["totalCount"] == 0
    assert api(a.client("read"), "get", f"/api/v1/addons/{b_addon['id']}").status_code == 404
    assert api(a.client(), "post", f"/api/v1/addons/{b_addon['id']}/publish").status_code == 404
    r = api(a.client(), "post", "/api/v1/plans", plan_body(addons=[{"addonKey": "globex_addon"}]))
    assert r.status_code == 400
