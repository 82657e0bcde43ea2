import pytest

pytestmark = pytest.mark.django_db


def test_openapi_schema_lists_the_api(client):
    r = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert r.status_code == 200
    schema = r.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/api-keys" in schema["paths"]
    assert "/api/v1/organization" in schema["paths"]
    for path in ("/api/v1/events", "/api/v3/openmeter/events", "/api/v1/events/kong"):
        assert {"400", "413", "503"} <= set(schema["paths"][path]["post"]["responses"]), path


def test_docs_page_serves_local_assets_only(client):
    r = client.get("/api/docs/")
    html = r.content.decode()
    assert r.status_code == 200
    assert "swagger-ui" in html
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html
