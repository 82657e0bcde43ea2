"""The portal shows a customer only what is theirs: the features of their current subscription (plan and
add-ons) and entitlements, soft limits as such, their billing details; never another plan's features, a
meter by itself, or another organization's data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.entitlements.lifecycle import entitlement_create
from billing.services import customer_update
from metering.services import meter_create
from portal.services import portal_token_create
from tests.catalog.factories import make_feature
from tests.portal.conftest import ingest, make_portal_customer, make_token_meter, subscribe

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def catalog(tenant):
    """Two meters and four features: tokens, gpt_out (tokens filtered), requests, images (other plan)."""
    make_token_meter(tenant)
    meter_create(organization=tenant.org, slug="requests", event_type="request", aggregation="COUNT")
    meter_create(organization=tenant.org, slug="images", event_type="image", aggregation="COUNT")
    make_feature(tenant, key="tokens", meter="tokens")
    make_feature(tenant, key="gpt_out", meter="tokens", filters={"model": "gpt-4o", "type": "output"})
    make_feature(tenant, key="requests", meter="requests")
    make_feature(tenant, key="images", meter="images")


@pytest.fixture
def world(tenant_a, tenant_b, time_machine):
    time_machine.move_to(NOW - timedelta(days=20), tick=False)
    for tenant in (tenant_a, tenant_b):
        catalog(tenant)
    a = make_portal_customer(tenant_a, subjects=("app",))
    other = make_portal_customer(tenant_a, key="cust-2", subjects=("other",))
    b = make_portal_customer(tenant_b, subjects=("app",))
    subscribe(tenant_a, a.customer, feature_keys=["tokens"], addon_feature_keys=["requests"])
    subscribe(tenant_a, other.customer, feature_keys=["images", "gpt_out"], plan_key="studio")
    subscribe(tenant_b, b.customer, feature_keys=["images", "gpt_out", "tokens"], plan_key="globex")
    entitlement_create(
        organization=tenant_a.org,
        customer=a.customer,
        feature_key="tokens",
        type="metered",
        is_soft_limit=True,
        usage_period_interval="MONTH",
        usage_period_anchor=NOW - timedelta(days=20),
        issue_after_reset=Decimal(100),
    )
    customer_update(
        organization=tenant_a.org,
        customer=a.customer,
        billing_address={"line1": "1 Main St", "postalCode": "10115", "city": "Berlin", "country": "DE"},
        tax_ids=[{"type": "eu_vat", "value": "DE123456789"}],
    )
    time_machine.move_to(NOW, tick=False)
    for pc in (a, other, b):  # tokens minted now (they last an hour)
        pc.token = portal_token_create(organization=pc.tenant.org, customer=pc.customer.id)[1]
    ingest(
        tenant_a,
        [
            (
                "acme-app",
                NOW - timedelta(days=2),
                {"tokens": 130, "model": "gpt-4o", "type": "input"},
                "prompt",
            ),
            ("acme-app", NOW - timedelta(days=1), {"path": "/v1"}, "request"),
            ("acme-other", NOW - timedelta(days=1), {"n": 1}, "image"),
        ],
    )
    ingest(
        tenant_b,
        [("globex-app", NOW - timedelta(days=1), {"tokens": 98765, "model": "x", "type": "input"}, "prompt")],
    )
    return a, other, b


def test_home_charts_only_the_features_of_the_customers_plan_and_addons(client, world):
    a, _other, _b = world
    client.get(f"/portal/{a.token}")
    html = client.get("/portal/").content.decode()
    assert "feature=tokens" in html and "feature=requests" in html  # plan item and add-on item
    assert "feature=gpt_out" not in html and "feature=images" not in html  # another plan's features
    assert "/portal/usage/images/" not in html  # no chart for a meter by itself
    assert 'id="plan-features"' in html and "Includes: Requests, Tokens" in html


def test_usage_outside_the_subscription_is_refused(client, world):
    a, _other, _b = world
    client.get(f"/portal/{a.token}")
    for url in (
        "/portal/usage/tokens/?feature=gpt_out",
        "/portal/usage/images/?feature=images",
        "/portal/usage/images/",
        "/portal/usage/tokens/",
    ):
        html = client.get(url, HTTP_HX_REQUEST="true").content.decode()
        assert "No such feature" in html and "<svg" not in html, url
    html = client.get(
        "/portal/usage/tokens/?feature=tokens&window=day", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert 'class="period-total">130<' in html and "98,765" not in html
    html = client.get("/portal/usage/requests/?feature=requests", HTTP_HX_REQUEST="true").content.decode()
    assert 'class="period-total">1<' in html


def test_soft_limit_is_shown_as_such_not_as_zero_left(client, world):
    a, _other, _b = world
    client.get(f"/portal/{a.token}")
    html = client.get("/portal/balances/", HTTP_HX_REQUEST="true").content.decode()
    assert 'id="ent-tokens"' in html
    assert "soft limit" in html and "130 used of 100 included" in html
    assert "0 left" not in html and 'class="balance"' not in html
    assert "usage beyond the included amount is billed as overage" in html


def test_billing_details_are_the_customers_own(client, world):
    a, other, b = world
    client.get(f"/portal/{a.token}")
    html = client.get("/portal/").content.decode()
    assert "1 Main St<br>10115 Berlin<br>DE" in html and "Tax ID: DE123456789 (eu_vat)" in html
    assert other.customer.name not in html and b.customer.name not in html and "Globex" not in html


def test_other_tenants_customer_sees_its_own_plan_only(client, world):
    _a, _other, b = world
    client.get(f"/portal/{b.token}")
    html = client.get("/portal/").content.decode()
    assert "feature=images" in html and "feature=gpt_out" in html and "feature=tokens" in html
    assert "feature=requests" not in html and "Acme" not in html
    html = client.get(
        "/portal/usage/tokens/?feature=tokens&window=day", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert 'class="period-total">98,765<' in html and ">130<" not in html
    assert "No billing address on file" in client.get("/portal/").content.decode()


def test_ended_subscription_and_subject_token(client, tenant_a, world):
    """A customer whose subscription ended sees no charts; a bare-subject token (no customer) keeps seeing
    the meters it is allowed."""
    from billing.models import Subscription

    a, _other, _b = world
    Subscription.objects.filter(customer=a.customer).update(active_to=NOW - timedelta(hours=1))
    from billing.models import Entitlement

    Entitlement.objects.filter(customer=a.customer).update(active_to=NOW - timedelta(hours=1))
    client.get(f"/portal/{a.token}")
    html = client.get("/portal/").content.decode()
    assert "feature=" not in html and "Charts of the metered features of your plan appear here" in html
    _row, token = portal_token_create(
        organization=tenant_a.org, subject="loose-subject", allowed_meter_slugs=["images"]
    )
    bare = client.__class__()
    bare.get(f"/portal/{token}")
    html = bare.get("/portal/").content.decode()
    assert "/portal/usage/images/" in html and "/portal/usage/tokens/" not in html
