"""Entitlements, grants, access and notification events: OpenMeter's customer-scoped paths (v2 and the v1
value/access paths), so the official SDK works unchanged."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing import selectors, services
from billing.entitlements.values import wire_number as _num
from billing.models import Customer, Entitlement, EntitlementType, Grant, NotificationEvent, NotificationRule
from billing.periods import period_at
from core import limits
from core.api_base import ScheduleDateTimeField, TenantAPIView, iso
from core.auth import CachedBearerAuthentication
from core.errors import NotFound, ValidationFailed
from core.pagination import PAGE_PARAMETERS, page_of, page_params, paged

_NAMED = {"P1D": "DAY", "P1W": "WEEK", "P1M": "MONTH", "P1Y": "YEAR"}


_dt = iso


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


class NotificationEventOutput(serializers.Serializer):
    id = serializers.CharField()
    type = serializers.CharField()
    createdAt = serializers.DateTimeField()
    ruleId = serializers.CharField(allow_null=True)
    payload = serializers.JSONField()


class NotificationRuleOutput(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    type = serializers.CharField()
    featureKey = serializers.CharField()
    thresholds = serializers.ListField(child=serializers.DictField())
    disabled = serializers.BooleanField()
    createdAt = serializers.DateTimeField()


INCLUDE_DELETED = OpenApiParameter("includeDeleted", bool)
VALUE_EXAMPLE = OpenApiExample(
    "A metered entitlement with 100 of 1000 used",
    response_only=True,
    value={"hasAccess": True, "balance": 900, "usage": 100, "overage": 0, "totalAvailableGrantAmount": 1000},
)
TIME_PARAM = OpenApiParameter(
    "time", OpenApiTypes.DATETIME, description="The moment to evaluate (default now)."
)


def entitlement_out(ent: Entitlement, customer: Customer) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": ent.id,
        "type": ent.type,
        "featureId": ent.feature_id or ent.feature_key,
        "featureKey": ent.feature_key,
        "customerId": customer.id,
        "customerKey": customer.key,
        "subscriptionId": ent.subscription_id,
        "metadata": ent.metadata,
        "activeFrom": _dt(ent.active_from),
        "activeTo": _dt(ent.active_to),
        "createdAt": _dt(ent.created_at),
        "updatedAt": _dt(ent.updated_at),
        "deletedAt": _dt(ent.deleted_at),
    }
    if ent.type == EntitlementType.STATIC:
        out["config"] = ent.config
    if ent.type == EntitlementType.METERED and ent.usage_period_anchor:
        now = max(timezone.now(), ent.active_from)
        current = period_at(ent.usage_period_anchor, ent.usage_period_interval, now, ent.timezone)
        last_reset = max([current.start, *[r.at for r in ent.resets.all() if r.at <= now]])
        out.update(
            {
                "isSoftLimit": ent.is_soft_limit,
                "preserveOverageAtReset": ent.preserve_overage_at_reset,
                "issueAfterReset": _num(ent.issue_after_reset),
                "issueAfterResetPriority": ent.issue_after_reset_priority,
                "usagePeriod": {
                    "interval": _NAMED.get(ent.usage_period_interval, ent.usage_period_interval),
                    "anchor": _dt(ent.usage_period_anchor),
                },
                "currentUsagePeriod": {"from": _dt(current.start), "to": _dt(current.end)},
                "measureUsageFrom": _dt(ent.measure_usage_from),
                "lastReset": _dt(last_reset),
            }
        )
        if ent.issue_after_reset is not None:
            out["issue"] = {"amount": _num(ent.issue_after_reset), "priority": ent.issue_after_reset_priority}
    return out


def grant_out(g: Grant) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": g.id,
        "entitlementId": g.entitlement_id,
        "amount": _num(g.amount),
        "priority": g.priority,
        "effectiveAt": _dt(g.effective_at),
        "expiresAt": _dt(g.expires_at),
        "voidedAt": _dt(g.voided_at),
        "minRolloverAmount": _num(g.min_rollover),
        "maxRolloverAmount": _num(g.max_rollover),
        "metadata": g.metadata,
        "createdAt": _dt(g.created_at),
        "updatedAt": _dt(g.updated_at),
        "deletedAt": None,
    }
    if g.expiration_duration:
        out["expiration"] = {"duration": g.expiration_duration, "count": g.expiration_count}
    if g.recurrence_interval:
        out["recurrence"] = {
            "interval": _NAMED.get(g.recurrence_interval, g.recurrence_interval),
            "anchor": _dt(g.recurrence_anchor),
        }
    return out


def value_out(value: selectors.EntitlementValue, *, v2: bool) -> dict[str, Any]:
    out = value.as_api()
    if v2 and value.grant_balances is not None:
        out["grantBalances"] = {k: _num(v) for k, v in value.grant_balances.items()}
    return out


def _entitlements(items: list[Entitlement], customer: Customer | None = None) -> Any:
    return EntitlementOutput([entitlement_out(e, customer or e.customer) for e in items], many=True).data


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


class _CustomerScoped(TenantAPIView):
    required_scopes = {"GET": "read", "POST": "admin", "PUT": "admin", "DELETE": "admin"}
    model = Entitlement

    def _customer(self, customer_id_or_key: str) -> Customer:
        return selectors.customer_get(organization=self.organization, id_or_key=customer_id_or_key)

    def _entitlement(self, customer: Customer, id_or_feature_key: str) -> Entitlement:
        return selectors.entitlement_get(
            organization=self.organization, customer=customer, id_or_feature_key=id_or_feature_key
        )


def _time_param(request: Request, name: str = "time") -> datetime | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        return ScheduleDateTimeField().to_internal_value(raw)
    except serializers.ValidationError as exc:
        reason = exc.detail[0] if isinstance(exc.detail, list) else exc.detail
        raise ValidationFailed(f"{name}: {reason}", field=name) from None


class CustomerEntitlementsView(_CustomerScoped):
    @extend_schema(
        responses=page_of(EntitlementOutput),
        parameters=[INCLUDE_DELETED, *PAGE_PARAMETERS],
        operation_id="listCustomerEntitlementsV2",
    )
    def get(self, request: Request, customer: str) -> Response:
        cust = self._customer(customer)
        page, page_size = page_params(request)
        qs = selectors.entitlement_list(
            organization=self.organization,
            customer=cust,
            include_deleted=request.query_params.get("includeDeleted") == "true",
        )
        qs = qs.prefetch_related("resets")
        return Response(paged(qs, page, page_size, lambda items: _entitlements(items, cust)))

    @extend_schema(
        request=EntitlementInput,
        responses={201: EntitlementOutput},
        operation_id="createCustomerEntitlementV2",
    )
    def post(self, request: Request, customer: str) -> Response:
        cust = self._customer(customer)
        data = EntitlementInput(data=request.data)
        data.is_valid(raise_exception=True)
        ent = services.entitlement_create(
            organization=self.organization, customer=cust, actor=self.actor, **data.kwargs()
        )
        return Response(EntitlementOutput(entitlement_out(ent, cust)).data, status=status.HTTP_201_CREATED)


class CustomerEntitlementDetailView(_CustomerScoped):
    @extend_schema(responses=EntitlementOutput, operation_id="getCustomerEntitlementV2")
    def get(self, request: Request, customer: str, entitlement: str) -> Response:
        cust = self._customer(customer)
        return Response(EntitlementOutput(entitlement_out(self._entitlement(cust, entitlement), cust)).data)

    @extend_schema(responses={204: None}, operation_id="deleteCustomerEntitlementV2")
    def delete(self, request: Request, customer: str, entitlement: str) -> Response:
        cust = self._customer(customer)
        services.entitlement_delete(
            organization=self.organization, entitlement=self._entitlement(cust, entitlement), actor=self.actor
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class CustomerEntitlementOverrideView(_CustomerScoped):
    @extend_schema(
        request=EntitlementInput,
        responses={201: EntitlementOutput},
        operation_id="overrideCustomerEntitlementV2",
    )
    def put(self, request: Request, customer: str, entitlement: str) -> Response:
        cust = self._customer(customer)
        old = self._entitlement(cust, entitlement)
        data = EntitlementInput(data=request.data)
        data.is_valid(raise_exception=True)
        new = services.entitlement_override(
            organization=self.organization, customer=cust, old=old, actor=self.actor, **data.kwargs()
        )
        return Response(EntitlementOutput(entitlement_out(new, cust)).data, status=status.HTTP_201_CREATED)


class CustomerEntitlementValueView(_CustomerScoped):
    """GET .../value (v1 and v2). Reads the newest balance snapshot and burns only the tail since it.

    Called on every gateway request, so the key comes from the short in-process cache."""

    authentication_classes = [CachedBearerAuthentication]

    v2 = True

    @extend_schema(
        responses=EntitlementValueV2Output,
        parameters=[TIME_PARAM],
        operation_id="getCustomerEntitlementValueV2",
        examples=[VALUE_EXAMPLE],
    )
    def get(self, request: Request, customer: str, entitlement: str) -> Response:
        at = _time_param(request) or timezone.now()
        found = selectors.entitlement_value_lookup(
            organization=self.organization, customer_ref=customer, entitlement_ref=entitlement, at=at
        )
        if found is None:  # precise 404 (customer vs entitlement)
            cust = self._customer(customer)
            self._entitlement(cust, entitlement)
            raise NotFound(f"No entitlement {entitlement!r} for this customer.")
        ent, subjects, preloaded = found
        value = selectors.entitlement_value(
            organization=self.organization, entitlement=ent, at=at, subjects=subjects, preloaded=preloaded
        )
        out = EntitlementValueV2Output if self.v2 else EntitlementValueOutput
        return Response(out(value_out(value, v2=self.v2)).data)


class CustomerEntitlementValueV1View(CustomerEntitlementValueView):
    v2 = False

    @extend_schema(
        responses=EntitlementValueOutput,
        parameters=[TIME_PARAM],
        operation_id="getCustomerEntitlementValue",
        examples=[VALUE_EXAMPLE],
    )
    def get(self, request: Request, customer: str, entitlement: str) -> Response:
        return super().get(request, customer, entitlement)


class CustomerEntitlementHistoryView(_CustomerScoped):
    @extend_schema(
        responses=EntitlementHistoryOutput,
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATETIME),
            OpenApiParameter("to", OpenApiTypes.DATETIME),
            OpenApiParameter("windowSize", str, description="MINUTE, HOUR, DAY (default) or MONTH."),
            OpenApiParameter("windowTimeZone", str, description="IANA zone; default UTC."),
        ],
        operation_id="getCustomerEntitlementHistoryV2",
    )
    def get(self, request: Request, customer: str, entitlement: str) -> Response:
        cust = self._customer(customer)
        ent = self._entitlement(cust, entitlement)
        now = timezone.now()
        start = _time_param(request, "from") or ent.measure_usage_from or ent.active_from
        end = _time_param(request, "to") or now
        if end <= start:
            raise ValidationFailed("to must be after from.", field="to")
        window = request.query_params.get("windowSize", "DAY")
        tz = request.query_params.get("windowTimeZone", "UTC")
        body = selectors.entitlement_history(
            organization=self.organization, entitlement=ent, start=start, end=end, window_size=window, tz=tz
        )
        for w in body["windowedHistory"]:
            w["from"], w["to"] = _dt(w["from"]), _dt(w["to"])
        for b in body["burndownHistory"]:
            b["period"] = {"from": _dt(b["period"]["from"]), "to": _dt(b["period"]["to"])}
        return Response(EntitlementHistoryOutput(body).data)


class CustomerEntitlementResetView(_CustomerScoped):
    class CustomerEntitlementResetInput(serializers.Serializer):
        effectiveAt = ScheduleDateTimeField(required=False)
        retainAnchor = serializers.BooleanField(required=False)

    Input = CustomerEntitlementResetInput

    @extend_schema(request=Input, responses={204: None}, operation_id="resetCustomerEntitlementV2")
    def post(self, request: Request, customer: str, entitlement: str) -> Response:
        cust = self._customer(customer)
        data = self.Input(data=request.data or {})
        data.is_valid(raise_exception=True)
        services.entitlement_reset(
            organization=self.organization,
            entitlement=self._entitlement(cust, entitlement),
            at=data.validated_data.get("effectiveAt"),
            actor=self.actor,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class CustomerEntitlementGrantsView(_CustomerScoped):
    @extend_schema(
        responses=page_of(GrantOutput),
        parameters=[INCLUDE_DELETED, *PAGE_PARAMETERS],
        operation_id="listCustomerEntitlementGrantsV2",
    )
    def get(self, request: Request, customer: str, entitlement: str) -> Response:
        cust = self._customer(customer)
        ent = self._entitlement(cust, entitlement)
        page, page_size = page_params(request)
        qs = selectors.grant_list(
            organization=self.organization,
            entitlement=ent,
            include_deleted=request.query_params.get("includeDeleted") == "true",
        )
        return Response(
            paged(
                qs, page, page_size, lambda items: GrantOutput([grant_out(g) for g in items], many=True).data
            )
        )

    @extend_schema(
        request=GrantInput, responses={201: GrantOutput}, operation_id="createCustomerEntitlementGrantV2"
    )
    def post(self, request: Request, customer: str, entitlement: str) -> Response:
        cust = self._customer(customer)
        ent = self._entitlement(cust, entitlement)
        data = GrantInput(data=request.data)
        data.is_valid(raise_exception=True)
        grant = services.grant_create(
            organization=self.organization,
            entitlement=ent,
            actor=self.actor,
            **GrantInput.kwargs(data.validated_data),
        )
        return Response(GrantOutput(grant_out(grant)).data, status=status.HTTP_201_CREATED)


class GrantVoidView(TenantAPIView):
    required_scope = "admin"
    model = Grant

    @extend_schema(responses={204: None}, operation_id="voidGrant")
    def delete(self, request: Request, grant_id: str) -> Response:
        services.grant_void(organization=self.organization, grant_id=grant_id, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CustomerAccessView(_CustomerScoped):
    authentication_classes = [CachedBearerAuthentication]

    @extend_schema(responses=CustomerAccessOutput, operation_id="getCustomerAccess")
    def get(self, request: Request, customer: str) -> Response:
        cust = self._customer(customer)
        access = selectors.customer_access(organization=self.organization, customer=cust)
        body = {"entitlements": {k: value_out(v, v2=False) for k, v in access.items()}}
        return Response(CustomerAccessOutput(body).data)


class NotificationEventListView(TenantAPIView):
    required_scope = "read"
    model = NotificationEvent

    @extend_schema(
        responses=page_of(NotificationEventOutput),
        parameters=[
            OpenApiParameter("type", str),
            OpenApiParameter("from", OpenApiTypes.DATETIME),
            *PAGE_PARAMETERS,
        ],
        operation_id="listNotificationEvents",
    )
    def get(self, request: Request) -> Response:
        page, page_size = page_params(request)
        qs = self.get_queryset().order_by("-created_at", "-id")
        if request.query_params.get("type"):
            qs = qs.filter(type=request.query_params["type"])
        since = _time_param(request, "from")
        if since:
            qs = qs.filter(created_at__gte=since)
        return Response(
            paged(
                qs,
                page,
                page_size,
                lambda items: (
                    NotificationEventOutput(
                        [
                            {
                                "id": e.id,
                                "type": e.type,
                                "createdAt": _dt(e.created_at),
                                "ruleId": e.rule_id,
                                "payload": e.payload,
                            }
                            for e in items
                        ],
                        many=True,
                    ).data
                ),
            )
        )


class NotificationRuleListCreateView(TenantAPIView):
    required_scopes = {"GET": "read", "POST": "admin"}
    model = NotificationRule

    class NotificationRuleListCreateInput(serializers.Serializer):
        name = serializers.CharField(max_length=256)
        featureKey = serializers.CharField(max_length=256)
        thresholds = serializers.ListField(child=serializers.DictField(), allow_empty=False)

    Input = NotificationRuleListCreateInput

    @staticmethod
    def out(r: NotificationRule) -> dict[str, Any]:
        return {
            "id": r.id,
            "name": r.name,
            "type": "entitlements.balance.threshold",
            "featureKey": r.feature_key,
            "thresholds": r.thresholds,
            "disabled": r.disabled,
            "createdAt": _dt(r.created_at),
        }

    @extend_schema(
        responses=page_of(NotificationRuleOutput),
        parameters=PAGE_PARAMETERS,
        operation_id="listNotificationRules",
    )
    def get(self, request: Request) -> Response:
        page, page_size = page_params(request)
        return Response(
            paged(
                self.get_queryset(),
                page,
                page_size,
                lambda items: NotificationRuleOutput([self.out(r) for r in items], many=True).data,
            )
        )

    @extend_schema(
        request=Input, responses={201: NotificationRuleOutput}, operation_id="createNotificationRule"
    )
    def post(self, request: Request) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        rule = services.notification_rule_create(
            organization=self.organization,
            name=v["name"],
            feature_key=v["featureKey"],
            thresholds=v["thresholds"],
            actor=self.actor,
        )
        return Response(NotificationRuleOutput(self.out(rule)).data, status=status.HTTP_201_CREATED)


class EntitlementAdminListView(TenantAPIView):
    """GET /api/v2/entitlements: every entitlement of the organization (admin listing, paged)."""

    required_scope = "read"
    model = Entitlement

    @extend_schema(
        responses=page_of(EntitlementOutput),
        parameters=[INCLUDE_DELETED, OpenApiParameter("featureKey", str), *PAGE_PARAMETERS],
        operation_id="listEntitlementsV2",
    )
    def get(self, request: Request) -> Response:
        page, page_size = page_params(request)
        qs = selectors.entitlement_list(
            organization=self.organization,
            include_deleted=request.query_params.get("includeDeleted") == "true",
        )
        if request.query_params.get("featureKey"):
            qs = qs.filter(feature_key=request.query_params["featureKey"])
        qs = qs.prefetch_related("resets")
        return Response(paged(qs, page, page_size, lambda items: _entitlements(items)))


class GrantAdminListView(TenantAPIView):
    """GET /api/v2/grants: every grant of the organization (admin listing, paged)."""

    required_scope = "read"
    model = Grant

    @extend_schema(
        responses=page_of(GrantOutput),
        parameters=[INCLUDE_DELETED, *PAGE_PARAMETERS],
        operation_id="listGrantsV2",
    )
    def get(self, request: Request) -> Response:
        page, page_size = page_params(request)
        qs = selectors.grant_list(
            organization=self.organization,
            include_deleted=request.query_params.get("includeDeleted") == "true",
        )
        return Response(
            paged(
                qs, page, page_size, lambda items: GrantOutput([grant_out(g) for g in items], many=True).data
            )
        )
