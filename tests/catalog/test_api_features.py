"""Features API: OpenMeter shape, meter validation, archive-when-used, tenancy, query budget."""

import pytest

from catalog.models import Feature
from core.models import AuditLog
from tests.catalog.factories import api, make_feature, make_meter, plan_body


@pytest.fixture
def tenants(tenant_a, tenant_b):
    make_meter(tenant_a.org)
    make_meter(tenant_b.org)
    make_feature(tenant_b, "globex_only")
    return tenant_a, tenant_b


def test_create_and_read_openmeter_shape(tenants):
    a, _ = tenants
    created = make_feature(a, "gpt4o_output_tokens", filters={"model": "gpt-4o", "type": "output"})
    assert set(created) == {
        "id",
        "key",
        "name",
        "meterSlug",
        "meterGroupByFilters",
        "metadata",
        "createdAt",
        "updatedAt",
        "archivedAt",
    }
    assert created["meterGroupByFilters"] == {"model": "gpt-4o", "type": "output"}
    assert created["archivedAt"] is None
    by_key = api(a.client("read"), "get", "/api/v1/features/gpt4o_output_tokens").json()
    by_id = api(a.client("read"), "get", f"/api/v1/features/{created['id']}").json()
    assert by_key == by_id == created
    assert [f["key"] for f in api(a.client("read"), "get", "/api/v1/features").json()] == [
        "gpt4o_output_tokens"
    ]
    paged = api(a.client("read"), "get", "/api/v1/features?page=1&pageSize=10").json()
    assert paged["totalCount"] == 1
    assert (
        AuditLog.objects.filter(
            organization=a.org, action="feature.created", object_id="gpt4o_output_tokens"
        ).count()
        == 1
    )


def test_feature_without_meter_is_fine(tenants):
    a, _ = tenants
    r = api(a.client(), "post", "/api/v1/features", {"key": "sso", "name": "SSO"})
    assert r.status_code == 201 and r.json()["meterSlug"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"key": "Bad Key", "name": "x"}, "key"),
        ({"key": "ok", "name": ""}, "name"),
        ({"key": "ok", "name": "x", "meterSlug": "no_such_meter"}, "meterSlug"),
        (
            {"key": "ok", "name": "x", "meterSlug": "llm_tokens", "meterGroupByFilters": {"region": "eu"}},
            "meterGroupByFilters.region",
        ),
        ({"key": "ok", "name": "x", "meterGroupByFilters": {"model": "gpt-4o"}}, "meterGroupByFilters"),
    ],
)
def test_validation(tenants, body, field):
    a, _ = tenants
    r = api(a.client(), "post", "/api/v1/features", body)
    assert r.status_code == 400
    assert field in {p["name"] for p in r.json()["invalid_params"]}
    assert not Feature.objects.filter(organization=a.org).exists()


def test_duplicate_key_conflicts(tenants):
    a, _ = tenants
    make_feature(a, "tokens")
    assert api(a.client(), "post", "/api/v1/features", {"key": "tokens", "name": "T"}).status_code == 409


def test_delete_unused_deletes_and_used_archives(tenants):
    a, _ = tenants
    unused = make_feature(a, "unused")
    assert api(a.client(), "delete", "/api/v1/features/unused").status_code == 204
    assert not Feature.objects.filter(id=unused["id"]).exists()

    used = make_feature(a, "tokens")
    assert api(a.client(), "post", "/api/v1/plans", plan_body()).status_code == 201
    assert api(a.client(), "delete", "/api/v1/features/tokens").status_code == 204
    archived = api(a.client("read"), "get", f"/api/v1/features/{used['id']}").json()
    assert archived["archivedAt"] is not None
    assert api(a.client("read"), "get", "/api/v1/features").json() == []
    assert len(api(a.client("read"), "get", "/api/v1/features?includeArchived=true").json()) == 1
    # an archived feature cannot go on new rate cards
    r = api(a.client(), "post", "/api/v1/plans", plan_body(key="other"))
    assert r.status_code == 400
    assert r.json()["invalid_params"][0]["name"] == "phases[1].rateCards[1].featureKey"
    # and its key can be reused
    make_feature(a, "tokens")


def test_other_organizations_features_are_invisible(tenants):
    a, b = tenants
    b_feature = Feature.objects.get(organization=b.org, key="globex_only")
    assert api(a.client("read"), "get", "/api/v1/features").json() == []
    assert api(a.client("read"), "get", f"/api/v1/features/{b_feature.id}").status_code == 404
    assert api(a.client("read"), "get", "/api/v1/features/globex_only").status_code == 404
    assert api(a.client(), "delete", f"/api/v1/features/{b_feature.id}").status_code == 404
    assert Feature.objects.filter(id=b_feature.id, archived_at__isnull=True).exists()
    # a plan in A cannot reference B's feature
    r = api(a.client(), "post", "/api/v1/plans", plan_body(feature_key="globex_only"))
    assert r.status_code == 400


def test_list_query_budget_is_constant(tenants, django_assert_max_num_queries):
    a, _ = tenants
    make_feature(a, "f0")
    with django_assert_max_num_queries(3):  # key lookup + last-used touch + one select
        assert len(api(a.client("read"), "get", "/api/v1/features").json()) == 1
    for i in range(1, 12):
        make_feature(a, f"f{i}")
    with django_assert_max_num_queries(3):
        assert len(api(a.client("read"), "get", "/api/v1/features").json()) == 12


def test_filter_on_a_list_of_values_reads_back_as_a_list(tenants):
    """A filter value may be a list (any of them matches); the answer keeps it a list of strings."""
    a, b = tenants
    created = make_feature(a, "gpt_any", filters={"model": ["gpt-4o", "gpt-4o-mini"], "type": "output"})
    assert created["meterGroupByFilters"] == {"model": ["gpt-4o", "gpt-4o-mini"], "type": "output"}
    listed = api(a.client("read"), "get", "/api/v1/features").json()
    assert [f["meterGroupByFilters"] for f in listed] == [created["meterGroupByFilters"]]
    assert [f["key"] for f in api(b.client("read"), "get", "/api/v1/features").json()] == ["globex_only"]


def test_body_shape_and_rules_are_reported_together_once_each(tenants):
    """The serializer's fields check the shape (a filter value of the wrong JSON type, named by its own
    path) and the feature rules read the same raw body (a bad key, a blank name): one 400 names them all,
    each once, and nothing is written."""
    a, b = tenants
    body = {"key": "Bad Key", "name": " ", "meterSlug": "llm_tokens", "meterGroupByFilters": {"model": 3}}
    r = api(a.client(), "post", "/api/v1/features", body)
    assert r.status_code == 400
    assert r["Content-Type"] == "application/problem+json"
    names = [p["name"] for p in r.json()["invalid_params"]]
    assert {"key", "name", "meterGroupByFilters.model"} <= set(names)
    assert len(names) == len(set(names))
    assert not Feature.objects.filter(organization=a.org).exists()
    assert Feature.objects.filter(organization=b.org).count() == 1
