import pytest
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator

pytestmark = pytest.mark.django_db

ERROR_CODES = {"400", "401", "403", "404", "409", "413", "415", "503"}
METHODS = ("get", "post", "put", "patch", "delete")


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


@pytest.fixture(scope="module")
def generated():
    """The schema and the generator's warnings (what `manage.py spectacular` prints)."""
    GENERATOR_STATS.reset()
    messages: list[str] = []

    def record(msg, severity):
        messages.append(msg)

    GENERATOR_STATS.emit = record  # an instance attribute over the method, removed below
    try:
        schema = SchemaGenerator().get_schema(request=None, public=True)
    finally:
        del GENERATOR_STATS.emit
    return schema, messages


def _operations(schema):
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _generic(schema, node, seen=()):
    """A schema that says nothing: `type: object` without properties (or an array of such)."""
    components = schema["components"]["schemas"]
    while isinstance(node, dict) and "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return False
        seen = (*seen, name)
        node = components[name]
    if not isinstance(node, dict):
        return False
    if node.get("type") == "array":
        return _generic(schema, node.get("items", {}), seen)
    types = node.get("type")
    is_object = types == "object" or (isinstance(types, list) and "object" in types)
    return is_object and not node.get("properties") and node.get("additionalProperties") in (None, True, {})


def test_no_component_or_operation_collides(generated):
    schema, messages = generated
    collisions = [m for m in messages if "identical names" in m or ("operationId" in m and "collision" in m)]
    assert collisions == []
    ids = [op["operationId"] for _, _, op in _operations(schema)]
    assert len(ids) == len(set(ids))


def test_the_generator_has_nothing_to_warn_about(generated):
    """No unresolved serializer or field, no guessed body, no enum named by a hash: every warning of
    `manage.py spectacular` is a place where the schema is wrong or unstable."""
    _, messages = generated
    assert messages == []


def test_every_request_and_response_body_is_described(generated):
    schema, _ = generated
    generic = []
    for path, method, op in _operations(schema):
        for media, content in op.get("requestBody", {}).get("content", {}).items():
            if _generic(schema, content.get("schema", {})):
                generic.append(f"{method.upper()} {path} request {media}")
        for code, response in op["responses"].items():
            for media, content in response.get("content", {}).items():
                if _generic(schema, content.get("schema", {})):
                    generic.append(f"{method.upper()} {path} {code} {media}")
    assert generic == []


def test_every_operation_declares_security_scope_and_errors(generated):
    schema, _ = generated
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {**schemes["ApiKey"], "type": "http", "scheme": "bearer"}
    for path, method, op in _operations(schema):
        if path.startswith("/lago/"):
            continue  # the Lago-compatible surface documents Lago's own contract
        where = f"{method.upper()} {path}"
        assert op.get("security"), where
        if "ApiKey" in op["security"][0]:
            assert "scope: `" in op.get("description", "").lower(), where
        responses = op["responses"]
        assert {"401", "403"} <= set(responses), where
        for code in set(responses) & ERROR_CODES:
            assert "application/problem+json" in responses[code].get("content", {}), f"{where} {code}"
        if "{" in path:
            assert "404" in responses, where
        if "requestBody" in op:
            assert {"400", "413", "415"} <= set(responses), where


def test_no_union_is_ambiguous(generated):
    """A oneOf whose members overlap (`{}` beside null, null twice) rejects every value both accept."""
    schema, _ = generated
    ambiguous = []

    def walk(node, where):
        if isinstance(node, dict):
            members = node.get("oneOf")
            if members and ({} in members or len({repr(m) for m in members}) < len(members)):
                ambiguous.append(where)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    walk(schema, "#")
    assert ambiguous == []


def test_lists_declare_their_page_shape(generated):
    schema, _ = generated
    components = schema["components"]["schemas"]

    def body(path, method="get", code="200"):
        ref = schema["paths"][path][method]["responses"][code]["content"]["application/json"]["schema"]
        return components[ref["$ref"].rsplit("/", 1)[-1]]

    page = {"totalCount", "page", "pageSize", "items"}
    for path in ("/api/v1/customers", "/api/v1/plans", "/api/v1/billing/invoices", "/api/v1/subscriptions"):
        assert set(body(path)["properties"]) == page, path
        names = {p["name"] for p in schema["paths"][path]["get"].get("parameters", [])}
        assert {"page", "pageSize"} <= names, path
    assert set(body("/api/v1/api-keys")["properties"]) == {"items", "next", "previous"}
    # OpenMeter's meter list is a bare array (the SDK reads it so)
    meters = schema["paths"]["/api/v1/meters"]["get"]["responses"]["200"]["content"]["application/json"]
    assert meters["schema"]["type"] == "array"


def test_query_parameters_are_declared(generated):
    schema, _ = generated

    def names(path, method="get"):
        return {p["name"] for p in schema["paths"][path][method].get("parameters", [])}

    assert {"customerId", "status"} <= names("/api/v1/subscriptions")
    assert {"customerId", "statuses", "periodFrom", "expand"} <= names("/api/v1/billing/invoices")
    query = names("/api/v1/meters/{id_or_slug}/query")
    assert {"from", "to", "windowSize", "subject", "groupBy", "filterCustomerId"} <= query


def test_prices_are_a_discriminated_union(generated):
    schema, _ = generated
    price = schema["components"]["schemas"]["Price"]
    assert price["discriminator"]["propertyName"] == "type"
    assert set(price["discriminator"]["mapping"]) == {
        "flat",
        "unit",
        "tiered",
        "package",
        "dynamic",
        "percentage",
    }


def test_on_demand_invoice_and_portal_token_have_their_own_bodies(generated):
    schema, _ = generated
    components = schema["components"]["schemas"]
    for _path, _method, op in _operations(schema):
        if op["operationId"] == "invoicePendingLinesAction":
            ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert set(components[ref.rsplit("/", 1)[-1]]["properties"]) == {"customerId"}
        if op["operationId"] == "createPortalToken":
            ref = op["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
            assert {"token", "url", "subject"} <= set(components[ref.rsplit("/", 1)[-1]]["properties"])
