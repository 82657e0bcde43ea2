"""A Python client generated from the live /api/schema/ by openapi-python-client drives one whole flow:
meter, events, feature, plan with a graduated price, publish, customer, subscription, entitlement value,
on-demand invoice, invoice list. Every call goes through the generated code (no hand-written HTTP); a
second organization's key sees none of it."""

from __future__ import annotations

import importlib
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

PACKAGE = "meterline_generated_client"


@pytest.fixture
def api(client, tmp_path):
    """The generated package, built into a temporary folder from the schema the server serves."""
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    spec = tmp_path / "openapi.json"
    spec.write_bytes(schema.content)
    config = tmp_path / "config.yml"
    config.write_text("post_hooks: []\n")
    generator = Path(sys.executable).parent / "openapi-python-client"
    done = subprocess.run(
        [
            str(generator),
            "generate",
            "--path",
            str(spec),
            "--output-path",
            str(tmp_path / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def op(api, tag: str, name: str):
    return importlib.import_module(f"{api.__name__}.api.{tag}.{name}")


def ok(response, status: int = 200):
    assert response.status_code == status, (response.status_code, response.content[:500])
    return response.parsed


def test_generated_client_drives_a_whole_flow(api, live_server, tenant_a, tenant_b):
    from importlib import import_module

    m = import_module(f"{api.__name__}.models")
    a = api.AuthenticatedClient(base_url=live_server.url, token=tenant_a.keys["admin"])
    b = api.AuthenticatedClient(base_url=live_server.url, token=tenant_b.keys["admin"])
    now = datetime.now(UTC).replace(microsecond=0)

    # a meter, and the other organization's meter with the same slug
    for c in (a, b):
        meter = ok(
            op(api, "metering", "create_meter").sync_detailed(
                client=c,
                body=m.MeterCreateInputRequest(
                    slug="tokens_total",
                    event_type="prompt",
                    aggregation=m.AggregationEnum.SUM,
                    value_property="$.tokens",
                ),
            ),
            201,
        )
        assert meter.slug == "tokens_total" and meter.aggregation == m.AggregationEnum.SUM

    # a feature and a plan: a flat fee in advance and a graduated price on tokens, with a metered entitlement
    feature = ok(
        op(api, "catalog", "create_feature").sync_detailed(
            client=a,
            body=m.FeatureInputRequest(key="gpt_tokens", name="GPT tokens", meter_slug="tokens_total"),
        ),
        201,
    )
    assert feature.key == "gpt_tokens"
    graduated = m.TieredPriceRequest(
        type_="tiered",
        mode=m.ModeEnum.GRADUATED,
        tiers=[
            m.PriceTierRequest(
                up_to_amount="100", unit_price=m.TierUnitPriceRequest(type_="unit", amount="0.10")
            ),
            m.PriceTierRequest(
                up_to_amount=None, unit_price=m.TierUnitPriceRequest(type_="unit", amount="0.05")
            ),
        ],
    )
    plan = ok(
        op(api, "catalog", "create_plan").sync_detailed(
            client=a,
            body=m.PlanInputRequest(
                key="pro",
                name="Pro",
                currency="USD",
                billing_cadence="P1M",
                phases=[
                    m.PlanPhaseRequest(
                        key="default",
                        name="Default",
                        rate_cards=[
                            m.RateCardRequest(
                                type_=m.RateCardTypeEnum.FLAT_FEE,
                                key="platform",
                                name="Platform",
                                billing_cadence="P1M",
                                price=m.FlatPriceRequest(
                                    type_="flat", amount="49", payment_term=m.PaymentTermEnum.IN_ADVANCE
                                ),
                            ),
                            m.RateCardRequest(
                                type_=m.RateCardTypeEnum.USAGE_BASED,
                                key="gpt_tokens",
                                name="GPT tokens",
                                feature_key="gpt_tokens",
                                billing_cadence="P1M",
                                price=graduated,
                                entitlement_template=m.EntitlementTemplateRequest(
                                    type_=m.EntitlementTypeEnum.METERED,
                                    usage_period="P1M",
                                    issue_after_reset="1000",
                                ),
                            ),
                        ],
                    )
                ],
            ),
        ),
        201,
    )
    assert plan.status == "draft" and plan.phases[0].rate_cards[1].price.mode == m.ModeEnum.GRADUATED
    published = ok(op(api, "catalog", "publish_plan").sync_detailed(plan.id, client=a))
    assert published.status in ("active", "published") and published.published_at is not None

    # a customer and a subscription that started an hour ago
    customer = ok(
        op(api, "billing", "create_customer").sync_detailed(
            client=a,
            body=m.CustomerInputRequest(
                name="ACME",
                key="acme",
                currency="USD",
                usage_attribution=m.UsageAttributionRequest(subject_keys=["customer-1"]),
            ),
        ),
        201,
    )
    subscription = ok(
        op(api, "billing", "create_subscription").sync_detailed(
            client=a,
            body=m.SubscriptionListCreateInputRequest(
                customer_key="acme", plan=m.PlanRefRequest(key="pro"), active_from=now - timedelta(hours=1)
            ),
        ),
        201,
    )
    assert subscription.customer_id == customer.id and subscription.plan.key == "pro"
    assert sorted(i.key for i in subscription.phases[0].items) == ["gpt_tokens", "platform"]

    # usage: 150 tokens in two events (the first sent twice: counted once), and one for an unknown subject
    events = [
        m.CloudEventRequest(
            id=f"evt-{n}",
            source="app",
            specversion="1.0",
            type_="prompt",
            subject=subject,
            time=now - timedelta(minutes=10),
            data={"tokens": tokens},
        )
        for n, subject, tokens in ((1, "customer-1", 100), (2, "customer-1", 50), (3, "someone-else", 7))
    ]
    assert op(api, "metering", "ingest_events").sync_detailed(client=a, body=events).status_code == 204
    assert op(api, "metering", "ingest_events").sync_detailed(client=a, body=events[0]).status_code == 204

    query = ok(
        op(api, "metering", "query_meter").sync_detailed(
            "tokens_total", client=a, subject=["customer-1"], from_=now - timedelta(hours=1)
        )
    )
    assert [row.value for row in query.data] == [150.0]

    value = ok(
        op(api, "billing", "get_customer_entitlement_value_v2").sync_detailed("acme", "gpt_tokens", client=a)
    )
    assert (value.has_access, value.usage, value.balance) == (True, 150, 850)
    missing = op(api, "billing", "get_customer_entitlement_value_v2").sync_detailed(
        "acme", "gpt_tokens", client=b
    )
    assert missing.status_code == 404 and missing.parsed.status == 404

    # an on-demand invoice, then the invoice list
    [invoice] = ok(
        op(api, "invoicing", "invoice_pending_lines_action").sync_detailed(
            client=a, body=m.InvoiceOnDemandInputRequest(customer_id="acme")
        ),
        201,
    )
    assert invoice.customer_id == customer.id and invoice.currency == "USD"
    # the fee in advance (49) and the usage so far, graduated: 100 x 0.10 + 50 x 0.05 = 12.5
    assert invoice.totals["total"] == "61.5"
    listed = ok(op(api, "invoicing", "list_invoices").sync_detailed(client=a, customer_id=customer.id))
    assert listed.total_count == 1 and [i.id for i in listed.items] == [invoice.id]
    other = ok(op(api, "invoicing", "list_invoices").sync_detailed(client=b))
    assert other.total_count == 0 and other.items == []
    a.get_httpx_client().close()
    b.get_httpx_client().close()
