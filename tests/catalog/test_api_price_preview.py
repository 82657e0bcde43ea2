"""POST /api/v1/prices/preview: the editor's live preview, also usable from scripts."""

import json

URL = "/api/v1/prices/preview"
PACKAGE = {"type": "package", "amount": "100", "quantityPerPackage": "10"}


def post(client, body):
    return client.post(URL, data=json.dumps(body), content_type="application/json")


def test_preview_issue_example(tenant_a):
    # 121 units, first 10 free -> 111 billable -> ceil(11.1) = 12 packages x 100 = 1200
    body = {
        "price": PACKAGE,
        "quantity": "121",
        "currency": "USD",
        "discounts": {"usage": {"quantity": "10"}},
    }
    response = post(tenant_a.client("read"), body)
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["amount"] == "1200.00"
    assert data["currency"] == "USD"
    assert [line["type"] for line in data["lines"]] == ["usage_discount", "package"]
    assert data["lines"][1] == {
        "type": "package",
        "description": "12 packages of 10 x 100",
        "quantity": "12",
        "unitAmount": "100",
        "amount": "1200",
        "tier": None,
    }
    # plus 10% off: 1200 - 120 = 1080
    body["discounts"]["percentage"] = {"percentage": "10"}
    assert post(tenant_a.client("read"), body).json()["amount"] == "1080.00"


def test_preview_graduated_lines_and_rounding(tenant_a):
    price = {
        "type": "tiered",
        "mode": "graduated",
        "tiers": [
            {"upToAmount": "1000", "unitPrice": {"type": "unit", "amount": "0.01"}},
            {
                "upToAmount": "5000",
                "unitPrice": {"type": "unit", "amount": "0.005"},
                "flatPrice": {"type": "flat", "amount": "2"},
            },
            {"upToAmount": None, "unitPrice": {"type": "unit", "amount": "0.0011"}},
        ],
    }
    # 1000 x 0.01 = 10; 2 + 4000 x 0.005 = 22; 5 x 0.0011 = 0.0055; total 32.0055 -> 32.01 (half up)
    data = post(tenant_a.client("read"), {"price": price, "quantity": "5005", "currency": "USD"}).json()
    assert data["amount"] == "32.01"
    assert data["unroundedAmount"] == "32.0055"
    assert [(line["tier"], line["amount"]) for line in data["lines"]] == [
        (1, "10"),
        (2, "2"),
        (2, "20"),
        (3, "0.0055"),
    ]
    # JPY has no decimals: 32.0055 -> 32
    assert (
        post(tenant_a.client("read"), {"price": price, "quantity": "5005", "currency": "JPY"}).json()[
            "amount"
        ]
        == "32"
    )


def test_preview_currency_defaults_to_organization(tenant_a):
    data = post(tenant_a.client("read"), {"price": {"type": "unit", "amount": "2"}, "quantity": "3"}).json()
    assert data == {"amount": "6.00", "unroundedAmount": "6", "currency": "USD", "lines": data["lines"]}


def test_preview_percentage_with_events(tenant_a):
    body = {
        "price": {"type": "percentage", "percentage": "1.3", "fixedAmountPerEvent": "0.25"},
        "quantity": "1000",
        "eventCount": 4,
        "currency": "EUR",
    }
    # 13 + 1 = 14
    assert post(tenant_a.client("read"), body).json()["amount"] == "14.00"


def test_preview_errors_name_fields(tenant_a):
    body = {
        "price": {
            "type": "tiered",
            "mode": "volume",
            "tiers": [{"upToAmount": 10, "unitPrice": {"amount": 0.5}}],
        },
        "quantity": 1.5,
        "currency": "XXQ",
    }
    response = post(tenant_a.client("read"), body)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    names = {p["name"] for p in response.json()["invalid_params"]}
    assert names == {"price.tiers[0].upToAmount", "price.tiers[0].unitPrice.amount", "quantity", "currency"}


def test_preview_requires_read_scope(tenant_a, client):
    body = {"price": {"type": "unit", "amount": "1"}, "quantity": "1"}
    assert post(tenant_a.client("ingest"), body).status_code == 403
    assert post(client, body).status_code == 401
    assert post(tenant_a.client("read"), ["not", "an", "object"]).status_code == 400


def test_preview_price_union_and_field_types_are_checked_by_the_serializer(tenant_a, tenant_b):
    """An unknown price `type` is refused by the price union (naming `price.type`), a string event count by
    its field, both in one 400; a good body still prices for each organization in its own currency."""
    response = post(tenant_a.client("read"), {"price": {"type": "nope"}, "eventCount": "four"})
    assert response.status_code == 400
    names = {p["name"] for p in response.json()["invalid_params"]}
    assert {"price.type", "eventCount"} <= names
    good = {"price": {"type": "unit", "amount": "0.5"}, "quantity": "3"}
    assert post(tenant_a.client("read"), good).json()["amount"] == "1.50"
    assert post(tenant_b.client("read"), good).status_code == 200
