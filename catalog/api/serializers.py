"""What the catalog API's wire carries, as serializers: the schema reads them, they validate every request
body and render every answer (prices as a `type`-discriminated union).

A plan, add-on, phase or rate-card body is checked in two layers, one after the other:

1. its serializer's declared fields check the body's shape, what the schema says: JSON types (a string is
   not a number, an amount is a decimal string or a whole number, never a fraction), required fields,
   enums, key patterns, the price union by `type`, nested lists and objects (`checked_body`);
2. the catalog's own rules (`catalog.validation`, `catalog.pricing`), the only ones the console and the Lago
   import use, then read the RAW body (never the fields' coerced values, so a float amount still reaches
   them as a float and is refused): decimal syntax and ranges, unknown fields, references to features and
   add-ons, and every cross-field rule.

If the fields refuse, the rules read the body too, so one 400 lists every problem of both layers, each
named once by its full path (`phases[0].rateCards[1].price.tiers[2].upToAmount`; the rules' reason where
both name the same field). The price preview's and a feature's bodies take the same two layers: their
fields first (`checked_body`), then the pricing rules or the feature service, on the raw body.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from django.core.validators import RegexValidator
from drf_spectacular.utils import (
    PolymorphicProxySerializer,
    extend_schema_field,
)
from rest_framework import serializers

from catalog.pricing import PAYMENT_TERMS, TIER_MODES, PriceInvalid, dec_str
from catalog.validation import (
    ENTITLEMENT_TYPES,
    INSTANCE_TYPES,
    KEY_HELP,
    KEY_RE,
    RATE_CARD_TYPES,
    TAX_BEHAVIORS,
)
from core.api_base import BlankAsNullCharField, IsoDateTimeField
from core.errors import ValidationFailed, errors_summary, flatten_errors, merge_problems


def invalid(exc: PriceInvalid) -> ValidationFailed:
    return ValidationFailed(str(exc), errors=exc.errors)


def body_object(data: Any) -> dict[str, Any]:
    """A request body that must be a JSON object (else a 400 naming `body`)."""
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.", field="body")
    return data


def checked_body(
    body: serializers.Serializer, rules: Callable[[dict[str, Any]], object] | None, prefix: str = ""
) -> dict[str, Any]:
    """The raw request body, once `body`'s declared fields accept its shape (layer 1 above).

    `rules` are the catalog's rules for the same body (layer 2: they raise ValidationFailed). They run in
    the service that saves the body; only when the fields refuse do they run here as well, so that the 400
    lists both layers' problems at once. `prefix` names the body in the rules' paths (`rateCard`)."""
    data = body_object(body.initial_data)
    if body.is_valid():
        return data
    problems = flatten_errors(body.errors, prefix)
    found: list[dict[str, str]] = []
    if rules is not None:
        try:
            rules(data)
        except ValidationFailed as exc:
            found = exc.errors
    merged = merge_problems(found, problems)
    raise ValidationFailed(errors_summary(merged), field=merged[0]["name"], errors=merged)


# --- fields: what the schema says each value is, and nothing looser -------------------------------
class TextField(serializers.CharField):
    """A JSON string (a number is refused, not turned into text)."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class AmountField(serializers.CharField):
    """A decimal as a JSON string ("0.0025"); a whole JSON number is read as the catalog reads it, a
    fraction (a float, which may already have lost digits) or a boolean never. Its syntax and range are
    the catalog's rules' to check, on the raw value."""

    default_error_messages = {
        "invalid": "Must be a decimal string.",
        "fraction": 'Must be a decimal string such as "0.5", not a JSON number with a fraction.',
    }

    def to_internal_value(self, data: Any) -> str:
        if isinstance(data, (bool, float)):
            self.fail("fraction")
        if not isinstance(data, (str, int)):
            self.fail("invalid")
        return str(data)


class FlagField(serializers.BooleanField):
    """A JSON boolean (not "yes", 1 or "true")."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class WholeNumberField(serializers.IntegerField):
    """A JSON integer (not "3" or 3.0)."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return data


class StringMapField(serializers.DictField):
    """An object of string values, refused as a whole (as the catalog's rules name it) when it is not."""

    default_error_messages = {"invalid": "Must be an object of string values."}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=TextField(allow_blank=True), **kwargs)

    def to_internal_value(self, data: Any) -> dict[str, str]:
        if not isinstance(data, Mapping) or not all(isinstance(v, str) for v in data.values()):
            self.fail("invalid")
        return {str(k): v for k, v in data.items()}


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "description": "A JSON document, as a string."},
            {"type": "object", "additionalProperties": True},
            {"type": "array", "items": {}},
        ]
    }
)
class JsonDocumentField(serializers.Field):
    """A static entitlement's config: a JSON document as a string, or the object or array itself (stored
    as its JSON text)."""

    default_error_messages = {"invalid": "Must be a JSON document (an object or a JSON string)."}

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, (str, dict, list)):
            self.fail("invalid")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


