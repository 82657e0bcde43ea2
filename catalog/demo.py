"""Demo data for the catalog (idempotent): the AI pricing example.

Two features on the `llm_tokens` meter narrowed to gpt-4o input and output tokens, priced per token
(2.50 and 10.00 USD per million), plus a flat monthly platform fee, in a published plan `ai_pro`.
If the metering app's demo meter is missing, the features still reference the slug `llm_tokens`.
"""

from __future__ import annotations

from catalog import selectors, services
from catalog.models import Feature, PlanVersion
from core.errors import ValidationFailed
from core.models import Organization

ACTOR = "demo_load"
# each feature as `services.feature_create`'s fields
FEATURES = [
    {
        "key": f"gpt4o_{kind}_tokens",
        "name": f"GPT-4o {kind} tokens",
        "meter_slug": "llm_tokens",
        "meter_group_by_filters": {"model": "gpt-4o", "type": kind},
    }
    for kind in ("input", "output")
]


def _token_card(feature_key: str, name: str, amount: str) -> dict:
    """A monthly rate card pricing one token feature per token, with a soft monthly limit."""
    return {
        "type": "usage_based",
        "key": feature_key,
        "name": name,
        "featureKey": feature_key,
        "billingCadence": "P1M",
        "price": {"type": "unit", "amount": amount},
        "entitlementTemplate": {"type": "metered", "usagePeriod": "P1M", "isSoftLimit": True},
    }


def ai_plan_body() -> dict:
    return {
        "name": "AI Pro",
        "description": "Platform fee plus gpt-4o tokens: input 2.50 USD and output 10.00 USD per million.",
        "currency": "USD",
        "billingCadence": "P1M",
        "phases": [
            {
                "key": "standard",
                "name": "Standard",
                "duration": None,
                "rateCards": [
                    {
                        "type": "flat_fee",
                        "key": "platform_fee",
                        "name": "Platform fee",
                        "billingCadence": "P1M",
                        "price": {"type": "flat", "amount": "20", "paymentTerm": "in_advance"},
                    },
                    _token_card("gpt4o_input_tokens", "GPT-4o input tokens", "0.0000025"),
                    _token_card("gpt4o_output_tokens", "GPT-4o output tokens", "0.00001"),
                ],
            }
        ],
    }


def demo_load(org: Organization) -> None:
    for fields in FEATURES:
        if Feature.objects.filter(organization=org, key=fields["key"], archived_at__isnull=True).exists():
            continue
        for check_meter in (True, False):
            try:
                services.feature_create(organization=org, actor=ACTOR, check_meter=check_meter, **fields)
                break
            except ValidationFailed:
                # the metering demo meter is missing (or lacks these dimensions): keep the slug anyway
                if not check_meter:
                    raise
    if PlanVersion.objects.filter(organization=org, key="ai_pro").exists():
        return
    plan = services.plan_create(organization=org, key="ai_pro", data=ai_plan_body(), actor=ACTOR)
    services.plan_publish(organization=org, plan_id=plan.id, actor=ACTOR)
    assert selectors.plan_version_get(organization=org, plan_key="ai_pro").version == 1
