"""What the catalog API's wire carries, as serializers: the schema reads them, they validate every request
body and render every answer (prices as a `type`-discriminated union).

Request bodies are validated by the catalog's own rules, one set for the API, the console and the Lago import
(`catalog.validation`, `catalog.pricing`: floats refused, every problem named by its full path such as
`phases[0].rateCards[1].price.tiers[2].upToAmount`): each input serializer's `to_internal_value` runs them
(with the organization from its context, for feature and add-on references) and hands the service what they
accepted. The fields below describe the same documents for the schema.
"""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.utils import (
    PolymorphicProxySerializer,
    extend_schema_field,
)
from rest_framework import serializers

from catalog.pricing import PAYMENT_TERMS, TIER_MODES, PriceInvalid, dec_str
from catalog.validation import ENTITLEMENT_TYPES, INSTANCE_TYPES, KEY_HELP, RATE_CARD_TYPES, TAX_BEHAVIORS
from core.api_base import BlankAsNullCharField, IsoDateTimeField
from core.errors import ValidationFailed


def invalid(exc: PriceInvalid) -> ValidationFailed:
    return ValidationFailed(str(exc), errors=exc.errors)


def body_object(data: Any) -> dict[str, Any]:
    """A request body that must be a JSON object (else a 400 naming `body`)."""
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.", field="body")
    return data


# --- serializers: what the wire carries ----------------------------------------------------------
def _decimal(**kwargs: Any) -> serializers.CharField:
    kwargs.setdefault("help_text", 'A decimal string, e.g. "0.0025" (numbers are refused).')
    return serializers.CharField(**kwargs)


def _const(value: str) -> serializers.CharField:
    """A discriminator field that only takes `value` (an inline enum, not a named component)."""
    field = serializers.CharField()
    return extend_schema_field({"type": "string", "enum": [value]})(field)  # type: ignore[type-var]


def _one_of(choices: tuple[str, ...] | list[str], **kwargs: Any) -> serializers.ChoiceField:
    field = serializers.ChoiceField(choices=list(choices), **kwargs)
    enum: list[Any] = [*choices, None] if kwargs.get("allow_null") else list(choices)
    return extend_schema_field({"type": "string", "enum": enum})(field)  # type: ignore[type-var]


def _optional_decimal() -> serializers.CharField:
    return _decimal(required=False, allow_null=True)


def _strings_map(**kwargs: Any) -> serializers.DictField:
    return serializers.DictField(child=serializers.CharField(allow_blank=True), **kwargs)


class FlatPriceSerializer(serializers.Serializer):
    type = _const("flat")
    amount = _decimal()
    paymentTerm = serializers.ChoiceField(choices=PAYMENT_TERMS, required=False)


# A usage price's optional minimum and maximum spend per period (a comment, not a docstring: the schema would
# show a docstring as every usage price's description).
class _CommittedPrice(serializers.Serializer):
    minimumAmount = _optional_decimal()
    maximumAmount = _optional_decimal()


class UnitPriceSerializer(_CommittedPrice):
    type = _const("unit")
    amount = _decimal(help_text="Per unit.")


class TierUnitPriceSerializer(serializers.Serializer):
    type = _const("unit")
    amount = _decimal()


class TierFlatPriceSerializer(serializers.Serializer):
    type = _const("flat")
    amount = _decimal()


class PriceTierSerializer(serializers.Serializer):
    upToAmount = _decimal(
        required=False,
        allow_null=True,
        help_text="Inclusive upper bound; null on the last (open-ended) tier.",
    )
    unitPrice = TierUnitPriceSerializer(required=False, allow_null=True)
    flatPrice = TierFlatPriceSerializer(required=False, allow_null=True)


class TieredPriceSerializer(_CommittedPrice):
    type = _const("tiered")
    mode = serializers.ChoiceField(choices=TIER_MODES, help_text="graduated or volume.")
    tiers = PriceTierSerializer(many=True)