def _key(**kwargs: Any) -> TextField:
    kwargs.setdefault("help_text", KEY_HELP)
    return TextField(max_length=64, validators=[RegexValidator(KEY_RE, KEY_HELP)], **kwargs)


def _text(**kwargs: Any) -> TextField:
    """Optional text that may be null or blank (the catalog stores it blank)."""
    return TextField(required=False, allow_null=True, allow_blank=True, **kwargs)


def _decimal(**kwargs: Any) -> AmountField:
    kwargs.setdefault("help_text", 'A decimal string, e.g. "0.0025" (numbers with a fraction are refused).')
    return AmountField(**kwargs)


class ConstField(TextField):
    """A discriminator that only takes `value` (an inline enum in the schema, not a named component)."""

    def __init__(self, value: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.value = value
        self.error_messages["const"] = f'Must be "{value}".'

    def to_internal_value(self, data: Any) -> str:
        text = super().to_internal_value(data)
        if text != self.value:
            self.fail("const")
        return text


def _const(value: str, **kwargs: Any) -> ConstField:
    return extend_schema_field({"type": "string", "enum": [value]})(ConstField(value, **kwargs))  # type: ignore[type-var]


def _one_of(choices: tuple[str, ...] | list[str], **kwargs: Any) -> serializers.ChoiceField:
    field = serializers.ChoiceField(choices=list(choices), **kwargs)
    enum: list[Any] = [*choices, None] if kwargs.get("allow_null") else list(choices)
    return extend_schema_field({"type": "string", "enum": enum})(field)  # type: ignore[type-var]


def _optional_decimal(**kwargs: Any) -> AmountField:
    return _decimal(required=False, allow_null=True, **kwargs)


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
    type = _const("unit", required=False)
    amount = _decimal()


class TierFlatPriceSerializer(serializers.Serializer):
    type = _const("flat", required=False)
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
    tiers = PriceTierSerializer(many=True, allow_empty=False)


class PackagePriceSerializer(_CommittedPrice):
    type = _const("package")
    amount = _decimal(help_text="Per package.")
    quantityPerPackage = _decimal()


class DynamicPriceSerializer(_CommittedPrice):
    type = _const("dynamic")
    multiplier = _optional_decimal(help_text="Amount = quantity (a cost) x multiplier; default 1.")


class PercentagePriceSerializer(_CommittedPrice):
    type = _const("percentage")
    percentage = _decimal(help_text="0 to 100, of the transaction volume.")
    fixedAmountPerEvent = _optional_decimal()
    perTransactionMinimumAmount = _optional_decimal(help_text="Rated transaction by transaction: at least.")
    perTransactionMaximumAmount = _optional_decimal(help_text="Rated transaction by transaction: at most.")
    freeEvents = _optional_decimal(help_text="The first events of a period are free (a whole number).")
    freeAmount = _optional_decimal(help_text="The first volume of a period is free.")


PRICE_SHAPES: dict[str, type[serializers.Serializer]] = {
    "flat": FlatPriceSerializer,
    "unit": UnitPriceSerializer,
    "tiered": TieredPriceSerializer,
    "package": PackagePriceSerializer,
    "dynamic": DynamicPriceSerializer,
    "percentage": PercentagePriceSerializer,
}
PRICE_SCHEMA = PolymorphicProxySerializer(
    component_name="Price",
    serializers={kind: shape for kind, shape in PRICE_SHAPES.items()},  # (typed as the proxy takes it)
    resource_type_field_name="type",
)


@extend_schema_field(PRICE_SCHEMA)
class PriceField(serializers.Field):
    """A price document, discriminated by `type`: the fields of that type's serializer check its shape
    (errors nested under the price's path); an answer renders the stored document as it is."""

    default_error_messages = {
        "invalid": "Must be an object.",
        "type": f"Must be one of: {', '.join(PRICE_SHAPES)}.",
    }

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, Mapping):
            self.fail("invalid")
        kind = data.get("type")
        shape = PRICE_SHAPES.get(kind) if isinstance(kind, str) else None
        if shape is None:
            raise serializers.ValidationError({"type": [self.error_messages["type"]]})
        price = shape(data=data)
        if not price.is_valid():
            raise serializers.ValidationError(price.errors)
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class PercentageDiscountSerializer(serializers.Serializer):
    percentage = _decimal()
    correlationId = _text()


class UsageDiscountSerializer(serializers.Serializer):
    quantity = _decimal(help_text="Units free before the price applies.")
    correlationId = _text()


class DiscountsSerializer(serializers.Serializer):
    percentage = PercentageDiscountSerializer(required=False, allow_null=True)
    usage = UsageDiscountSerializer(required=False, allow_null=True)


class CommitmentsSerializer(serializers.Serializer):
    minimumAmount = _optional_decimal()
    maximumAmount = _optional_decimal()


