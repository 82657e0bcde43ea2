"""The pricing editor (console HTML + htmx) with Django's test client."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from catalog.models import PlanVersion
from core.models import Role
from core.services import membership_set
from tests.catalog.factories import api, make_feature, make_meter, plan_body
from tests.conftest import PASSWORD


@pytest.fixture
def setup(tenant_a, tenant_b):
    for t in (tenant_a, tenant_b):
        make_meter(t.org)
        make_feature(t, "tokens")
    b_plan = api(
        tenant_b.client(), "post", "/api/v1/plans", plan_body(key="globex_plan", name="Globex Secret Plan")
    ).json()
    client = Client()
    assert client.login(username=tenant_a.user.username, password=PASSWORD)
    return tenant_a, tenant_b, client, b_plan


def graduated_form(**extra):
    data = {
        "name": "Tokens",
        "key": "tokens",
        "featureKey": "tokens",
        "billingCadence": "P1M",
        "priceModel": "graduated",
        "tierUpTo": ["1000", "10000", ""],
        "tierUnit": ["0.01", "0.005", "0.001"],
        "tierFlat": ["", "2", ""],
        "entitlement": "metered",
        "usagePeriod": "P1M",
        "isSoftLimit": "on",
        "discountUsage": "100",
    }
    data.update(extra)
    return data


def test_create_plan_add_rate_card_publish(setup):
    a, _, client, _ = setup
    r = client.post(
        "/console/plans/", {"name": "Pro", "key": "pro", "currency": "USD", "billingCadence": "P1M"}
    )
    assert r.status_code == 302
    plan = PlanVersion.objects.get(organization=a.org, key="pro")
    assert plan.status == "draft" and [p["key"] for p in plan.phases] == ["default"]
    page = client.get(r["Location"])
    assert page.status_code == 200 and b"Add rate card" in page.content

    url = "/console/plans/pro/v/1/phases/default/rate-cards/new/"
    assert client.get(url).status_code == 200
    r = client.post(url, graduated_form())
    assert r.status_code == 302, r.content.decode()[:2000]
    plan.refresh_from_db()
    card = plan.phases[0]["rateCards"][0]
    assert card["price"]["tiers"][1] == {
        "upToAmount": "10000",
        "unitPrice": {"type": "unit", "amount": "0.005"},
        "flatPrice": {"type": "flat", "amount": "2"},
    }
    assert card["entitlementTemplate"]["type"] == "metered"

    # preview beside the saved card: 5100 - 100 free = 5000 -> 10 + 2 + 20 = 32.00
    r = client.get(
        "/console/plans/pro/v/1/phases/default/rate-cards/tokens/preview/?quantity=5100",
        HTTP_HX_REQUEST="true",
    )
    assert r.status_code == 200 and b"USD 32.00" in r.content

    # publish confirmation shows what changes, then publish
    r = client.get("/console/plans/pro/v/1/publish/")
    assert r.status_code == 200 and b"first published version" in r.content and b"Tokens" in r.content
    r = client.post("/console/plans/pro/v/1/publish/")
    assert r.status_code == 302
    plan.refresh_from_db()
    assert plan.status == "published"
    # now read-only: the editor refuses and the page says so
    page = client.get("/console/plans/pro/")
    assert b"read-only" in page.content and b"Add rate card" not in page.content
    r = client.post(url, graduated_form(key="other"))
    assert r.status_code == 302
    plan.refresh_from_db()
    assert len(plan.phases[0]["rateCards"]) == 1
    # history on the plan page
    assert b"plan.published" in page.content and b"plan.rate_card_added" in page.content
    # edit as new version, compare
    assert client.post("/console/plans/pro/next/").status_code == 302
    r = client.get("/console/plans/pro/compare/?a=1&b=2")
    assert r.status_code == 200 and b"v1 (published)" in r.content and b"v2 (draft)" in r.content


def test_validation_errors_are_inline_not_500(setup):
    a, _, client, _ = setup
    client.post("/console/plans/", {"name": "Pro", "key": "pro", "currency": "USD", "billingCadence": "P1M"})
    url = "/console/plans/pro/v/1/phases/default/rate-cards/new/"
    bad = graduated_form(tierUpTo=["1000", "500", ""], tierUnit=["0.01", "abc", "0.001"], key="Bad Key")
    r = client.post(url, bad)
    assert r.status_code == 400
    html = r.content.decode()
    assert "Must be greater than the previous tier" in html
    assert "is not a decimal number" in html
    assert "Lowercase letters and digits" in html
    assert PlanVersion.objects.get(organization=a.org, key="pro").phases[0]["rateCards"] == []
    # bad plan creation: inline too
    r = client.post("/console/plans/", {"name": "", "key": "BAD", "currency": "ZZZ", "billingCadence": "P1M"})
    assert r.status_code == 400 and b"plan-key-error" in r.content


def test_htmx_tier_rows_and_form_preview(setup):
    _, _, client, _ = setup
    data = graduated_form()
    r = client.post(
        "/console/plans/-/rate-card-fields/", {**data, "tierAction": "add"}, HTTP_HX_REQUEST="true"
    )
    assert r.status_code == 200 and r.content.decode().count('class="tier-row"') == 4
    assert r["HX-Trigger-After-Settle"] == "price-fields-updated"
    r = client.post(
        "/console/plans/-/rate-card-fields/", {**data, "tierAction": "remove-1"}, HTTP_HX_REQUEST="true"
    )
    assert r.content.decode().count('class="tier-row"') == 2
    r = client.post(
        "/console/plans/-/preview/",
        {**data, "currency": "USD", "previewQuantity": "1100"},
        HTTP_HX_REQUEST="true",
    )
    # 1100 - 100 free = 1000 -> tier 1 only: 1000 x 0.01 = 10.00
    assert b"USD 10.00" in r.content
    r = client.post(
        "/console/plans/-/preview/",
        {**data, "tierUnit": ["x", "", ""], "currency": "USD", "previewQuantity": "5"},
        HTTP_HX_REQUEST="true",
    )
    assert r.status_code == 200 and b"not a decimal number" in r.content


def test_viewer_reads_but_cannot_edit(setup):
    a, _, _, _ = setup
    api(a.client(), "post", "/api/v1/plans", plan_body())
    viewer = get_user_model().objects.create_user(username="viewer", password=PASSWORD)
    membership_set(organization=a.org, user=viewer, role=Role.VIEWER)
    client = Client()
    client.login(username="viewer", password=PASSWORD)
    page = client.get("/console/plans/pro/")
    assert page.status_code == 200 and b"Add rate card" not in page.content
    assert (
        client.post(
            "/console/plans/", {"name": "X", "key": "x", "currency": "USD", "billingCadence": "P1M"}
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/console/plans/pro/v/1/phases/standard/rate-cards/new/", graduated_form(key="x")
        ).status_code
        == 403
    )
    assert not PlanVersion.objects.filter(organization=a.org, key="x").exists()


def test_other_organizations_plans_invisible(setup):
    _, _, client, b_plan = setup
    page = client.get("/console/plans/")
    assert b"Globex Secret Plan" not in page.content
    assert client.get("/console/plans/globex_plan/").status_code == 404
    assert (
        client.get(
            "/console/plans/globex_plan/v/1/phases/standard/rate-cards/tokens/preview/?quantity=1"
        ).status_code
        == 404
    )
    assert client.post("/console/plans/globex_plan/v/1/publish/").status_code == 404
    assert PlanVersion.objects.get(id=b_plan["id"]).status == "draft"
    features = client.get("/console/features/")
    assert features.status_code == 200


def test_plan_list_page_query_budget(setup, django_assert_max_num_queries):
    a, _, client, _ = setup
    api(a.client(), "post", "/api/v1/plans", plan_body(key="p0"))
    with django_assert_max_num_queries(10):
        assert client.get("/console/plans/").status_code == 200
    for i in range(1, 10):
        api(a.client(), "post", "/api/v1/plans", plan_body(key=f"p{i}"))
    with django_assert_max_num_queries(10):
        r = client.get("/console/plans/")
    assert r.content.count(b"/console/plans/p") >= 10


def test_draft_links_to_simulation_with_plan_version_preselected(setup):
    a, _, client, _ = setup
    api(a.client(), "post", "/api/v1/plans", plan_body(key="pro", name="Pro"))
    draft = PlanVersion.objects.get(organization=a.org, key="pro", version=1)
    assert draft.status == "draft"
    page = client.get("/console/plans/pro/").content.decode()
    href = "/console/simulations/new?plan=pro&amp;version=1"
    assert f'id="simulate-link" href="{href}"' in page and "Simulate on past usage" in page
    r = client.get(href.replace("&amp;", "&"))
    assert r.status_code == 200
    assert '<option value="pro:1" selected>' in r.content.decode()
    # a published version is read-only: no simulation link on it
    assert client.post("/console/plans/pro/v/1/publish/").status_code in (200, 302)
    draft.refresh_from_db()
    assert draft.status == "published"
    assert 'id="simulate-link"' not in client.get("/console/plans/pro/?version=1").content.decode()


def test_remove_rate_card_and_phase_from_a_draft_only(setup):
    a, _, client, b_plan = setup
    plan = api(a.client(), "post", "/api/v1/plans", plan_body(key="pro")).json()
    r = client.post("/console/plans/pro/v/1/phases/trial/rate-cards/base/remove/", follow=True)
    assert b"Rate card removed." in r.content
    version = PlanVersion.objects.get(id=plan["id"])
    assert version.phases[0]["rateCards"] == []
    r = client.post("/console/plans/pro/v/1/phases/trial/remove/", follow=True)
    assert b"Phase removed." in r.content
    version.refresh_from_db()
    assert [p["key"] for p in version.phases] == ["standard"]
    # an unknown phase: the domain error is shown, nothing changes
    r = client.post("/console/plans/pro/v/1/phases/nope/remove/", follow=True)
    assert b"Phase removed." not in r.content
    version.refresh_from_db()
    assert [p["key"] for p in version.phases] == ["standard"]
    # published versions are read-only
    assert api(a.client(), "post", f"/api/v1/plans/{plan['id']}/publish", {}).status_code == 200
    r = client.post("/console/plans/pro/v/1/phases/standard/rate-cards/base/remove/", follow=True)
    assert b"read-only" in r.content
    version.refresh_from_db()
    assert [c["key"] for c in version.phases[0]["rateCards"]] == ["base", "tokens"]
    # another organization's plan does not exist here
    assert client.post("/console/plans/globex_plan/v/1/phases/standard/remove/").status_code == 404
    assert len(PlanVersion.objects.get(id=b_plan["id"]).phases) == 2
