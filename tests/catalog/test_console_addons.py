"""Add-ons in the no-code console: list/create, rate cards with the shared editor, publish, link to plans."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from catalog import selectors
from catalog.models import AddonVersion, PlanVersion
from core.models import AuditLog, Role
from core.services import membership_set
from tests.catalog.factories import api, make_feature, make_meter, plan_body
from tests.conftest import PASSWORD

SEATS = {
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
def setup(tenant_a, tenant_b):
    for t in (tenant_a, tenant_b):
        make_meter(t.org)
        make_feature(t, "tokens")
    a_addon = api(tenant_a.client(), "post", "/api/v1/addons", SEATS)
    assert a_addon.status_code == 201, a_addon.content
    b_addon = api(
        tenant_b.client(), "post", "/api/v1/addons", {**SEATS, "key": "globex_addon", "name": "Globex Secret"}
    )
    assert b_addon.status_code == 201, b_addon.content
    client = Client()
    assert client.login(username=tenant_a.user.username, password=PASSWORD)
    return tenant_a, tenant_b, client, b_addon.json()


def usage_card(**extra):
    data = {
        "name": "Extra tokens",
        "key": "tokens",
        "featureKey": "tokens",
        "billingCadence": "P1M",
        "priceModel": "unit",
        "amount": "0.002",
    }
    data.update(extra)
    return data


def test_create_addon_publish_and_link_to_plan(setup):
    a, _, client, _ = setup
    r = client.post(
        "/console/addons/",
        {"name": "Token pack", "key": "token_pack", "currency": "USD", "instanceType": "multiple"},
    )
    assert r.status_code == 302, r.content.decode()[:2000]
    addon = AddonVersion.objects.get(organization=a.org, key="token_pack")
    assert (addon.status, addon.instance_type, addon.rate_cards) == ("draft", "multiple", [])
    page = client.get(r["Location"])
    assert page.status_code == 200 and b"Add rate card" in page.content

    url = "/console/addons/token_pack/v/1/rate-cards/new/"
    form = client.get(url)
    assert form.status_code == 200 and b"Live preview" in form.content and b"Add-ons" in form.content
    r = client.post(url, usage_card())
    assert r.status_code == 302, r.content.decode()[:2000]
    addon.refresh_from_db()
    assert addon.rate_cards[0]["type"] == "usage_based"
    assert addon.rate_cards[0]["price"] == {"type": "unit", "amount": "0.002"}
    # the saved card's preview uses the same engine: 1000 x 0.002 = 2.00
    r = client.get("/console/addons/token_pack/v/1/rate-cards/tokens/preview/?quantity=1000")
    assert r.status_code == 200 and b"USD 2.00" in r.content
    # settings
    r = client.post(
        "/console/addons/token_pack/v/1/settings/",
        {"name": "Token pack XL", "description": "More tokens", "instanceType": "multiple"},
    )
    assert r.status_code == 302
    # publish: confirmation first, then publish
    r = client.get("/console/addons/token_pack/v/1/publish/")
    assert r.status_code == 200 and b"Extra tokens" in r.content and b"Add-ons" in r.content
    assert client.post("/console/addons/token_pack/v/1/publish/").status_code == 302
    addon.refresh_from_db()
    assert (addon.status, addon.name) == ("published", "Token pack XL")
    page = client.get("/console/addons/token_pack/")
    assert b"read-only" in page.content and b"Add rate card" not in page.content
    assert b"addon.published" in page.content and b"addon.rate_card_added" in page.content
    # a published version refuses edits
    assert client.post(url, usage_card(key="other")).status_code == 302
    addon.refresh_from_db()
    assert len(addon.rate_cards) == 1

    # link to a draft plan with max quantity 3
    api(a.client(), "post", "/api/v1/plans", plan_body(key="pro"))
    plan_page = client.get("/console/plans/pro/").content.decode()
    assert 'id="plan-addons"' in plan_page and 'value="token_pack"' in plan_page
    r = client.post("/console/plans/pro/v/1/addons/", {"addonKey": "token_pack", "maxQuantity": "3"})
    assert r.status_code == 302, r.content.decode()[:2000]
    body = api(a.client(), "get", "/api/v1/plans/pro?version=1").json()
    assert body["addons"] == [{"addonKey": "token_pack", "fromPlanPhase": None, "maxQuantity": 3}]
    plan = selectors.plan_get(organization=a.org, id_or_key="pro", version=1)
    assert plan.addons[0]["maxQuantity"] == 3
    assert AuditLog.objects.filter(organization=a.org, action="plan.addon_linked").exists()
    # unlink
    assert client.post("/console/plans/pro/v/1/addons/token_pack/remove/").status_code == 302
    plan.refresh_from_db()
    assert plan.addons == []
    # archive, next version
    assert client.post("/console/addons/token_pack/v/1/archive/").status_code == 302
    assert client.post("/console/addons/token_pack/next/").status_code == 302
    assert AddonVersion.objects.get(organization=a.org, key="token_pack", version=2).status == "draft"


def test_validation_errors_inline_and_nothing_changes(setup):
    a, _, client, _ = setup
    r = client.post("/console/addons/", {"name": "X", "key": "BAD KEY", "currency": "USD"})
    assert r.status_code == 400 and b"addon-key-error" in r.content
    assert not AddonVersion.objects.filter(organization=a.org, key="BAD KEY").exists()
    # a bad rate card on the draft add-on: errors next to the inputs, status 400
    r = client.post("/console/addons/extra_seats/v/1/rate-cards/new/", usage_card(amount="abc", key="Bad"))
    assert r.status_code == 400
    html = r.content.decode()
    assert "is not a decimal number" in html and 'id="err-key"' in html
    cards = AddonVersion.objects.get(organization=a.org, key="extra_seats").rate_cards
    assert [c["key"] for c in cards] == ["seat"]
    # linking: max quantity must be a positive integer, the add-on must exist
    client.post("/console/addons/extra_seats/v/1/publish/")
    api(a.client(), "post", "/api/v1/plans", plan_body(key="pro"))
    before = AuditLog.objects.filter(organization=a.org).count()
    r = client.post("/console/plans/pro/v/1/addons/", {"addonKey": "extra_seats", "maxQuantity": "0"})
    assert r.status_code == 400 and b"err-maxQuantity" in r.content
    r = client.post("/console/plans/pro/v/1/addons/", {"addonKey": "nope", "maxQuantity": "2"})
    assert r.status_code == 400 and b"err-addonKey" in r.content
    assert PlanVersion.objects.get(organization=a.org, key="pro").addons == []
    assert AuditLog.objects.filter(organization=a.org).count() == before


def test_viewer_reads_but_cannot_write(setup):
    a, _, _, _ = setup
    viewer = get_user_model().objects.create_user(username="viewer", password=PASSWORD)
    membership_set(organization=a.org, user=viewer, role=Role.VIEWER)
    client = Client()
    client.login(username="viewer", password=PASSWORD)
    assert client.get("/console/addons/").status_code == 200
    page = client.get("/console/addons/extra_seats/")
    assert page.status_code == 200 and b"Add rate card" not in page.content
    assert client.post("/console/addons/", {"name": "X", "key": "x", "currency": "USD"}).status_code == 403
    assert client.post("/console/addons/extra_seats/v/1/rate-cards/new/", usage_card()).status_code == 403
    assert client.post("/console/addons/extra_seats/v/1/settings/", {"name": "Hacked"}).status_code == 403
    assert client.post("/console/addons/extra_seats/v/1/publish/").status_code == 403
    api(a.client(), "post", "/api/v1/plans", plan_body(key="pro"))
    r = client.post("/console/plans/pro/v/1/addons/", {"addonKey": "extra_seats", "maxQuantity": "3"})
    assert r.status_code == 403
    addon = AddonVersion.objects.get(organization=a.org, key="extra_seats")
    assert (addon.status, addon.name, len(addon.rate_cards)) == ("draft", "Extra seats", 1)
    assert not AddonVersion.objects.filter(organization=a.org, key="x").exists()


def test_other_organizations_addons_invisible(setup):
    _, _, client, b_addon = setup
    page = client.get("/console/addons/")
    assert b"extra_seats" in page.content and b"Globex Secret" not in page.content
    assert client.get("/console/addons/globex_addon/").status_code == 404
    assert client.get(f"/console/addons/{b_addon['id']}/").status_code == 404
    assert client.get("/console/addons/globex_addon/v/1/rate-cards/seat/preview/").status_code == 404
    assert client.post("/console/addons/globex_addon/v/1/publish/").status_code == 404
    assert client.post("/console/addons/globex_addon/next/").status_code == 404
    assert AddonVersion.objects.get(id=b_addon["id"]).status == "draft"


def test_addon_list_query_budget(setup, django_assert_max_num_queries):
    a, _, client, _ = setup
    with django_assert_max_num_queries(10):
        assert client.get("/console/addons/").status_code == 200
    for i in range(10):
        api(a.client(), "post", "/api/v1/addons", {**SEATS, "key": f"addon_{i}"})
    with django_assert_max_num_queries(10):
        r = client.get("/console/addons/")
    assert r.content.count(b"/console/addons/addon_") == 10
