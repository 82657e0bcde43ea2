"""Console pages: customer list (search, current plan, constant queries), detail, assign/change/cancel."""

from datetime import UTC, datetime

import pytest
from django.test import Client

from billing import services
from billing.models import Subscription
from tests.billing.conftest import pro_plan
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def login(tenant) -> Client:
    c = Client()
    assert c.login(username=tenant.user.username, password=PASSWORD)
    return c


def test_customer_list_search_plan_and_isolation(tenant_a, tenant_b, catalog, django_assert_max_num_queries):
    pro_plan(tenant_a.org, catalog)
    for i in range(6):
        cust = services.customer_create(
            organization=tenant_a.org, name=f"Cust {i}", key=f"k{i}", subject_keys=[f"s{i}"]
        )
        services.subscription_create(
            organization=tenant_a.org,
            customer=cust,
            plan_key="pro",
            active_from=datetime(2026, 1, 1, tzinfo=UTC),
        )
    services.customer_create(organization=tenant_b.org, name="Globex Secret", key="secret")
    client = login(tenant_a)
    client.get("/console/customers/")  # warm session/org resolution
    with django_assert_max_num_queries(14):
        r = client.get("/console/customers/")
    body = r.content.decode()
    assert r.status_code == 200 and body.count("Pro v1") == 6 and "Globex Secret" not in body
    r = client.get("/console/customers/?q=k3", HTTP_HX_REQUEST="true")
    assert "Cust 3" in r.content.decode() and "Cust 4" not in r.content.decode()
    assert "<html" not in r.content.decode()  # partial only


def test_customer_list_queries_do_not_grow(tenant_a, catalog, django_assert_num_queries):
    pro_plan(tenant_a.org, catalog)
    client = login(tenant_a)

    def count():
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/console/customers/").status_code == 200
        return len(ctx.captured_queries)

    services.customer_create(organization=tenant_a.org, name="One", key="one", subject_keys=["a"])
    count()  # first request of the session also saves it
    first = count()
    for i in range(10):
        cust = services.customer_create(
            organization=tenant_a.org, name=f"N{i}", key=f"n{i}", subject_keys=[f"x{i}"]
        )
        services.subscription_create(organization=tenant_a.org, customer=cust, plan_key="pro")
    assert count() == first


def test_assign_change_cancel_from_console(tenant_a, tenant_b, catalog):
    pro_plan(tenant_a.org, catalog)
    pro_plan(tenant_a.org, catalog, key="business", fee="99")
    catalog.plan_choices = lambda **kw: [("pro", "Pro", 1), ("business", "Business", 1)]
    from billing import sources

    sources.set_provider("plan_choices", catalog.plan_choices)
    cust = services.customer_create(organization=tenant_a.org, name="Acme", key="acme", subject_keys=["s"])
    client = login(tenant_a)
    page = client.get(f"/console/customers/{cust.id}/").content.decode()
    assert "Assign a plan" in page and "Business (v1)" in page
    r = client.post(
        f"/console/customers/{cust.id}/subscription/assign/",
        {"plan": "pro"},
        HTTP_HX_REQUEST="true",
    )
    assert r.status_code == 200 and "Pro v1" in r.content.decode() and "tokens" in r.content.decode()
    r = client.post(
        f"/console/customers/{cust.id}/subscription/change/",
        {"plan": "business", "timing": "immediate"},
        HTTP_HX_REQUEST="true",
    )
    assert r.status_code == 200 and "Business v1" in r.content.decode()
    r = client.post(
        f"/console/customers/{cust.id}/subscription/cancel/",
        {"timing": "next_billing_cycle"},
        HTTP_HX_REQUEST="true",
    )
    assert r.status_code == 200 and "ends" in r.content.decode()
    assert Subscription.objects.filter(customer=cust).count() == 2
    # tenant B cannot see or act on A's customer
    client_b = login(tenant_b)
    assert client_b.get(f"/console/customers/{cust.id}/").status_code == 404
    r = client_b.post(f"/console/customers/{cust.id}/subscription/cancel/", {}, HTTP_HX_REQUEST="true")
    assert r.status_code in (400, 404)
    assert Subscription.objects.filter(customer=cust).count() == 2
    sources.set_provider("plan_choices", None)


def test_each_subscription_operation_refuses_bad_input_on_its_form(tenant_a, tenant_b, catalog):
    pro_plan(tenant_a.org, catalog)
    pro_plan(tenant_b.org, catalog)
    cust = services.customer_create(organization=tenant_a.org, name="Acme", key="acme", subject_keys=["s"])
    other = services.customer_create(organization=tenant_b.org, name="Globex", key="acme", subject_keys=["s"])
    services.subscription_create(organization=tenant_b.org, customer=other, plan_key="pro")
    client = login(tenant_a)
    base = f"/console/customers/{cust.id}/subscription"
    r = client.post(f"{base}/assign/", {"plan": ""}, HTTP_HX_REQUEST="true")
    assert r.status_code == 400 and "Choose a plan." in r.content.decode()
    r = client.post(f"{base}/cancel/", {"timing": "next_billing_cycle"}, HTTP_HX_REQUEST="true")
    assert r.status_code == 400 and "The customer has no active subscription." in r.content.decode()
    r = client.post(f"{base}/assign/", {"plan": "pro"}, HTTP_HX_REQUEST="true")
    assert r.status_code == 200
    r = client.post(f"{base}/cancel/", {"timing": "someday"}, HTTP_HX_REQUEST="true")
    assert r.status_code == 400 and "Select a valid choice" in r.content.decode()
    r = client.post(f"{base}/unschedule/", {}, HTTP_HX_REQUEST="true")
    assert r.status_code == 400 and "The subscription has no scheduled cancelation." in r.content.decode()
    sub = Subscription.objects.get(customer=cust)
    assert (sub.active_to, sub.cancel_requested_at) == (None, None)  # nothing written by the refusals
    # the other organization's subscription was never touched
    assert Subscription.objects.get(customer=other).active_to is None


def test_subscriptions_page(tenant_a, tenant_b, catalog):
    pro_plan(tenant_a.org, catalog)
    cust = services.customer_create(organization=tenant_a.org, name="Acme", key="acme")
    services.subscription_create(organization=tenant_a.org, customer=cust, plan_key="pro")
    body = login(tenant_a).get("/console/subscriptions/").content.decode()
    assert "Acme" in body and "Pro v1" in body
    assert "Acme" not in login(tenant_b).get("/console/subscriptions/").content.decode()
