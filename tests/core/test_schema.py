import copy
import json
import re

import pytest
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator

from catalog.api.serializers import PlanInput
from core.errors import flatten_errors
from tests.catalog.factories import api, make_feature, make_meter

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


# --- what the schema requires, the serializer requires ----------------------------------------------
def _card(key, price, **extra):
    """A rate card: flat_fee for a flat price, else usage_based on the feature `tokens`."""
    card = {"type": "flat_fee", "key": key, "name": key.title(), "billingCadence": "P1M", "price": price}
    if price["type"] != "flat":
        card.update(type="usage_based", featureKey="tokens")
    return {**card, **extra}


def _plan_with_every_object():
    """A valid plan body holding every object PlanInput can nest (each price type once)."""
    tiers = [
        {
            "upToAmount": "10",
            "unitPrice": {"type": "unit", "amount": "1"},
            "flatPrice": {"type": "flat", "amount": "2"},
        },
        {"upToAmount": None, "unitPrice": {"type": "unit", "amount": "0.5"}},
    ]
    cards = [
        _card(
            "base", {"type": "flat", "amount": "49", "paymentTerm": "in_advance"}, metadata={"kind": "fee"}
        ),
        _card(
            "units",
            {"type": "unit", "amount": "0.01", "minimumAmount": "1", "maximumAmount": "100"},
            entitlementTemplate={"type": "metered", "usagePeriod": "P1M", "issueAfterReset": "10"},
            discounts={
                "percentage": {"percentage": "10", "correlationId": "c1"},
                "usage": {"quantity": "5", "correlationId": "c2"},
            },
        ),
        _card(
            "tiers",
            {"type": "tiered", "mode": "graduated", "tiers": tiers},
            commitments={"minimumAmount": "1", "maximumAmount": "50"},
        ),
        _card("packs", {"type": "package", "amount": "5", "quantityPerPackage": "1000"}),
        _card("costs", {"type": "dynamic", "multiplier": "1.2"}),
        _card("volume", {"type": "percentage", "percentage": "2.5", "fixedAmountPerEvent": "0.3"}),
    ]
    return {
        "key": "full",
        "name": "Full",
        "currency": "USD",
        "billingCadence": "P1M",
        "phases": [{"key": "main", "name": "Main", "duration": None, "rateCards": cards}],
        "addons": [{"addonKey": "seats", "fromPlanPhase": "main", "maxQuantity": 5}],
        "metadata": {"tier": "gold"},
    }


def _required_paths(schema, body):
    """(path of an object in `body`, a property its schema requires) for every object of `body`, walking
    the schema beside it ($ref, nullable oneOf, the price union's discriminator), and the price types met."""
    components = schema["components"]["schemas"]
    found, price_types = [], set()

    def resolve(node, value):
        while True:
            if "$ref" in node:
                node = components[node["$ref"].rsplit("/", 1)[-1]]
            elif "discriminator" in node:
                price_types.add(value["type"])
                node = {"$ref": node["discriminator"]["mapping"][value["type"]]}
            elif "oneOf" in node:
                members = [m for m in node["oneOf"] if m.get("type") != "null"]
                assert len(members) == 1, node
                node = members[0]
            elif "allOf" in node and len(node["allOf"]) == 1:
                node = node["allOf"][0]
            else:
                return node

    def walk(value, node, path):
        if not isinstance(value, (dict, list)):
            return  # a scalar: nothing nested in it
        node = resolve(node, value)
        if isinstance(value, dict):
            if "properties" not in node:
                return  # a map of strings (metadata)
            properties = node["properties"]
            assert set(value) <= set(properties), (path, set(value) - set(properties))
            found.extend((path, name) for name in node.get("required", []))
            for name, inner in value.items():
                walk(inner, properties[name], f"{path}.{name}" if path else name)
        else:
            for index, inner in enumerate(value):
                walk(inner, node["items"], f"{path}[{index}]")

    request = schema["paths"]["/api/v1/plans"]["post"]["requestBody"]["content"]["application/json"]
    walk(body, request["schema"], "")
    return found, price_types


def _without(body, path, name):
    """A deep copy of `body` with the property `name` of the object at `path` left out."""
    body = copy.deepcopy(body)
    node = body
    for step in re.findall(r"[A-Za-z]+|\[\d+\]", path):
        node = node[int(step[1:-1])] if step.startswith("[") else node[step]
    del node[name]
    return body


def test_every_property_the_plan_schema_requires_the_serializer_requires(client, tenant_a, tenant_b):
    """Parse the live schema; leave out each property it marks `required` (in PlanInput and everything
    nested in it, every price type included): the serializer alone refuses the body naming that
    property's full path, and so does the API (400)."""
    for tenant, currency in ((tenant_a, "USD"), (tenant_b, "EUR")):
        make_meter(tenant.org)
        make_feature(tenant, "tokens")
        addon = {"key": "seats", "name": "Seats", "currency": currency, "instanceType": "multiple"}
        assert api(tenant.client(), "post", "/api/v1/addons", addon).status_code == 201
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    body = _plan_with_every_object()
    required, price_types = _required_paths(schema, body)
    assert price_types == {"flat", "unit", "tiered", "package", "dynamic", "percentage"}
    assert len(required) >= 30, required  # the walk reached the nested objects
    admin = tenant_a.client()
    for path, name in required:
        full = f"{path}.{name}" if path else name
        incomplete = _without(body, path, name)
        serializer = PlanInput(data=incomplete)
        assert not serializer.is_valid(), full
        assert full in {e["name"] for e in flatten_errors(serializer.errors)}, full
        response = api(admin, "post", "/api/v1/plans", incomplete)
        assert response.status_code == 400, (full, response.content)
        assert full in {p["name"] for p in response.json()["invalid_params"]}, full
    # the whole body is valid, linked to A's own USD add-on (B's is in EUR), and B has no plan
    created = api(admin, "post", "/api/v1/plans", body)
    assert created.status_code == 201, created.content
    assert api(tenant_b.client(), "get", "/api/v1/plans").json()["totalCount"] == 0


def _examples(operation):
    """Every example value an operation's request body or answers carry."""
    contents = list((operation.get("requestBody") or {}).get("content", {}).values())
    for answer in operation.get("responses", {}).values():
        contents += list((answer.get("content") or {}).values())
    return [example["value"] for content in contents for example in content.get("examples", {}).values()]


def test_the_main_flows_show_real_examples(generated):
    """/api/docs/ shows an example for each main flow: ingest, meter query, a plan with a tiered price, a
    subscription, an entitlement value and an invoice."""
    schema, _ = generated
    by_id = {op["operationId"]: op for _, _, op in _operations(schema)}
    for operation_id in (
        "ingestEvents",
        "queryMeter",
        "createPlan",
        "createSubscription",
        "getCustomerEntitlementValue",
        "invoicePendingLinesAction",
    ):
        assert _examples(by_id[operation_id]), operation_id
    assert '"tiered"' in json.dumps(_examples(by_id["createPlan"]))
