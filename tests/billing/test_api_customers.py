"""Customers API: OpenMeter shape, key/id lookup, subject uniqueness (409), search, paging, isolation."""

import pytest

from billing.models import Customer, CustomerSubject
from billing.selectors import customer_for_subject, subjects_for_customers
from core.models import AuditLog

pytestmark = pytest.mark.django_db

ACME = {
    "name": "ACME",
    "key": "acme",
    "usageAttribution": {"subjectKeys": ["customer-1"]},
    "primaryEmail": "billing@acme.test",
    "currency": "USD",
}


def _create(tenant, body=ACME):
    r = tenant.client().post("/api/v1/customers", body, format="json")
    assert r.status_code == 201, r.content
    return r.json()


def test_create_returns_openmeter_shape(tenant_a, tenant_b):
    body = _create(
        tenant_a,
        {
            **ACME,
            "billingAddress": {"country": "DE", "city": "Berlin", "line1": "Str 1"},
            "taxIds": [{"type": "eu_vat", "value": "DE123"}],
            "metadata": {"tier": "gold"},
        },
    )
    assert body["key"] == "acme" and body["name"] == "ACME" and body["currency"] == "USD"
    assert body["usageAttribution"] == {"subjectKeys": ["customer-1"]}
    assert body["billingAddress"]["city"] == "Berlin"
    assert body["taxIds"] == [{"type": "eu_vat", "value": "DE123"}]
    assert body["metadata"] == {"tier": "gold"}
    assert body["deletedAt"] is None and body["createdAt"] and body["updatedAt"] and len(body["id"]) == 26
    assert AuditLog.objects.filter(organization=tenant_a.org, action="customer.created").count() == 1
    # id or key works in the path; B cannot see it.
    assert tenant_a.client("read").get(f"/api/v1/customers/{body['id']}").json()["key"] == "acme"
    assert tenant_a.client("read").get("/api/v1/customers/acme").json()["id"] == body["id"]
    assert tenant_b.client("read").get("/api/v1/customers/acme").status_code == 404
    assert tenant_b.client("read").get(f"/api/v1/customers/{body['id']}").status_code == 404


def test_same_key_and_subject_allowed_in_other_org(tenant_a, tenant_b):
    a = _create(tenant_a)
    b = _create(tenant_b)
    assert a["id"] != b["id"]
    assert customer_for_subject(organization=tenant_a.org, subject_key="customer-1").id == a["id"]
    assert customer_for_subject(organization=tenant_b.org, subject_key="customer-1").id == b["id"]


def test_duplicate_key_is_409(tenant_a):
    _create(tenant_a)
    r = tenant_a.client().post("/api/v1/customers", {"name": "Other", "key": "acme"}, format="json")
    assert r.status_code == 409 and r["Content-Type"].startswith("application/problem+json")
    assert Customer.objects.filter(organization=tenant_a.org).count() == 1


def test_subject_of_another_customer_is_409_and_nothing_changes(tenant_a):
    _create(tenant_a)
    r = tenant_a.client().post(
        "/api/v1/customers",
        {"name": "Beta", "key": "beta", "usageAttribution": {"subjectKeys": ["x", "customer-1"]}},
        format="json",
    )
    assert r.status_code == 409, r.content
    assert r["Content-Type"].startswith("application/problem+json")
    assert r.json()["invalid_params"][0]["name"] == "usageAttribution.subjectKeys"
    assert not Customer.objects.filter(key="beta").exists()
    assert list(CustomerSubject.objects.values_list("subject_key", flat=True)) == ["customer-1"]
    beta = _create(tenant_a, {"name": "Beta", "key": "beta"})
    r = tenant_a.client().patch(
        f"/api/v1/customers/{beta['id']}",
        {"usageAttribution": {"subjectKeys": ["customer-1"]}},
        format="json",
    )
    assert r.status_code == 409


