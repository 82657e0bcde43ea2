"""What the entitlement and grant APIs' wire carries: OpenMeter's shapes (EntitlementV2, grants, values,
history) and the request bodies, as serializers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.models import Entitlement, EntitlementType, Grant
from billing.periods import period_at
from billing.selectors import EntitlementValue
from core import limits
from core.api_base import ScheduleDateTimeField
from core.errors import ValidationFailed

NAMED_INTERVALS = {"P1D": "DAY", "P1W": "WEEK", "P1M": "MONTH", "P1Y": "YEAR"}


# --- serializers: OpenMeter's shapes, rendered from the models and the domain's values -------------------
@extend_schema_field(OpenApiTypes.NUMBER)
class NumberField(serializers.JSONField):
    """A JSON number (OpenMeter sends balances as numbers): a Decimal becomes an int when integral, else a
    float."""

    def to_representation(self, value: Any) -> Any:
        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() else float(value)
        return value


class OmittingSerializer(serializers.Serializer):
    """A serializer that leaves out the fields `absent(instance)` names, as OpenMeter does (the metered
    fields of a static entitlement, a grant's expiration when it has none)."""

    def absent(self, instance: Any) -> set[str]:
        return set()

    def to_representation(self, instance: Any) -> dict[str, Any]:
        skip = self.absent(instance)
        out: dict[str, Any] = {}
        for field in self._readable_fields:
            name = str(field.field_name)
            if name not in skip:
                value = field.get_attribute(instance)
                out[name] = None if value is None else field.to_representation(value)
        return out


class UsagePeriodOutput(serializers.Serializer):
    """A recurring period: OpenMeter's name for its interval where there is one, and its anchor."""

    interval = serializers.SerializerMethodField(help_text="DAY, WEEK, MONTH, YEAR or an ISO 8601 duration.")
    anchor = serializers.DateTimeField(source="usage_period_anchor", allow_null=True)
    interval_attribute = "usage_period_interval"

    def get_interval(self, obj: Any) -> str:
        value = getattr(obj, self.interval_attribute)
        return NAMED_INTERVALS.get(value, value)


class RecurrenceOutput(UsagePeriodOutput):
    """A grant's recurrence (the same shape as an entitlement's usage period)."""

    anchor = serializers.DateTimeField(source="recurrence_anchor", allow_null=True)
    interval_attribute = "recurrence_interval"


class FromToOutput(serializers.Serializer):
    from_ = serializers.DateTimeField()
    to = serializers.DateTimeField()


FromToOutput._declared_fields["from"] = FromToOutput._declared_fields.pop("from_")


class IssueOutput(serializers.Serializer):
    amount = NumberField(source="issue_after_reset")
    priority = serializers.IntegerField(source="issue_after_reset_priority")


METERED_FIELDS = {
    "isSoftLimit",
    "preserveOverageAtReset",
    "issueAfterReset",
    "issueAfterResetPriority",
    "usagePeriod",
    "currentUsagePeriod",
    "measureUsageFrom",
    "lastReset",
    "issue",
}


class EntitlementOutput(OmittingSerializer):
    """An entitlement (OpenMeter's EntitlementV2): the metered fields only on `metered`, `config` only on
    `static`."""

    id = serializers.CharField()
    type = serializers.ChoiceField(choices=EntitlementType.values)
    featureId = serializers.SerializerMethodField()
    featureKey = serializers.CharField(source="feature_key")
    customerId = serializers.CharField(source="customer_id")
    customerKey = serializers.CharField(source="customer.key", allow_null=True)
    subscriptionId = serializers.CharField(source="subscription_id", allow_null=True)
    metadata = serializers.DictField(child=serializers.CharField(allow_blank=True))
    activeFrom = serializers.DateTimeField(source="active_from", allow_null=True)
    activeTo = serializers.DateTimeField(source="active_to", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")
    deletedAt = serializers.DateTimeField(source="deleted_at", allow_null=True)
    config = serializers.CharField(required=False, allow_null=True, help_text="static: a JSON document.")
    isSoftLimit = serializers.BooleanField(source="is_soft_limit", required=False)
    preserveOverageAtReset = serializers.BooleanField(source="preserve_overage_at_reset", required=False)
    issueAfterReset = NumberField(source="issue_after_reset", required=False, allow_null=True)
    issueAfterResetPriority = serializers.IntegerField(
        source="issue_after_reset_priority", required=False, allow_null=True
    )
    usagePeriod = UsagePeriodOutput(source="*", required=False)
    currentUsagePeriod = FromToOutput(source="current_usage_period", required=False)
    measureUsageFrom = serializers.DateTimeField(source="measure_usage_from", required=False, allow_null=True)
    lastReset = serializers.DateTimeField(source="last_reset", required=False, allow_null=True)
    issue = IssueOutput(source="*", required=False)

    def get_featureId(self, ent: Entitlement) -> str:
        return ent.feature_id or ent.feature_key

    def absent(self, ent: Entitlement) -> set[str]:
        skip = set() if ent.type == EntitlementType.STATIC else {"config"}
        if ent.type != EntitlementType.METERED or not ent.usage_period_anchor:
            return skip | METERED_FIELDS
        return skip | ({"issue"} if ent.issue_after_reset is None else set())

    def to_representation(self, ent: Entitlement) -> dict[str, Any]:
        if ent.type == EntitlementType.METERED and ent.usage_period_anchor:
            now = max(timezone.now(), ent.active_from)
            current = period_at(ent.usage_period_anchor, ent.usage_period_interval, now, ent.timezone)
            ent.current_usage_period = {"from": current.start, "to": current.end}  # type: ignore[attr-defined]
            ent.last_reset = max([current.start, *[r.at for r in ent.resets.all() if r.at <= now]])  # type: ignore[attr-defined]
        return super().to_representation(ent)


class ExpirationOutput(serializers.Serializer):
    duration = serializers.CharField(source="expiration_duration")
    count = serializers.IntegerField(source="expiration_count")


class GrantOutput(OmittingSerializer):
    """A grant (OpenMeter's EntitlementGrantV2): `expiration` and `recurrence` only when it has them."""

    id = serializers.CharField()
    entitlementId = serializers.CharField(source="entitlement_id")
    amount = NumberField()
    priority = serializers.IntegerField()
    effectiveAt = serializers.DateTimeField(source="effective_at")
    expiresAt = serializers.DateTimeField(source="expires_at", allow_null=True)
    voidedAt = serializers.DateTimeField(source="voided_at", allow_null=True)
    minRolloverAmount = NumberField(source="min_rollover", allow_null=True)
    maxRolloverAmount = NumberField(source="max_rollover", allow_null=True)
    metadata = serializers.DictField(child=serializers.CharField(allow_blank=True))
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")
    deletedAt = serializers.DateTimeField(source="deleted_at", allow_null=True, help_text="Always null.")
    expiration = ExpirationOutput(source="*", required=False)
    recurrence = RecurrenceOutput(source="*", required=False)

    def absent(self, grant: Grant) -> set[str]:
        skip = set() if grant.expiration_duration else {"expiration"}
        return skip | (set() if grant.recurrence_interval else {"recurrence"})


class EntitlementValueOutput(OmittingSerializer):
    """OpenMeter's EntitlementValue (v1 and the SDK's `access` map): balances only on metered
    entitlements, `config` only on static ones."""

    hasAccess = serializers.BooleanField(source="has_access")
    balance = NumberField(required=False)
    usage = NumberField(required=False)
    overage = NumberField(required=False)
    totalAvailableGrantAmount = NumberField(source="total_available", required=False)
    config = serializers.CharField(required=False)

    def absent(self, value: EntitlementValue) -> set[str]:
        skip = (
            {"balance", "usage", "overage", "totalAvailableGrantAmount"} if value.balance is None else set()
        )
        return skip | ({"config"} if value.config is None else set())


class EntitlementValueV2Output(EntitlementValueOutput):
    grantBalances = serializers.DictField(
        source="grant_balances",
        child=NumberField(),
        required=False,
        help_text="Grant id -> what is left of it.",
    )

    def absent(self, value: EntitlementValue) -> set[str]:
        return super().absent(value) | ({"grantBalances"} if value.grant_balances is None else set())


class CustomerAccessOutput(serializers.Serializer):
    entitlements = serializers.DictField(child=EntitlementValueOutput(), help_text="Feature key -> value.")


class WindowedUsageOutput(FromToOutput):
    usage = NumberField()


class BurndownSegmentOutput(serializers.Serializer):
    period = FromToOutput()
    usage = NumberField()
    overage = NumberField()
    balanceAtEnd = NumberField()


class EntitlementHistoryOutput(serializers.Serializer):
    windowedHistory = WindowedUsageOutput(many=True)
    burndownHistory = BurndownSegmentOutput(many=True)


class PeriodInput(serializers.Serializer):
    interval = serializers.CharField()
    anchor = ScheduleDateTimeField(required=False, allow_null=True)


class ExpirationInput(serializers.Serializer):
    duration = serializers.ChoiceField(choices=["HOUR", "DAY", "WEEK", "MONTH", "YEAR"])
    count = serializers.IntegerField(min_value=1, max_value=limits.MAX_COUNT)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        days = {"HOUR": 1 / 24, "DAY": 1, "WEEK": 7, "MONTH": 30.4375, "YEAR": 365.25}[
            attrs["duration"]
        ] * attrs["count"]
        problem = limits.duration_days_problem(days)
        if problem:
            raise serializers.ValidationError({"count": problem})
        return attrs


class GrantInput(serializers.Serializer):
    amount = serializers.DecimalField(
        max_digits=limits.AMOUNT_DIGITS, decimal_places=12, min_value=Decimal("0.000000000001")
    )
    priority = serializers.IntegerField(required=False, min_value=0, max_value=255, default=1)
    effectiveAt = ScheduleDateTimeField(required=False)
    expiration = ExpirationInput(required=False, allow_null=True)
    minRolloverAmount = serializers.DecimalField(
        max_digits=limits.AMOUNT_DIGITS, decimal_places=12, required=False, min_value=0
    )
    maxRolloverAmount = serializers.DecimalField(
        max_digits=limits.AMOUNT_DIGITS, decimal_places=12, required=False, min_value=0
    )
    recurrence = PeriodInput(required=False, allow_null=True)
    metadata = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)

    @staticmethod
    def kwargs(v: dict[str, Any]) -> dict[str, Any]:
        return {
            "amount": v["amount"],
            "priority": v.get("priority", 1),
            "effective_at": v.get("effectiveAt"),
            "expiration": dict(v["expiration"]) if v.get("expiration") else None,
            "min_rollover": v.get("minRolloverAmount"),
            "max_rollover": v.get("maxRolloverAmount"),
            "recurrence": dict(v["recurrence"]) if v.get("recurrence") else None,
            "metadata": dict(v.get("metadata") or {}),
        }


class EntitlementInput(serializers.Serializer):
    type = serializers.ChoiceField(choices=EntitlementType.values)
    featureKey = serializers.CharField(required=False)
    featureId = serializers.CharField(required=False)
    usagePeriod = PeriodInput(required=False)
    isSoftLimit = serializers.BooleanField(required=False, default=False)
    issueAfterReset = serializers.DecimalField(
        max_digits=limits.AMOUNT_DIGITS, decimal_places=12, required=False, allow_null=True, min_value=0
    )
    issueAfterResetPriority = serializers.IntegerField(required=False, default=1, min_value=0, max_value=255)
    preserveOverageAtReset = serializers.BooleanField(required=False, default=False)
    measureUsageFrom = serializers.CharField(required=False)
    config = serializers.CharField(required=False)
    metadata = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
    grants = GrantInput(many=True, required=False)

    def kwargs(self) -> dict[str, Any]:
        v = self.validated_data
        feature = v.get("featureKey") or v.get("featureId")
        if not feature:
            raise ValidationFailed("featureKey or featureId is required.", field="featureKey")
        measure: Any = v.get("measureUsageFrom")
        if measure and measure not in ("CURRENT_PERIOD_START", "NOW"):
            try:
                measure = ScheduleDateTimeField().to_internal_value(measure)
            except serializers.ValidationError:
                raise ValidationFailed(
                    "measureUsageFrom must be CURRENT_PERIOD_START, NOW or a timestamp.",
                    field="measureUsageFrom",
                ) from None
        issue = v.get("issueAfterReset")
        if isinstance(self.initial_data, dict) and isinstance(self.initial_data.get("issue"), dict):
            issue = Decimal(str(self.initial_data["issue"].get("amount")))
        period = v.get("usagePeriod") or {}
        return {
            "feature_key": feature,
            "type": v["type"],
            "usage_period_interval": period.get("interval"),
            "usage_period_anchor": period.get("anchor"),
            "is_soft_limit": v.get("isSoftLimit", False),
            "issue_after_reset": issue,
            "issue_after_reset_priority": v.get("issueAfterResetPriority", 1),
            "preserve_overage_at_reset": v.get("preserveOverageAtReset", False),
            "measure_usage_from": measure,
            "config": v.get("config"),
            "metadata": dict(v.get("metadata") or {}),
            "grants": [GrantInput.kwargs(g) for g in v.get("grants") or []],
        }