class EntitlementTemplateSerializer(serializers.Serializer):
    type = _one_of(ENTITLEMENT_TYPES)
    usagePeriod = TextField(
        required=False, allow_null=True, help_text="metered: ISO 8601 duration, e.g. P1M."
    )
    issueAfterReset = _decimal(required=False, allow_null=True)
    isSoftLimit = FlagField(required=False)
    preserveOverageAtReset = FlagField(required=False)
    config = JsonDocumentField(required=False, help_text="static: a JSON document.")


class RateCardSerializer(serializers.Serializer):
    type = _one_of(RATE_CARD_TYPES)
    key = _key()
    name = TextField()
    description = _text()
    featureKey = _text()
    billingCadence = _text(help_text="ISO 8601 duration (P1M); required for usage_based.")
    price = PriceField(required=False, allow_null=True)
    paymentTerm = serializers.ChoiceField(choices=PAYMENT_TERMS, required=False, allow_null=True)
    entitlementTemplate = EntitlementTemplateSerializer(required=False, allow_null=True)
    discounts = DiscountsSerializer(required=False, allow_null=True)
    commitments = CommitmentsSerializer(required=False, allow_null=True)
    taxBehavior = _one_of(TAX_BEHAVIORS, required=False, allow_null=True)
    metadata = StringMapField(required=False, allow_null=True)


class PlanPhaseSerializer(serializers.Serializer):
    key = _key()
    name = TextField()
    description = _text()
    duration = _text(help_text="ISO 8601 duration; null on the last phase.")
    rateCards = RateCardSerializer(many=True, required=False, allow_null=True)
    metadata = StringMapField(required=False, allow_null=True)


class PlanAddonLinkSerializer(serializers.Serializer):
    addonKey = TextField()
    fromPlanPhase = _text()
    maxQuantity = WholeNumberField(required=False, allow_null=True, min_value=1)


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

    default_error_messages = {"invalid": "Must be a string or a list of strings."}

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) or (isinstance(data, list) and all(isinstance(v, str) for v in data)):
            return data
        self.fail("invalid")

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
    metadata = StringMapField(required=False, allow_null=True)

    @staticmethod
    def arguments(raw: dict[str, Any]) -> dict[str, Any]:
        """feature_create's arguments from the raw body its fields accepted (the service checks the meter
        and its dimensions, naming each bad field)."""
        return {
            "key": raw.get("key"),
            "name": raw.get("name"),
            "meter_slug": raw.get("meterSlug"),
            "meter_group_by_filters": raw.get("meterGroupByFilters"),
            "metadata": raw.get("metadata"),
        }


class FeatureOutput(serializers.Serializer):
    id = serializers.CharField()
    key = serializers.CharField()
    name = serializers.CharField()
    meterSlug = BlankAsNullCharField(source="meter_slug")
    meterGroupByFilters = serializers.DictField(source="meter_group_by_filters", child=FilterValueField())
    metadata = StringMapField()
    createdAt = IsoDateTimeField(source="created_at")
    updatedAt = IsoDateTimeField(source="updated_at")
    archivedAt = IsoDateTimeField(source="archived_at", allow_null=True)


# What a plan and an add-on version's body both start with (a comment: the schema would show a docstring).
class VersionInput(serializers.Serializer):
    key = _key(help_text=KEY_HELP + " Required on create.")
    name = TextField()
    description = _text()
    currency = TextField(help_text="ISO 4217 code.")


class PlanInput(VersionInput):
    key = _key(help_text=KEY_HELP + " Required on create; cannot change.")
    billingCadence = TextField(help_text="ISO 8601 duration, e.g. P1M.")
    phases = PlanPhaseSerializer(many=True, required=False, allow_null=True)
    addons = PlanAddonLinkSerializer(many=True, required=False, allow_null=True)
    metadata = StringMapField(required=False, allow_null=True)


class PlanUpdateInput(PlanInput):
    key = _key(required=False, help_text="If sent, must be the plan's key.")

    def validate_key(self, value: str) -> str:
        """A key, if sent, is the plan's own (context `current`: the version updated)."""
        if value != self.context["current"].key:
            raise serializers.ValidationError("A plan's key cannot change.")
        return value


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
    metadata = StringMapField()
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
    key = _key(help_text=KEY_HELP + " Required on create; ignored on update.")
    instanceType = serializers.ChoiceField(choices=INSTANCE_TYPES, required=False)
    rateCards = RateCardSerializer(many=True, required=False)
    metadata = StringMapField(required=False, allow_null=True)


class AddonUpdateInput(AddonInput):
    key = TextField(required=False, help_text="Ignored.")


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

    def arguments(self, raw: dict[str, Any]) -> dict[str, Any]:
        """price_preview's arguments from the raw body its fields accepted (it parses them all and names
        every bad field)."""
        return {
            "price": raw.get("price"),
            "quantity": raw.get("quantity", "0"),
            "currency": raw.get("currency") or self.context["organization"].default_currency,
            "discounts": raw.get("discounts"),
            "commitments": raw.get("commitments"),
            "event_count": raw.get("eventCount", 0),
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
