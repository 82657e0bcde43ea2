"""Meters API: create, list (bare array), get by id or slug, update, soft delete, validation, audit."""

from __future__ import annotations

import pytest

from core.models import AuditLog
from metering.models import Meter
from metering.selectors import meter_get, meter_list

pytestmark = pytest.mark.django_db

BODY = {
    "slug": "tokens_total",
    "name": "Tokens",
    "eventType": "prompt",
    "aggregation": "SUM",
    "valueProperty": "$.tokens",
    "groupBy": {"model": "$.model", "type": "$.type"},
}


def test_create_list_get_by_id_and_slug(tenant_a, tenant_b):
    r = tenant_a.client("admin").post("/api/v1/meters", BODY, format="json")
    assert r.status_code == 201, r.content
    m = r.json()
    assert {k: m[k] for k in BODY} == BODY
    assert m["createdAt"].endswith("Z") and m["deletedAt"] is None
    tenant_b.client("admin").post("/api/v1/meters", {**BODY, "slug": "b_only"}, format="json")

    listed = tenant_a.client("read").get("/api/v1/meters").json()
    assert isinstance(listed, list)
    assert [x["slug"] for x in listed] == ["tokens_total"]
    assert [x["slug"] for x in tenant_b.client("read").get("/api/v1/meters").json()] == ["b_only"]
    for key in (m["id"], "tokens_total", m["id"].lower()):
        assert tenant_a.client("read").get(f"/api/v1/meters/{key}").json()["id"] == m["id"]
    # tenant B cannot see A's meter by id or slug
    assert tenant_b.client("read").get(f"/api/v1/meters/{m['id']}").status_code == 404
    assert tenant_b.client("read").get("/api/v1/meters/tokens_total").status_code == 404
    assert AuditLog.objects.filter(organization=tenant_a.org, action="meter.created").count() == 1


def test_count_meter_needs_no_value_property(tenant_a):
    r = tenant_a.client("admin").post(
        "/api/v1/meters", {"slug": "calls", "eventType": "request", "aggregation": "COUNT"}, format="json"
    )
    assert r.status_code == 201
    assert r.json()["valueProperty"] is None


def test_validation_names_fields(tenant_a):
    bad = {"slug": "Bad Slug", "eventType": "", "aggregation": "MEDIAN", "groupBy": {"model": "model"}}
    r = tenant_a.client("admin").post("/api/v1/meters", bad, format="json")
    assert r.status_code == 400
    assert r["Content-Type"] == "application/problem+json"
    names = {p["name"] for p in r.json()["invalid_params"]}
    assert names == {"slug", "eventType", "aggregation", "groupBy.model"}
    r = tenant_a.client("admin").post("/api/v1/meters", {**BODY, "valueProperty": None}, format="json")
    assert [p["name"] for p in r.json()["invalid_params"]] == ["valueProperty"]
    assert not Meter.objects.exists()


def test_duplicate_slug_conflicts_but_is_reusable_after_delete(tenant_a, tenant_b):
    c = tenant_a.client("admin")
    assert c.post("/api/v1/meters", BODY, format="json").status_code == 201
    assert c.post("/api/v1/meters", BODY, format="json").status_code == 409
    assert tenant_b.client("admin").post("/api/v1/meters", BODY, format="json").status_code == 201
    assert c.delete("/api/v1/meters/tokens_total").status_code == 204
    assert c.get("/api/v1/meters/tokens_total").status_code == 404
    assert c.get("/api/v1/meters").json() == []
    assert [m["slug"] for m in c.get("/api/v1/meters?includeDeleted=true").json()] == ["tokens_total"]
    assert c.post("/api/v1/meters", BODY, format="json").status_code == 201
    assert Meter.objects.filter(organization=tenant_a.org).count() == 2  # soft delete kept the row
    assert tenant_b.client("read").get("/api/v1/meters/tokens_total").status_code == 200


def test_update_name_and_group_by_but_not_aggregation(tenant_a):
    c = tenant_a.client("admin")
    mid = c.post("/api/v1/meters", BODY, format="json").json()["id"]
    r = c.put(f"/api/v1/meters/{mid}", {"name": "LLM tokens", "groupBy": {"model": "$.model"}}, format="json")
    assert r.status_code == 200, r.content
    assert (r.json()["name"], r.json()["groupBy"]) == ("LLM tokens", {"model": "$.model"})
    r = c.put(f"/api/v1/meters/{mid}", {"aggregation": "MAX"}, format="json")
    assert r.status_code == 400
    assert r.json()["invalid_params"][0]["name"] == "aggregation"
    log = AuditLog.objects.filter(organization=tenant_a.org, action="meter.updated").get()
    assert log.before["name"] == "Tokens" and log.after["name"] == "LLM tokens"


def test_scopes(tenant_a):
    assert tenant_a.client("read").post("/api/v1/meters", BODY, format="json").status_code == 403
    assert tenant_a.client("ingest").get("/api/v1/meters").status_code == 403


def test_selectors(tenant_a, tenant_b, tokens_meter, tokens_meter_b):
    assert meter_get(organization=tenant_a.org, id_or_slug="tokens") == tokens_meter
    assert meter_get(organization=tenant_a.org, id_or_slug=tokens_meter.id) == tokens_meter
    assert list(meter_list(organization=tenant_a.org)) == [tokens_meter]
    from core.errors import NotFound

    with pytest.raises(NotFound):
        meter_get(organization=tenant_a.org, id_or_slug=tokens_meter_b.id)
