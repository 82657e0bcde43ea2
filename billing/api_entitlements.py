"""Entitlements, grants, access and notification events: OpenMeter's customer-scoped paths (v2 and the v1
value/access paths), so the official SDK works unchanged."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing import selectors, services
from billing.api import page_params, paged
from billing.entitlements import _num
from billing.models import Customer, Entitlement, EntitlementType, Grant, NotificationEvent, NotificationRule
from billing.periods import period_at
from core import limits
from core.api import ScheduleDateTimeField, TenantAPIView
from core.auth import CachedBearerAuthentication
from core.errors import NotFound, ValidationFailed

_NAMED = {"P1D": "DAY", "P1W": "WEEK", "P1M": "MONTH", "P1Y": "YEAR"}


def _dt(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


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
    @extend_schema(responses=dict, operation_id="listCustomerEntitlementsV2")
    def get(self, request: Request, customer: str) -> Response:
        cust = self._customer(customer)
        page, page_size = page_params(request)
        qs = selectors.entitlement_list(
            organization=self.organization,
            customer=cust,
            include_deleted=request.query_params.get("includeDeleted") == "true",
        )
        qs = qs.prefetch_related("resets")
        return Response(paged(qs, page, page_size, lambda items: [entitlement_out(e, cust) for e in items]))

    @extend_schema(
        request=EntitlementInput, responses={201: dict}, operation_id="createCustomerEntitlementV2"
    )
    def post(self, request: Request, customer: str) -> Response:
        cust = self._customer(customer)
        data = EntitlementInput(data=request.data)
        data.is_valid(raise_exception=True)
        ent = services.entitlement_create(
            organization=self.organization, customer=cust, actor=self.actor, **data.kwargs()
        )
        return Response(entitlement_out(ent, cust), status=status.HTTP_201_CREATED)


class CustomerEntitlementDetailView(_CustomerScoped):
    @extend_schema(responses=dict, operation_id="getCustomerEntitlementV2")
    def get(self, request: Request, customer: str, entitlement: str) -> Response:
        cust = self._customer(customer)
        return Response(entitlement_out(self._entitlement(cust, entitlement), cust))

    @extend_schema(responses={204: None}, operation_id="deleteCustomerEntitlementV2")
    def delete(self, request: Request, customer: str, entitlement: str) -> Response:
        cust = self._customer(customer)
        services.entitlement_delete(
            organization=self.organization, entitlement=self._entitlement(cust, entitlement), actor=self.actor
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class CustomerEntitlementOverrideView(_CustomerScoped):
    @extend_schema(
        request=EntitlementInput, responses={201: dict}, operation_id="overrideCustomerEntitlementV2"
    )
    def put(self, request: Request, customer: str, entitlement: str) -> Response:
        cust = self._customer(customer)
        old = self._entitlement(cust, entitlement)
        data = EntitlementInput(data=request.data)
        data.is_valid(raise_exception=True)
        new = services.entitlement_override(
            organization=self.organization, customer=cust, old=old, actor=self.actor, **data.kwargs()
        )
        return Response(entitlement_out(new, cust), status=status.HTTP_201_CREATED)


class CustomerEntitlementValueView(_CustomerScoped):
    """GET .../value (v1 and v2). Reads the newest balance snapshot and burns only the tail since it.

    Called on every gateway request, so the key comes from the short in-process cache."""

    authentication_classes = [CachedBearerAuthentication]

    v2 = True

    @extend_schema(responses=dict, operation_id="getCustomerEntitlementValue")
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
        return Response(value_out(value, v2=self.v2))


class CustomerEntitlementValueV1View(CustomerEntitlementValueView):
    v2 = False


class CustomerEntitlementHistoryView(_CustomerScoped):
    @extend_schema(responses=dict, operation_id="getCustomerEntitlementHistoryV2")
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
        return Response(body)


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
    @extend_schema(responses=dict, operation_id="listCustomerEntitlementGrantsV2")
    def get(self, request: Request, customer: str, entitlement: str) -> Response:
        cust = self._customer(customer)
        ent = self._entitlement(cust, entitlement)
        page, page_size = page_params(request)
        qs = selectors.grant_list(
            organization=self.organization,
            entitlement=ent,
            include_deleted=request.query_params.get("includeDeleted") == "true",
        )
        return Response(paged(qs, page, page_size, lambda items: [grant_out(g) for g in items]))

    @extend_schema(request=GrantInput, responses={201: dict}, operation_id="createCustomerEntitlementGrantV2")
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
        return Response(grant_out(grant), status=status.HTTP_201_CREATED)


class GrantVoidView(TenantAPIView):
    required_scope = "admin"
    model = Grant

    @extend_schema(responses={204: None}, operation_id="voidGrant")
    def delete(self, request: Request, grant_id: str) -> Response:
        services.grant_void(organization=self.organization, grant_id=grant_id, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CustomerAccessView(_CustomerScoped):
    authentication_classes = [CachedBearerAuthentication]

    @extend_schema(responses=dict, operation_id="getCustomerAccess")
    def get(self, request: Request, customer: str) -> Response:
        cust = self._customer(customer)
        access = selectors.customer_access(organization=self.organization, customer=cust)
        return Response({"entitlements": {k: value_out(v, v2=False) for k, v in access.items()}})


class NotificationEventListView(TenantAPIView):
    required_scope = "read"
    model = NotificationEvent

    @extend_schema(responses=dict, operation_id="listNotificationEvents")
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
                lambda items: [
                    {
                        "id": e.id,
                        "type": e.type,
                        "createdAt": _dt(e.created_at),
                        "ruleId": e.rule_id,
                        "payload": e.payload,
                    }
                    for e in items
                ],
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

    @extend_schema(responses=dict, operation_id="listNotificationRules")
    def get(self, request: Request) -> Response:
        page, page_size = page_params(request)
        return Response(
            paged(self.get_queryset(), page, page_size, lambda items: [self.out(r) for r in items])
        )

    @extend_schema(request=Input, responses={201: dict}, operation_id="createNotificationRule")
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
        return Response(self.out(rule), status=status.HTTP_201_CREATED)


class EntitlementAdminListView(TenantAPIView):
    """GET /api/v2/entitlements: every entitlement of the organization (admin listing, paged)."""

    required_scope = "read"
    model = Entitlement

    @extend_schema(responses=dict, operation_id="listEntitlementsV2")
    def get(self, request: Request) -> Response:
        page, page_size = page_params(request)
        qs = selectors.entitlement_list(
            organization=self.organization,
            include_deleted=request.query_params.get("includeDeleted") == "true",
        )
        if request.query_params.get("featureKey"):
            qs = qs.filter(feature_key=request.query_params["featureKey"])
        qs = qs.prefetch_related("resets")
        return Response(
            paged(qs, page, page_size, lambda items: [entitlement_out(e, e.customer) for e in items])
        )


class GrantAdminListView(TenantAPIView):
    """GET /api/v2/grants: every grant of the organization (admin listing, paged)."""

    required_scope = "read"
    model = Grant

    @extend_schema(responses=dict, operation_id="listGrantsV2")
    def get(self, request: Request) -> Response:
        page, page_size = page_params(request)
        qs = selectors.grant_list(
            organization=self.organization,
            include_deleted=request.query_params.get("includeDeleted") == "true",
        )
        return Response(paged(qs, page, page_size, lambda items: [grant_out(g) for g in items]))
