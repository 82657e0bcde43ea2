def test_org_endpoint_returns_own_org(tenant_a, tenant_b):
    r = tenant_a.client("read").get("/api/v1/organization")
    assert r.status_code == 200
    assert r.json()["slug"] == "acme"
