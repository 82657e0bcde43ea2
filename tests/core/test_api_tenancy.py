"""Tenancy rules of the API: keys belong to one organization, scopes gate operations, errors are problem+json."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.models import ApiKey, AuditLog

pytestmark = pytest.mark.django_db


def _problem(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert (
        body["status"] == status and body["title"] and body["detail"] and body["type"].startswith("https://")
    )
    return body


def test_organization_endpoint_answers_for_the_keys_own_org(tenant_a, tenant_b):
    assert tenant_a.client("read").get("/api/v1/organization").json()["slug"] == "acme"
    assert tenant_b.client("read").get("/api/v1/organization").json()["slug"] == "globex"


def test_key_list_shows_only_own_keys(tenant_a, tenant_b):
    names_a = {k["name"] for k in tenant_a.client().get("/api/v1/api-keys").json()["items"]}
    names_b = {k["name"] for k in tenant_b.client().get("/api/v1/api-keys").json()["items"]}
    assert names_a == {"acme admin", "acme ingest", "acme read", "acme ingest_read"}
    assert names_b == {"globex admin", "globex ingest", "globex read", "globex ingest_read"}


def test_key_of_a_cannot_revoke_key_of_b(tenant_a, tenant_b):
    b_key = ApiKey.objects.filter(organization=tenant_b.org).first()
    body = _problem(tenant_a.client().delete(f"/api/v1/api-keys/{b_key.id}"), 404)
    assert "No such API key" in body["detail"]
    b_key.refresh_from_db()
    assert b_key.revoked_at is None
    assert not AuditLog.objects.filter(action="api_key.revoked").exists()


def test_key_of_a_cannot_read_audit_of_b(tenant_a, tenant_b):
    tenant_b.client().post("/api/v1/api-keys", {"name": "b only", "scopes": ["read"]}, format="json")
    actions_a = tenant_a.client().get("/api/v1/audit-log").json()["items"]
    assert actions_a and all("b only" not in str(entry["after"]) for entry in actions_a)
    org_ids = set(
        AuditLog.objects.filter(id__in=[e["id"] for e in actions_a]).values_list("organization_id", flat=True)
    )
    assert org_ids == {tenant_a.org.id}


def test_revoked_key_gets_401(tenant_a):
    client = tenant_a.client("read")
    assert client.get("/api/v1/organization").status_code == 200
    key = ApiKey.objects.get(organization=tenant_a.org, name="acme read")
    assert tenant_a.client().delete(f"/api/v1/api-keys/{key.id}").status_code == 204
    body = _problem(client.get("/api/v1/organization"), 401)
    assert "revoked" in body["detail"]
    assert AuditLog.objects.filter(action="api_key.revoked", object_id=key.id).count() == 1


def test_expired_key_gets_401(tenant_a):
    key = ApiKey.objects.get(organization=tenant_a.org, name="acme read")
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    _problem(tenant_a.client("read").get("/api/v1/organization"), 401)


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer ml_not-a-real-key", "Basic abc", "Token x"])
def test_missing_or_bad_credentials_get_401(db, header):
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/organization")
    _problem(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_wrong_scope_gets_403_naming_the_scope(tenant_a):
    body = _problem(tenant_a.client("ingest").get("/api/v1/organization"), 403)
    assert "`read`" in body["detail"]
    body = _problem(tenant_a.client("read").get("/api/v1/api-keys"), 403)
    assert "`admin`" in body["detail"]
    assert (
        tenant_a.client("read")
        .post("/api/v1/api-keys", {"name": "x", "scopes": ["admin"]}, format="json")
        .status_code
        == 403
    )
    assert ApiKey.objects.filter(organization=tenant_a.org, name="x").count() == 0


def test_create_key_returns_secret_once_and_it_works(tenant_a, tenant_b):
    r = tenant_a.client().post("/api/v1/api-keys", {"name": "ci", "scopes": ["read"]}, format="json")
    assert r.status_code == 201
    secret = r.json()["secret"]
    assert r.json()["key"]["prefix"] == secret[:11]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/v1/organization").json()["slug"] == "acme"
    listed = tenant_a.client().get("/api/v1/api-keys").json()["items"]
    assert all("secret" not in item for item in listed)
    assert "ci" not in {k["name"] for k in tenant_b.client().get("/api/v1/api-keys").json()["items"]}


def test_create_key_validation_names_the_field(tenant_a):
    body = _problem(
        tenant_a.client().post("/api/v1/api-keys", {"name": "x", "scopes": ["root"]}, format="json"), 400
    )
    assert body["invalid_params"][0]["name"] == "scopes[0]"
    body = _problem(tenant_a.client().post("/api/v1/api-keys", {"scopes": ["read"]}, format="json"), 400)
    assert body["invalid_params"] == [{"name": "name", "reason": "This field is required."}]


def test_malformed_json_is_a_problem(tenant_a):
    r = tenant_a.client().post("/api/v1/api-keys", "{not json", content_type="application/json")
    body = _problem(r, 400)
    assert body["invalid_params"][0]["name"] == "body"


def test_unknown_api_route_is_problem_json(tenant_a):
    _problem(tenant_a.client().get("/api/v1/no-such-thing"), 404)


def test_last_used_is_recorded(tenant_a):
    key = ApiKey.objects.get(organization=tenant_a.org, name="acme read")
    assert key.last_used_at is None
    tenant_a.client("read").get("/api/v1/organization")
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_cursor_pagination_walks_every_key_once(tenant_a, tenant_b):
    client = tenant_a.client()
    seen, url = [], "/api/v1/api-keys?limit=3"
    while url:
        page = client.get(url).json()
        seen += [k["id"] for k in page["items"]]
        url = page["next"]
    expected = set(ApiKey.objects.filter(organization=tenant_a.org).values_list("id", flat=True))
    assert len(seen) == len(expected) == 4 and set(seen) == expected


def test_list_query_budget_is_constant(tenant_a, django_assert_max_num_queries):
    for i in range(20):
        tenant_a.client().post("/api/v1/api-keys", {"name": f"k{i}", "scopes": ["read"]}, format="json")
    # 1 key lookup (auth) + 1 page of keys; last_used_at is touched at most once a minute.
    client = tenant_a.client()
    client.get("/api/v1/api-keys")
    with django_assert_max_num_queries(2):
        assert len(client.get("/api/v1/api-keys").json()["items"]) == 24