class PackagePriceSerializer(_CommittedPrice):
    type = _const("package")
    amount = _decimal(help_text="Per package.")
    quantityPerPackage = _decimal()


class DynamicPriceSerializer(_CommittedPrice):
    type = _const("dynamic")
    multiplier = _decimal(required=False, help_text="Amount = quantity (a cost) x multiplier; default 1.")


class PercentagePriceSerializer(_CommittedPrice):
    type = _const("percentage")
    percentage = _decimal(help_text="0 to 100, of the transaction volume.")
    fixedAmountPerEvent = _optional_decimal()


PRICE_SCHEMA = PolymorphicProxySerializer(
    component_name="Price",
    serializers={
        "flat": FlatPriceSerializer,
        "unit": UnitPriceSerializer,
        "tiered": TieredPriceSerializer,
        "package": PackagePriceSerializer,
        "dynamic": DynamicPriceSerializer,
        "percentage": PercentagePriceSerializer,
    },
    resource_type_field_name="type",
)


@extend_schema_field(PRICE_SCHEMA)
class PriceField(serializers.JSONField):
    """A price document, discriminated by `type` (validated by catalog.pricing.parse_price)."""


class PercentageDiscountSerializer(serializers.Serializer):
    percentage = _decimal()
    correlationId = serializers.CharField(required=False)


class UsageDiscountSerializer(serializers.Serializer):
    quantity = _decimal(help_text="Units free before the price applies.")
    correlationId = serializers.CharField(required=False)


class DiscountsSerializer(serializers.Serializer):
    percentage = PercentageDiscountSerializer(required=False, allow_null=True)
    usage = UsageDiscountSerializer(required=False, allow_null=True)


class CommitmentsSerializer(serializers.Serializer):
    minimumAmount = _optional_decimal()
    maximumAmount = _optional_decimal()


class EntitlementTemplateSerializer(serializers.Serializer):
    type = _one_of(ENTITLEMENT_TYPES)
    usagePeriod = serializers.CharField(required=False, help_text="metered: ISO 8601 duration, e.g. P1M.")
    issueAfterReset = _decimal(required=False, allow_null=True)
    isSoftLimit = serializers.BooleanField(required=False)
    preserveOverageAtReset = serializers.BooleanField(required=False)
    config = serializers.CharField(required=False, help_text="static: a JSON document (as a string).")


class RateCardSerializer(serializers.Serializer):
    type = _one_of(RATE_CARD_TYPES)
    key = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    featureKey = serializers.CharField(required=False, allow_null=True)
    billingCadence = serializers.CharField(
        required=False, allow_null=True, help_text="ISO 8601 duration (P1M); required for usage_based."
    )
    price = PriceField(required=False, allow_null=True)
    paymentTerm = serializers.ChoiceField(choices=PAYMENT_TERMS, required=False, allow_null=True)
    entitlementTemplate = EntitlementTemplateSerializer(required=False, allow_null=True)
    discounts = DiscountsSerializer(required=False, allow_null=True)
    commitments = CommitmentsSerializer(required=False, allow_null=True)
    taxBehavior = _one_of(TAX_BEHAVIORS, required=False, allow_null=True)
    metadata = _strings_map(required=False, allow_null=True)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        """As a request body (a rate card alone): an object, checked whole by the service."""
        return body_object(data)


class PlanPhaseSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    duration = serializers.CharField(
        required=False, allow_null=True, help_text="ISO 8601 duration; null on the last phase."
    )
    rateCards = RateCardSerializer(many=True, required=False)
    metadata = _strings_map(required=False, allow_null=True)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        """As a request body (a phase alone): an object, checked whole by the service."""
        return body_object(data)


class PlanAddonLinkSerializer(serializers.Serializer):
    addonKey = serializers.CharField()
    fromPlanPhase = serializers.CharField(required=False, allow_null=True)
    maxQuantity = serializers.IntegerField(required=False, allow_null=True)


