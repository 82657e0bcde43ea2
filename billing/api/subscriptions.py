"""Subscriptions API: create, get, list, change, cancel, unschedule cancelation, add-ons, migrate."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing import selectors, services
from billing.models import Subscription, SubscriptionItem
from catalog.api import EntitlementTemplateSerializer, PriceField
from core import limits
from core.api_base import ScheduleDateTimeField, TenantAPIView, iso
from core.errors import ValidationFailed
from core.pagination import PAGE_PARAMETERS, page_of, page_params, paged

_dt = iso


def _item(item: SubscriptionItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "key": item.key,
        "name": item.name,
        "featureKey": item.feature_key or None,
        "price": item.price,
        "paymentTerm": item.payment_term,
        "billingCadence": item.billing_cadence or None,
        "quantity": str(item.quantity.normalize()),
        "addonKey": item.addon_key or None,
        "entitlementTemplate": item.entitlement_template,
        "activeFrom": _dt(item.active_from),
        "activeTo": _dt(item.active_to),
    }


def subscription_out(sub: Subscription, *, expand: bool = True) -> dict[str, Any]:
    period = selectors.subscription_current_period(subscription=sub, at=max(timezone.now(), sub.active_from))
    out: dict[str, Any] = {
        "id": sub.id,
        "customerId": sub.customer_id,
        "name": sub.name,
        "plan": {"id": sub.plan_id or None, "key": sub.plan_key, "version": sub.plan_version},
        "status": selectors.subscription_status(sub),
        "currency": sub.currency,
        "billingCadence": sub.billing_cadence,
        "billingAnchor": _dt(sub.billing_anchor),
        "activeFrom": _dt(sub.active_from),
        "activeTo": _dt(sub.active_to),
        "currentPeriod": {"from": _dt(period.start), "to": _dt(period.end)},
        "previousSubscriptionId": sub.previous_id,
        "createdAt": _dt(sub.created_at),
        "updatedAt": _dt(sub.updated_at),
    }
    if expand:
        items = list(sub.items.all())
        out["phases"] = [
            {
                "id": p.id,
                "key": p.key,
                "name": p.name,
                "activeFrom": _dt(p.starts_at),
                "activeTo": _dt(p.ends_at),
                "items": [_item(i) for i in items if i.phase_id == p.id],
            }
            for p in sub.phases.all()
        ]
        out["addons"] = [
            {
                "id": a.id,
                "addon": {"key": a.addon_key, "version": a.addon_version},
                "name": a.name,
                "quantity": a.quantity,
                "activeFrom": _dt(a.active_from),
                "activeTo": _dt(a.active_to),
            }
            for a in sub.addons.all()
        ]
    return out


# --- serializers: what the wire carries -------------------------------------------------------------
@extend_schema_field(EntitlementTemplateSerializer)
class EntitlementTemplateField(serializers.JSONField):
    """The rate card's entitlement template, copied onto the item; rendered as stored."""


class SubscriptionItemOutput(serializers.Serializer):
    id = serializers.CharField()
    key = serializers.CharField()
    name = serializers.CharField()
    featureKey = serializers.CharField(allow_null=True)
    price = PriceField(allow_null=True)
    paymentTerm = serializers.CharField(allow_null=True)
    billingCadence = serializers.CharField(allow_null=True)
    quantity = serializers.CharField(help_text="A decimal string.")
    addonKey = serializers.CharField(allow_null=True)
    entitlementTemplate = EntitlementTemplateField(allow_null=True)
    activeFrom = serializers.DateTimeField()
    activeTo = serializers.DateTimeField(allow_null=True)


class SubscriptionPhaseOutput(serializers.Serializer):
    id = serializers.CharField()
    key = serializers.CharField()
    name = serializers.CharField()
    activeFrom = serializers.DateTimeField()
    activeTo = serializers.DateTimeField(allow_null=True)
    items = SubscriptionItemOutput(many=True)


class AddonRefOutput(serializers.Serializer):
    key = serializers.CharField()
    version = serializers.IntegerField()


class SubscriptionAddonOutput(serializers.Serializer):
    id = serializers.CharField()
    addon = AddonRefOutput()
    name = serializers.CharField()
    quantity = serializers.IntegerField()
    activeFrom = serializers.DateTimeField()
    activeTo = serializers.DateTimeField(allow_null=True)


class SubscriptionPlanRefOutput(serializers.Serializer):
    id = serializers.CharField(allow_null=True)
    key = serializers.CharField()
    version = serializers.IntegerField()


class CurrentPeriodOutput(serializers.Serializer):
    from_ = serializers.DateTimeField()
    to = serializers.DateTimeField()


CurrentPeriodOutput._declared_fields["from"] = CurrentPeriodOutput._declared_fields.pop("from_")


