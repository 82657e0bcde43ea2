"""Plans API: lifecycle (draft -> published -> archived), immutability (409), tenancy, query budgets."""

from decimal import Decimal

import pytest

from catalog.models import PlanVersion
from catalog.selectors import plan_rate_cards, plan_version_get, rate_card_rate
from core.errors import NotFound
from core.models import AuditLog
from tests.catalog.factories import GRADUATED, api, make_feature, make_meter, plan_body


@pytest.fixture
def tenants(tenant_a, tenant_b):
    for t in (tenant_a, tenant_b):
        make_meter(t.org)
        make_feature(t, "tokens")
    # B has a plan of its own that A must never see
    b = api(tenant_b.client(), "post", "/api/v1/plans", plan_body(key="globex_secret", name="Globex secret"))
    assert b.status_code == 201, b.content
    return tenant_a, tenant_b, b.json()


def test_full_lifecycle(tenants):
    a, _, _ = tenants
    admin = a.client("admin")
    created = api(admin, "post", "/api/v1/plans", plan_body())
    assert created.status_code == 201, created.content
    plan = created.json()
    assert (plan["key"], plan["version"], plan["status"]) == ("pro", 1, "draft")
    # stored canonically: flat fee term is explicit, usage cards are in arrears
    cards = plan["phases"][1]["rateCards"]
    assert cards[0]["paymentTerm"] == "in_advance" and cards[1]["paymentTerm"] == "in_arrears"
    assert cards[1]["price"] == {
        **GRADUATED,
        "tiers": [
            {"upToAmount": "1000", "unitPrice": {"type": "unit", "amount": "0.01"}, "flatPrice": None},
            {
                "upToAmount": "10000",
                "unitPrice": {"type": "unit", "amount": "0.005"},
                "flatPrice": {"type": "flat", "amount": "2"},
            },
            {"upToAmount": None, "unitPrice": {"type": "unit", "amount": "0.001"}, "flatPrice": None},
        ],
    }

    # update the draft
    body = plan_body(name="Pro (2026)")
    updated = api(admin, "put", f"/api/v1/plans/{plan['id']}", body)
    assert updated.status_code == 200 and updated.json()["name"] == "Pro (2026)"

    # add a phase and a rate card through the sub-resources
    r = api(
        admin,
        "post",
        f"/api/v1/plans/{plan['id']}/phases",
        {"key": "intro", "name": "Intro", "duration": "P1M"},
    )
    assert r.status_code == 400  # an open-ended phase would be followed by intro: rejected by path
    assert r.json()["invalid_params"][0]["name"] == "phases[1].duration"
    r = api(
        admin,
        "post",
        f"/api/v1/plans/{plan['id']}/phases/standard/rate-cards",
        {
            "type": "flat_fee",
            "key": "support",
            "name": "Support",
            "billingCadence": "P1M",
            "price": {"type": "flat", "amount": "10"},
        },
    )
    assert r.status_code == 201, r.content
    assert [c["key"] for c in r.json()["phases"][1]["rateCards"]] == ["base", "tokens", "support"]
    r = api(admin, "delete", f"/api/v1/plans/{plan['id']}/phases/standard/rate-cards/support")
    assert [c["key"] for c in r.json()["phases"][1]["rateCards"]] == ["base", "tokens"]

    # publish
    published = api(admin, "post", f"/api/v1/plans/{plan['id']}/publish")
    assert published.status_code == 200, published.content
    assert published.json()["status"] == "published" and published.json()["publishedAt"]

    # billing's selector finds it and rates a card with the engine:
    # 5100 tokens, first 100 free -> 5000: 1000 x 0.01 = 10; 2 + 4000 x 0.005 = 22; total 32
    v1 = plan_version_get(organization=a.org, plan_key="pro")
    tokens = next(c for c in plan_rate_cards(plan=v1, phase_key="standard") if c.key == "tokens")
    assert rate_card_rate(tokens, quantity=Decimal(5100)).amount == Decimal(32)

    # next version: a draft copy; publishing it archives v1
    nxt = api(admin, "post", "/api/v1/plans/pro/next")
    assert nxt.status_code == 201
    assert (nxt.json()["version"], nxt.json()["status"]) == (2, "draft")
    assert nxt.json()["phases"] == published.json()["phases"]
    assert api(admin, "post", "/api/v1/plans/pro/next").status_code == 409  # one draft at a time
    assert api(admin, "post", f"/api/v1/plans/{nxt.json()['id']}/publish").status_code == 200
    statuses = dict(
        PlanVersion.objects.filter(organization=a.org, key="pro").values_list("version", "status")
    )
    assert statuses == {1: "archived", 2: "published"}
    assert api(admin, "get", "/api/v1/plans/pro").json()["version"] == 2
    assert api(admin, "get", "/api/v1/plans/pro?version=1").json()["status"] == "archived"

    # archive the published version
    archived = api(admin, "post", f"/api/v1/plans/{nxt.json()['id']}/archive")
    assert archived.json()["status"] == "archived"
    with pytest.raises(NotFound):
        plan_version_get(organization=a.org, plan_key="pro")

    actions = list(
        AuditLog.objects.filter(organization=a.org, object_type="plan", object_id="pro").values_list(
            "action", flat=True
        )
    )
    assert sorted(set(actions)) == sorted(
        {
            "plan.created",
            "plan.updated",
            "plan.rate_card_added",
            "plan.rate_card_removed",
            "plan.published",
            "plan.version_created",
            "plan.archived",
        }
    )


