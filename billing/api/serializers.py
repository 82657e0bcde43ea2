"""What the entitlement and grant APIs' wire carries: OpenMeter's shapes (EntitlementV2, grants, values,
history) and the request bodies, as serializers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.models import EntitlementType
from core import limits
from core.api_base import ScheduleDateTimeField
from core.errors import ValidationFailed

NAMED_INTERVALS = {"P1D": "DAY", "P1W": "WEEK", "P1M": "MONTH", "P1Y": "YEAR"}


# --- serializers: OpenMeter's shapes ----------------------------------------------------------------
@extend_schema_field(OpenApiTypes.NUMBER)
class NumberField(serializers.JSONField):
    """A JSON number rendered as computed (OpenMeter sends balances as numbers, integral ones as ints)."""


class UsagePeriodOutput(serializers.Serializer):
    interval = serializers.CharField(help_text="DAY, WEEK, MONTH, YEAR or an ISO 8601 duration.")
    anchor = serializers.DateTimeField(allow_null=True)


class FromToOutput(serializers.Serializer):
    from_ = serializers.DateTimeField()
    to = serializers.DateTimeField()


FromToOutput._declared_fields["from"] = FromToOutput._declared_fields.pop("from_")


class IssueOutput(serializers.Serializer):
    amount = NumberField()
    priority = serializers.IntegerField()


class EntitlementOutput(serializers.Serializer):
    """An entitlement (OpenMeter's EntitlementV2): the metered fields only on `metered`, `config` only on
    `static`."""

    id = serializers.CharField()
    type = serializers.ChoiceField(choices=EntitlementType.values)
    featureId = serializers.CharField()
    featureKey = serializers.CharField()
    customerId = serializers.CharField()
    customerKey = serializers.CharField(allow_null=True)
    subscriptionId = serializers.CharField(allow_null=True)
    metadata = serializers.DictField(child=serializers.CharField(allow_blank=True))
    activeFrom = serializers.DateTimeField(allow_null=True)
    activeTo = serializers.DateTimeField(allow_null=True)
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()
    deletedAt = serializers.DateTimeField(allow_null=True)
    config = serializers.CharField(required=False, allow_null=True, help_text="static: a JSON document.")
    isSoftLimit = serializers.BooleanField(required=False)
    preserveOverageAtReset = serializers.BooleanField(required=False)
    issueAfterReset = NumberField(required=False, allow_null=True)
    issueAfterResetPriority = serializers.IntegerField(required=False, allow_null=True)
    usagePeriod = UsagePeriodOutput(required=False)
    currentUsagePeriod = FromToOutput(required=False)
    measureUsageFrom = serializers.DateTimeField(required=False, allow_null=True)
    lastReset = serializers.DateTimeField(required=False, allow_null=True)
    issue = IssueOutput(required=False)


class ExpirationOutput(serializers.Serializer):
    duration = serializers.CharField()
    count = serializers.IntegerField()


class GrantOutput(serializers.Serializer):
    id = serializers.CharField()
    entitlementId = serializers.CharField()
    amount = NumberField()
    priority = serializers.IntegerField()
    effectiveAt = serializers.DateTimeField()
    expiresAt = serializers.DateTimeField(allow_null=True)
    voidedAt = serializers.DateTimeField(allow_null=True)
    minRolloverAmount = NumberField(allow_null=True)
    maxRolloverAmount = NumberField(allow_null=True)
    metadata = serializers.DictField(child=serializers.CharField(allow_blank=True))
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()
    deletedAt = serializers.DateTimeField(allow_null=True)
    expiration = ExpirationOutput(required=False)
    recurrence = UsagePeriodOutput(required=False)


class EntitlementValueOutput(serializers.Serializer):
    """OpenMeter's EntitlementValue (v1 and the SDK's `access` map): balances only on metered
    entitlements, `config` only on static ones."""

    hasAccess = serializers.BooleanField()
    balance = NumberField(required=False)
    usage = NumberField(required=False)
    overage = NumberField(required=False)
    totalAvailableGrantAmount = NumberField(required=False)
    config = serializers.CharField(required=False)


class EntitlementValueV2Output(EntitlementValueOutput):
    grantBalances = serializers.DictField(
        child=NumberField(), required=False, help_text="Grant id -> what is left of it."
    )


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
