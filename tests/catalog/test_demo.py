"""The catalog demo loader: the AI pricing example, idempotent."""

from decimal import Decimal

from catalog.demo import demo_load
from catalog.models import Feature, PlanVersion
from catalog.pricing import price_total
from catalog.selectors import plan_rate_cards, plan_version_get, rate_card_rate
from core.demo import DEMO_LOADERS
from core.models import AuditLog


def test_registered_and_idempotent(tenant_a, tenant_b):
    assert demo_load in DEMO_LOADERS
    demo_load(tenant_a.org)
    counts = (Feature.objects.count(), PlanVersion.objects.count(), AuditLog.objects.count())
    demo_load(tenant_a.org)
    assert (Feature.objects.count(), PlanVersion.objects.count(), AuditLog.objects.count()) == counts
    assert not PlanVersion.objects.filter(organization=tenant_b.org).exists()


def test_ai_pricing_example(tenant_a):
    demo_load(tenant_a.org)
    features = {f.key: f for f in Feature.objects.filter(organization=tenant_a.org)}
    assert features["gpt4o_output_tokens"].meter_slug == "llm_tokens"
    assert features["gpt4o_output_tokens"].meter_group_by_filters == {"model": "gpt-4o", "type": "output"}
    plan = plan_version_get(organization=tenant_a.org, plan_key="ai_pro")
    cards = {c.key: c for c in plan_rate_cards(plan=plan)}
    # 2M input tokens at 2.50/1M = 5.00; 500k output tokens at 10.00/1M = 5.00; platform fee 20
    assert price_total(
        rate_card_rate(cards["gpt4o_input_tokens"], quantity=Decimal(2_000_000)), "USD"
    ) == Decimal("5.00")
    assert price_total(
        rate_card_rate(cards["gpt4o_output_tokens"], quantity=Decimal(500_000)), "USD"
    ) == Decimal("5.00")
    assert rate_card_rate(cards["platform_fee"], quantity=Decimal(0)).amount == Decimal(20)