@extend_schema_field(PlanPhaseSerializer(many=True))
class PhasesField(serializers.JSONField):
    """A plan version's stored phases (the canonical JSON catalog.validation wrote), rendered as stored."""


@extend_schema_field(RateCardSerializer(many=True))
class RateCardsField(serializers.JSONField):
    """An add-on version's stored rate cards, rendered as stored."""


@extend_schema_field(PlanAddonLinkSerializer(many=True))
class AddonLinksField(serializers.JSONField):
    """A plan version's stored add-on links, rendered as stored."""


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]})
class FilterValueField(serializers.Field):
    """A feature's group-by filter value: one value, or a list of values (any of them matches)."""

    def to_representation(self, value: Any) -> Any:
        return [str(v) for v in value] if isinstance(value, list) else str(value)


class FeatureInput(serializers.Serializer):
    key = serializers.CharField(help_text=KEY_HELP)
    name = serializers.CharField()
    meterSlug = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    meterGroupByFilters = serializers.DictField(
        child=FilterValueField(),
        required=False,
        allow_null=True,
        help_text='Dimension -> value or list of values (any matches), e.g. {"model": "gpt-4o"}.',
    )
    metadata = _strings_map(required=False, allow_null=True)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        """feature_create's arguments (it names each bad field, and checks the meter and its dimensions)."""
        d = body_object(data)
        return {
            "key": d.get("key"),
            "name": d.get("name"),
            "meter_slug": d.get("meterSlug"),
            "meter_group_by_filters": d.get("meterGroupByFilters"),
            "metadata": d.get("metadata"),
        }


class FeatureOutput(serializers.Serializer):
    id = serializers.CharField()
    key = serializers.CharField()
    name = serializers.CharField()
    meterSlug = BlankAsNullCharField(source="meter_slug")
    meterGroupByFilters = serializers.DictField(source="meter_group_by_filters", child=FilterValueField())
    metadata = _strings_map()
    createdAt = IsoDateTimeField(source="created_at")
    updatedAt = IsoDateTimeField(source="updated_at")
    archivedAt = IsoDateTimeField(source="archived_at", allow_null=True)


# A plan or add-on version's body (create or replace); no docstring, for the schema's sake (see above).
class VersionBody(serializers.Serializer):
    def to_internal_value(self, data: Any) -> dict[str, Any]:
        """{key, data}: the key apart, the rest the version's document (validated whole by the versioned-
        document service against the organization's features and add-ons, each bad field by its path)."""
        d = body_object(data)
        return {"key": d.get("key"), "data": {k: v for k, v in d.items() if k != "key"}}


# What a plan and an add-on version's body both start with (a comment: the schema would show a docstring).
class VersionInput(VersionBody):
    key = serializers.CharField(help_text=KEY_HELP + " Required on create.")
    name = serializers.CharField()
    description = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    currency = serializers.CharField(help_text="ISO 4217 code.")


class PlanInput(VersionInput):
    key = serializers.CharField(help_text=KEY_HELP + " Required on create; cannot change.")
    billingCadence = serializers.CharField(help_text="ISO 8601 duration, e.g. P1M.")
    phases = PlanPhaseSerializer(many=True, required=False)
    addons = PlanAddonLinkSerializer(many=True, required=False, allow_null=True)
    metadata = _strings_map(required=False, allow_null=True)


class PlanUpdateInput(PlanInput):
    key = serializers.CharField(required=False, help_text="If sent, must be the plan's key.")

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        """As PlanInput; a key, if sent, is the plan's own (context `current`: the version updated)."""
        body = super().to_internal_value(data)
        if "key" in data and body["key"] != self.context["current"].key:
            raise ValidationFailed("A plan's key cannot change.", field="key")
        return body