class SubscriptionOutput(serializers.Serializer):
    """A subscription; lists leave out `phases` and `addons` (get one to see them)."""

    id = serializers.CharField()
    customerId = serializers.CharField()
    name = serializers.CharField()
    plan = SubscriptionPlanRefOutput()
    status = serializers.CharField(help_text="active, inactive, canceled or scheduled.")
    currency = serializers.CharField()
    billingCadence = serializers.CharField()
    billingAnchor = serializers.DateTimeField()
    activeFrom = serializers.DateTimeField()
    activeTo = serializers.DateTimeField(allow_null=True)
    currentPeriod = CurrentPeriodOutput()
    previousSubscriptionId = serializers.CharField(allow_null=True)
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()
    phases = SubscriptionPhaseOutput(many=True, required=False)
    addons = SubscriptionAddonOutput(many=True, required=False)


class SubscriptionChangeOutput(serializers.Serializer):
    current = SubscriptionOutput(help_text="The subscription that ends.")
    next = SubscriptionOutput(help_text="The subscription that follows it.")


def _out(sub: Subscription, *, expand: bool = True) -> dict[str, Any]:
    return dict(SubscriptionOutput(subscription_out(sub, expand=expand)).data)


def _change_out(old: Subscription, new: Subscription) -> dict[str, Any]:
    return dict(
        SubscriptionChangeOutput({"current": subscription_out(old), "next": subscription_out(new)}).data
    )


class PlanRef(serializers.Serializer):
    key = serializers.CharField(max_length=256)
    version = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=limits.MAX_COUNT
    )


TIMING_HELP = "immediate | next_billing_cycle | an RFC 3339 timestamp"


def parse_timing(value: Any, default: str | None = "immediate") -> Any:
    if value in (None, ""):
        return default
    if value in ("immediate", "next_billing_cycle"):
        return value
    if value == "end_of_period":
        return "next_billing_cycle"
    field = ScheduleDateTimeField()
    try:
        return field.to_internal_value(value)
    except serializers.ValidationError as exc:
        reason = exc.detail[0] if isinstance(exc.detail, list) and "between" in str(exc.detail[0]) else None
        raise ValidationFailed(f"timing {reason or 'must be ' + TIMING_HELP}.", field="timing") from None


class SubscriptionListCreateView(TenantAPIView):
    required_scopes = {"GET": "read", "POST": "admin"}
    model = Subscription

    class SubscriptionListCreateInput(serializers.Serializer):
        customerId = serializers.CharField(required=False)
        customerKey = serializers.CharField(required=False)
        plan = PlanRef()
        activeFrom = ScheduleDateTimeField(required=False, allow_null=True)
        timing = serializers.CharField(required=False, allow_null=True)
        billingAnchor = ScheduleDateTimeField(required=False, allow_null=True)
        startingPhase = serializers.CharField(required=False, allow_null=True)

    Input = SubscriptionListCreateInput

    @extend_schema(
        responses=page_of(SubscriptionOutput),
        parameters=[
            OpenApiParameter("customerId", str, description="A customer id or key."),
            OpenApiParameter("status", str),
            *PAGE_PARAMETERS,
        ],
        operation_id="listSubscriptions",
    )
    def get(self, request: Request) -> Response:
        page, page_size = page_params(request)
        customer = None
        if request.query_params.get("customerId"):
            customer = selectors.customer_get(
                organization=self.organization,
                id_or_key=request.query_params["customerId"],
                include_deleted=True,
            )
        qs = selectors.subscription_list(
            organization=self.organization, customer=customer, status=request.query_params.get("status", "")
        )
        return Response(paged(qs, page, page_size, lambda items: [_out(s, expand=False) for s in items]))

    @extend_schema(
        request=Input,
        responses={201: SubscriptionOutput},
        operation_id="createSubscription",
        examples=[
            OpenApiExample(
                "Subscribe a customer to the latest published version",
                request_only=True,
                value={"customerKey": "acme", "plan": {"key": "pro"}, "timing": "immediate"},
            )
        ],
    )
    def post(self, request: Request) -> Response:
        v = self.validated(self.Input)
        ref = v.get("customerId") or v.get("customerKey")
        if not ref:
            raise ValidationFailed("customerId or customerKey is required.", field="customerId")
        customer = selectors.customer_get(organization=self.organization, id_or_key=ref)
        active_from = v.get("activeFrom")
        timing = parse_timing(v.get("timing"))
        if active_from is None and not isinstance(timing, str):
            active_from = timing
        sub = services.subscription_create(
            organization=self.organization,
            customer=customer,
            plan_key=v["plan"]["key"],
            plan_version=v["plan"].get("version"),
            active_from=active_from,
            billing_anchor=v.get("billingAnchor"),
            starting_phase=v.get("startingPhase"),
            actor=self.actor,
        )
        return Response(_out(sub), status=status.HTTP_201_CREATED)