def test_published_version_is_immutable(tenants):
    a, _, _ = tenants
    admin = a.client("admin")
    plan = api(admin, "post", "/api/v1/plans", plan_body()).json()
    api(admin, "post", f"/api/v1/plans/{plan['id']}/publish")
    before = PlanVersion.objects.get(id=plan["id"])
    for method, url, body in [
        ("put", f"/api/v1/plans/{plan['id']}", plan_body(name="Changed")),
        ("post", f"/api/v1/plans/{plan['id']}/phases", {"key": "x", "name": "X"}),
        (
            "post",
            f"/api/v1/plans/{plan['id']}/phases/standard/rate-cards",
            {"type": "flat_fee", "key": "y", "name": "Y"},
        ),
        ("delete", f"/api/v1/plans/{plan['id']}/phases/standard/rate-cards/base", None),
        ("delete", f"/api/v1/plans/{plan['id']}", None),
        ("post", f"/api/v1/plans/{plan['id']}/publish", None),
    ]:
        response = api(admin, method, url, body)
        assert response.status_code == 409, (method, url, response.content)
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["status"] == 409
    after = PlanVersion.objects.get(id=plan["id"])
    assert (after.name, after.phases, after.updated_at) == (before.name, before.phases, before.updated_at)


def test_validation_errors_name_the_full_path(tenants):
    a, _, _ = tenants
    body = plan_body()
    body["phases"][1]["rateCards"][1]["price"] = {
        "type": "tiered",
        "mode": "graduated",
        "tiers": [
            {"upToAmount": "100", "unitPrice": {"type": "unit", "amount": "1"}},
            {"upToAmount": "1000", "unitPrice": {"type": "unit", "amount": "0.5"}},
            {"upToAmount": "50", "unitPrice": {"type": "unit", "amount": 0.1}},
            {"upToAmount": None, "unitPrice": {"type": "unit", "amount": "0.1"}},
        ],
    }
    body["phases"][1]["rateCards"][0]["featureKey"] = "nope"
    body["billingCadence"] = "monthly"
    response = api(a.client("admin"), "post", "/api/v1/plans", body)
    assert response.status_code == 400
    names = {p["name"] for p in response.json()["invalid_params"]}
    assert names == {
        "billingCadence",
        "phases[1].rateCards[0].featureKey",
        "phases[1].rateCards[1].price.tiers[2].upToAmount",
        "phases[1].rateCards[1].price.tiers[2].unitPrice.amount",
    }
    assert not PlanVersion.objects.filter(organization=a.org, key="pro").exists()


def test_publish_requires_phases_and_rate_cards(tenants):
    a, _, _ = tenants
    admin = a.client("admin")
    plan = api(
        admin,
        "post",
        "/api/v1/plans",
        {"key": "empty", "name": "Empty", "currency": "USD", "billingCadence": "P1M"},
    ).json()
    r = api(admin, "post", f"/api/v1/plans/{plan['id']}/publish")
    assert r.status_code == 400 and r.json()["invalid_params"][0]["name"] == "phases"
    assert PlanVersion.objects.get(id=plan["id"]).status == "draft"


def test_duplicate_key_conflicts(tenants):
    a, _, _ = tenants
    assert api(a.client(), "post", "/api/v1/plans", plan_body()).status_code == 201
    assert api(a.client(), "post", "/api/v1/plans", plan_body()).status_code == 409


def test_other_organizations_plans_are_invisible(tenants):
    a, b, b_plan = tenants
    client = a.client("read")
    assert api(client, "get", f"/api/v1/plans/{b_plan['id']}").status_code == 404
    assert api(client, "get", "/api/v1/plans/globex_secret").status_code == 404
    assert api(client, "get", "/api/v1/plans").json()["totalCount"] == 0
    admin = a.client("admin")
    for method, url in [
        ("put", f"/api/v1/plans/{b_plan['id']}"),
        ("post", f"/api/v1/plans/{b_plan['id']}/publish"),
        ("post", f"/api/v1/plans/{b_plan['id']}/next"),
        ("delete", f"/api/v1/plans/{b_plan['id']}"),
    ]:
        assert api(admin, method, url, plan_body() if method == "put" else None).status_code == 404
    assert PlanVersion.objects.get(id=b_plan["id"]).status == "draft"
    # same key in both organizations is fine
    assert api(admin, "post", "/api/v1/plans", plan_body(key="globex_secret")).status_code == 201
    assert api(b.client("read"), "get", "/api/v1/plans").json()["totalCount"] == 1


def test_scopes(tenants):
    a, _, _ = tenants
    assert api(a.client("read"), "post", "/api/v1/plans", plan_body()).status_code == 403
    assert api(a.client("ingest"), "get", "/api/v1/plans").status_code == 403


def test_list_query_budget_is_constant(tenants, django_assert_max_num_queries):
    a, _, _ = tenants
    admin = a.client("admin")
    client = a.client("read")

    def list_once():
        response = api(client, "get", "/api/v1/plans?pageSize=1000")
        assert response.status_code == 200
        return response.json()

    api(admin, "post", "/api/v1/plans", plan_body(key="p0"))
    # auth (key lookup, last-used touch) + count + page; phases and rate cards live on the row
    with django_assert_max_num_queries(4):
        assert list_once()["totalCount"] == 1
    for i in range(1, 15):
        api(admin, "post", "/api/v1/plans", plan_body(key=f"p{i}"))
    with django_assert_max_num_queries(4):
        data = list_once()
    assert data["totalCount"] == 15
    assert all(p["key"] != "globex_secret" for p in data["items"])