# What a plan version and an add-on version both answer (no docstring, for the schema's sake). Each
# subclass adds its own fields and gives the wire order of all of them in `wire_order`.
class VersionOutput(serializers.Serializer):
    wire_order: ClassVar[tuple[str, ...]]

    id = serializers.CharField()
    key = serializers.CharField()
    version = serializers.IntegerField()
    name = serializers.CharField()
    description = BlankAsNullCharField()
    currency = serializers.CharField()
    metadata = _strings_map()
    createdAt = IsoDateTimeField(source="created_at")
    updatedAt = IsoDateTimeField(source="updated_at")
    publishedAt = IsoDateTimeField(source="published_at", allow_null=True)
    archivedAt = IsoDateTimeField(source="archived_at", allow_null=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        return {name: fields[name] for name in self.wire_order}


_COMMON_HEAD = ("id", "key", "version", "name", "description", "currency")
_COMMON_TAIL = ("createdAt", "updatedAt", "publishedAt", "archivedAt")


class PlanOutput(VersionOutput):
    billingCadence = serializers.CharField(source="billing_cadence")
    status = serializers.CharField(help_text="draft, published or archived (scheduled/active per OpenMeter).")
    phases = PhasesField()
    addons = AddonLinksField()
    effectiveFrom = IsoDateTimeField(source="published_at", allow_null=True)
    effectiveTo = IsoDateTimeField(source="archived_at", allow_null=True)

    wire_order = (
        *_COMMON_HEAD,
        "billingCadence",
        "status",
        "phases",
        "addons",
        "metadata",
        "effectiveFrom",
        "effectiveTo",
        *_COMMON_TAIL,
    )


class AddonInput(VersionInput):
    key = serializers.CharField(help_text=KEY_HELP + " Required on create; ignored on update.")
    instanceType = serializers.ChoiceField(choices=INSTANCE_TYPES, required=False)
    rateCards = RateCardSerializer(many=True, required=False)
    metadata = _strings_map(required=False, allow_null=True)


class AddonUpdateInput(AddonInput):
    key = serializers.CharField(required=False, help_text="Ignored.")


class AddonOutput(VersionOutput):
    instanceType = serializers.CharField(source="instance_type")
    status = serializers.CharField()
    rateCards = RateCardsField(source="rate_cards")

    wire_order = (*_COMMON_HEAD, "instanceType", "status", "rateCards", "metadata", *_COMMON_TAIL)


class PricePreviewInput(serializers.Serializer):
    price = PriceField()
    quantity = _decimal(required=False, help_text='Usage quantity (default "0").')
    currency = serializers.CharField(
        required=False, allow_null=True, help_text="Default: the organization's."
    )
    discounts = DiscountsSerializer(required=False, allow_null=True)
    commitments = CommitmentsSerializer(required=False, allow_null=True)
    eventCount = serializers.IntegerField(
        required=False, help_text="percentage prices: events in the volume."
    )

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        """price_preview's arguments (it parses them all and names every bad field)."""
        d = body_object(data)
        return {
            "price": d.get("price"),
            "quantity": d.get("quantity", "0"),
            "currency": d.get("currency") or self.context["organization"].default_currency,
            "discounts": d.get("discounts"),
            "commitments": d.get("commitments"),
            "event_count": d.get("eventCount", 0),
        }


class DecimalStringField(serializers.CharField):
    """A computed decimal, answered in its canonical form ("1000", "0.0000025", "0")."""

    def to_representation(self, value: Any) -> str:
        return dec_str(value)


# One line of a preview's rating (a catalog.pricing Line).
class PriceLineOutput(serializers.Serializer):
    type = serializers.CharField(source="kind")
    description = serializers.CharField()
    quantity = DecimalStringField(allow_null=True)
    unitAmount = DecimalStringField(source="unit_amount", allow_null=True)
    amount = DecimalStringField()
    tier = serializers.IntegerField(allow_null=True)


# A catalog.pricing Preview.
class PricePreviewOutput(serializers.Serializer):
    amount = serializers.CharField(help_text="Rounded once to the currency.")
    unroundedAmount = DecimalStringField(source="unrounded")
    currency = serializers.CharField()
    lines = PriceLineOutput(source="rating.lines", many=True)