def test_patch_put_delete(tenant_a, tenant_b):
    c = _create(tenant_a)
    r = tenant_a.client().patch("/api/v1/customers/acme", {"name": "ACME GmbH"}, format="json")
    assert r.status_code == 200 and r.json()["name"] == "ACME GmbH"
    assert r.json()["primaryEmail"] == "billing@acme.test"
    r = tenant_a.client().put(
        "/api/v1/customers/acme",
        {"name": "ACME 2", "key": "acme", "usageAttribution": {"subjectKeys": ["s2"]}},
        format="json",
    )
    assert r.status_code == 200
    assert r.json()["primaryEmail"] is None and r.json()["usageAttribution"] == {"subjectKeys": ["s2"]}
    assert tenant_b.client().delete("/api/v1/customers/acme").status_code == 404
    assert tenant_a.client("read").delete("/api/v1/customers/acme").status_code == 403
    assert tenant_a.client().delete("/api/v1/customers/acme").status_code == 204
    assert tenant_a.client().get("/api/v1/customers/acme").status_code == 404
    deleted = Customer.objects.get(id=c["id"])
    assert deleted.deleted_at is not None
    # key and subject are free again
    _create(tenant_a, {"name": "New", "key": "acme", "usageAttribution": {"subjectKeys": ["s2"]}})


def test_list_paging_and_search(tenant_a, tenant_b):
    for i in range(5):
        _create(
            tenant_a,
            {
                "name": f"Cust {i}",
                "key": f"k{i}",
                "primaryEmail": f"c{i}@a.test",
                "usageAttribution": {"subjectKeys": [f"sub-{i}"]},
            },
        )
    _create(tenant_b, {"name": "Cust B", "key": "kb"})
    body = tenant_a.client("read").get("/api/v1/customers?page=2&pageSize=2").json()
    assert body["totalCount"] == 5 and body["page"] == 2 and body["pageSize"] == 2
    assert [c["key"] for c in body["items"]] == ["k2", "k3"]
    assert [
        c["key"] for c in tenant_a.client("read").get("/api/v1/customers?search=c3@").json()["items"]
    ] == ["k3"]
    assert [c["key"] for c in tenant_a.client("read").get("/api/v1/customers?key=k4").json()["items"]] == [
        "k4"
    ]
    assert [
        c["key"] for c in tenant_a.client("read").get("/api/v1/customers?subject=sub-1").json()["items"]
    ] == ["k1"]
    assert tenant_a.client("read").get("/api/v1/customers?search=kb").json()["totalCount"] == 0
    assert tenant_a.client("read").get("/api/v1/customers?pageSize=0").status_code == 400


def test_list_query_count_is_constant(tenant_a, django_assert_max_num_queries):
    for i in range(8):
        _create(tenant_a, {"name": f"C{i}", "key": f"k{i}", "usageAttribution": {"subjectKeys": [f"s{i}"]}})
    client = tenant_a.client("read")
    # auth key lookup, count, page, subjects prefetch, current subscriptions
    with django_assert_max_num_queries(6):
        assert len(client.get("/api/v1/customers").json()["items"]) == 8


def test_subjects_for_customers(tenant_a, tenant_b):
    a = _create(tenant_a, {"name": "A", "key": "a", "usageAttribution": {"subjectKeys": ["z", "y"]}})
    b = _create(tenant_b, {"name": "B", "key": "b", "usageAttribution": {"subjectKeys": ["q"]}})
    assert subjects_for_customers(organization=tenant_a.org, customer_ids=[a["id"], b["id"]]) == {
        a["id"]: ["y", "z"],
        b["id"]: [],
    }


def test_validation_errors(tenant_a):
    r = tenant_a.client().post("/api/v1/customers", {"key": "x"}, format="json")
    assert r.status_code == 400 and r.json()["invalid_params"][0]["name"] == "name"
    r = tenant_a.client().post("/api/v1/customers", {"name": "x", "currency": "ZZZ"}, format="json")
    assert r.status_code == 400 and r.json()["invalid_params"][0]["name"] == "currency"
    assert tenant_a.client("ingest").post("/api/v1/customers", ACME, format="json").status_code == 403
    assert not Customer.objects.exists()