class SubscriptionDetailView(TenantAPIView):
    required_scope = "read"
    model = Subscription

    @extend_schema(responses=SubscriptionOutput, operation_id="getSubscription")
    def get(self, request: Request, subscription_id: str) -> Response:
        sub = selectors.subscription_get(organization=self.organization, subscription_id=subscription_id)
        return Response(_out(sub))


class _SubscriptionAction(TenantAPIView):
    required_scope = "admin"
    model = Subscription

    def _sub(self, subscription_id: str) -> Subscription:
        return selectors.subscription_get(organization=self.organization, subscription_id=subscription_id)


class SubscriptionChangeView(_SubscriptionAction):
    class SubscriptionChangeInput(serializers.Serializer):
        plan = PlanRef()
        timing = serializers.CharField(required=False, allow_null=True, help_text=TIMING_HELP)
        startingPhase = serializers.CharField(required=False, allow_null=True)

    Input = SubscriptionChangeInput

    @extend_schema(request=Input, responses=SubscriptionChangeOutput, operation_id="changeSubscription")
    def post(self, request: Request, subscription_id: str) -> Response:
        v = self.validated(self.Input)
        old, new = services.subscription_change(
            organization=self.organization,
            subscription=self._sub(subscription_id),
            plan_key=v["plan"]["key"],
            plan_version=v["plan"].get("version"),
            timing=parse_timing(v.get("timing"), default=None),  # None: upgrade now, downgrade at period end
            starting_phase=v.get("startingPhase"),
            actor=self.actor,
        )
        return Response(_change_out(old, new))


class SubscriptionMigrateView(_SubscriptionAction):
    class SubscriptionMigrateInput(serializers.Serializer):
        targetVersion = serializers.IntegerField(
            required=False, allow_null=True, min_value=1, max_value=limits.MAX_COUNT
        )
        timing = serializers.CharField(required=False, allow_null=True, help_text=TIMING_HELP)

    Input = SubscriptionMigrateInput

    @extend_schema(request=Input, responses=SubscriptionChangeOutput, operation_id="migrateSubscription")
    def post(self, request: Request, subscription_id: str) -> Response:
        v = self.validated(self.Input)
        old, new = services.subscription_migrate(
            organization=self.organization,
            subscription=self._sub(subscription_id),
            target_version=v.get("targetVersion"),
            timing=parse_timing(v.get("timing")),
            actor=self.actor,
        )
        return Response(_change_out(old, new))


class SubscriptionCancelView(_SubscriptionAction):
    class SubscriptionCancelInput(serializers.Serializer):
        timing = serializers.CharField(required=False, allow_null=True, help_text=TIMING_HELP)

    Input = SubscriptionCancelInput

    @extend_schema(request=Input, responses=SubscriptionOutput, operation_id="cancelSubscription")
    def post(self, request: Request, subscription_id: str) -> Response:
        v = self.validated(self.Input)
        sub = services.subscription_cancel(
            organization=self.organization,
            subscription=self._sub(subscription_id),
            timing=parse_timing(v.get("timing")),
            actor=self.actor,
        )
        return Response(_out(sub))


class SubscriptionUnscheduleCancelationView(_SubscriptionAction):
    @extend_schema(request=None, responses=SubscriptionOutput, operation_id="unscheduleCancelation")
    def post(self, request: Request, subscription_id: str) -> Response:
        sub = services.subscription_unschedule_cancelation(
            organization=self.organization, subscription=self._sub(subscription_id), actor=self.actor
        )
        return Response(_out(sub))


class SubscriptionAddonsView(_SubscriptionAction):
    required_scopes = {"GET": "read", "POST": "admin"}  # takes precedence over required_scope

    class SubscriptionAddonsInput(serializers.Serializer):
        addon = serializers.DictField(required=False)
        addonKey = serializers.CharField(required=False)
        quantity = serializers.IntegerField(min_value=0, max_value=limits.MAX_COUNT)
        timing = serializers.CharField(required=False, allow_null=True, help_text=TIMING_HELP)

    Input = SubscriptionAddonsInput

    @extend_schema(responses=SubscriptionAddonOutput(many=True), operation_id="listSubscriptionAddons")
    def get(self, request: Request, subscription_id: str) -> Response:
        return Response(_out(self._sub(subscription_id))["addons"])

    @extend_schema(request=Input, responses=SubscriptionOutput, operation_id="setSubscriptionAddon")
    def post(self, request: Request, subscription_id: str) -> Response:
        v = self.validated(self.Input)
        key = v.get("addonKey") or (v.get("addon") or {}).get("key") or (v.get("addon") or {}).get("id")
        if not key:
            raise ValidationFailed("addon.key is required.", field="addon.key")
        sub = self._sub(subscription_id)
        services.subscription_addon_set(
            organization=self.organization,
            subscription=sub,
            addon_key=key,
            quantity=v["quantity"],
            timing=parse_timing(v.get("timing")),
            actor=self.actor,
        )
        return Response(_out(self._sub(subscription_id)), status=status.HTTP_200_OK)
