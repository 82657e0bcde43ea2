"""Subscriptions API: create, get, list, change, cancel, unschedule cancelation, add-ons, migrate."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing import selectors, services
from billing.api.serializers import FromToOutput, OmittingSerializer
from billing.models import Subscription, SubscriptionItem
from catalog.api import EntitlementTemplateSerializer, PriceField
from core import limits
from core.api_base import BlankAsNullCharField, ScheduleDateTimeField, TenantAPIView
from core.errors import ValidationFailed
from core.pagination import PAGE_PARAMETERS, page_of, page_params, paged


# --- serializers: what the wire carries -------------------------------------------------------------
@extend_schema_field(EntitlementTemplateSerializer)
class EntitlementTemplateField(serializers.JSONField):
    """The rate card's entitlement template, copied onto the item; rendered as stored."""


class SubscriptionItemOutput(serializers.Serializer):
    id = serializers.CharField()
    key = serializers.CharField()
    name = serializers.CharField()
    featureKey = BlankAsNullCharField(source="feature_key")
    price = PriceField(allow_null=True)
    paymentTerm = serializers.CharField(source="payment_term", allow_null=True)
    billingCadence = BlankAsNullCharField(source="billing_cadence")
    quantity = serializers.SerializerMethodField(help_text="A decimal string.")
    addonKey = BlankAsNullCharField(source="addon_key")
    entitlementTemplate = EntitlementTemplateField(source="entitlement_template", allow_null=True)
    activeFrom = serializers.DateTimeField(source="active_from")
    activeTo = serializers.DateTimeField(source="active_to", allow_null=True)

    def get_quantity(self, item: SubscriptionItem) -> str:
        return str(item.quantity.normalize())


class SubscriptionPhaseOutput(serializers.Serializer):
    id = serializers.CharField()
    key = serializers.CharField()
    name = serializers.CharField()
    activeFrom = serializers.DateTimeField(source="starts_at")
    activeTo = serializers.DateTimeField(source="ends_at", allow_null=True)
    items = SubscriptionItemOutput(many=True, source="item_rows")


class AddonRefOutput(serializers.Serializer):
    key = serializers.CharField(source="addon_key")
    version = serializers.IntegerField(source="addon_version")


class SubscriptionAddonOutput(serializers.Serializer):
    id = serializers.CharField()
    addon = AddonRefOutput(source="*")
    name = serializers.CharField()
    quantity = serializers.IntegerField()
    activeFrom = serializers.DateTimeField(source="active_from")
    activeTo = serializers.DateTimeField(source="active_to", allow_null=True)


class SubscriptionPlanRefOutput(serializers.Serializer):
    id = BlankAsNullCharField(source="plan_id")
    key = serializers.CharField(source="plan_key")
    version = serializers.IntegerField(source="plan_version")


class SubscriptionOutput(OmittingSerializer):
    """A subscription; lists leave out `phases` and `addons` (get one to see them)."""

    # a list renders with context={"expand": False}

    id = serializers.CharField()
    customerId = serializers.CharField(source="customer_id")
    name = serializers.CharField()
    plan = SubscriptionPlanRefOutput(source="*")
    status = serializers.CharField(source="status_now", help_text="active, inactive, canceled or scheduled.")
    currency = serializers.CharField()
    billingCadence = serializers.CharField(source="billing_cadence")
    billingAnchor = serializers.DateTimeField(source="billing_anchor")
    activeFrom = serializers.DateTimeField(source="active_from")
    activeTo = serializers.DateTimeField(source="active_to", allow_null=True)
    currentPeriod = FromToOutput(source="current_period")
    previousSubscriptionId = serializers.CharField(source="previous_id", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")
    phases = SubscriptionPhaseOutput(many=True, required=False, source="phase_rows")
    addons = SubscriptionAddonOutput(many=True, required=False, source="addons.all")

    def absent(self, sub: Subscription) -> set[str]:
        return set() if self.context.get("expand", True) else {"phases", "addons"}

    def to_representation(self, sub: Subscription) -> dict[str, Any]:
        period = selectors.subscription_current_period(
            subscription=sub, at=max(timezone.now(), sub.active_from)
        )
        sub.current_period = {"from": period.start, "to": period.end}  # type: ignore[attr-defined]
        sub.status_now = selectors.subscription_status(sub)  # type: ignore[attr-defined]
        if self.context.get("expand", True):
            items = list(sub.items.all())
            sub.phase_rows = list(sub.phases.all())  # type: ignore[attr-defined]
            for phase in sub.phase_rows:  # type: ignore[attr-defined]
                phase.item_rows = [i for i in items if i.phase_id == phase.id]
        return super().to_representation(sub)


class SubscriptionChangeOutput(serializers.Serializer):
    current = SubscriptionOutput(help_text="The subscription that ends.")
    next = SubscriptionOutput(help_text="The subscription that follows it.")


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
        return Response(
            paged(
                qs,
                page,
                page_size,
                lambda items: SubscriptionOutput(items, many=True, context={"expand": False}).data,
            )
        )

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
        return Response(SubscriptionOutput(sub).data, status=status.HTTP_201_CREATED)


class _SubscriptionAction(TenantAPIView):
    required_scope = "admin"
    model = Subscription

    def _sub(self, subscription_id: str) -> Subscription:
        return selectors.subscription_get(organization=self.organization, subscription_id=subscription_id)


class SubscriptionDetailView(_SubscriptionAction):
    required_scope = "read"

    @extend_schema(responses=SubscriptionOutput, operation_id="getSubscription")
    def get(self, request: Request, subscription_id: str) -> Response:
        return Response(SubscriptionOutput(self._sub(subscription_id)).data)


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
        return Response(SubscriptionChangeOutput({"current": old, "next": new}).data)


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
        return Response(SubscriptionChangeOutput({"current": old, "next": new}).data)


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
        return Response(SubscriptionOutput(sub).data)


class SubscriptionUnscheduleCancelationView(_SubscriptionAction):
    @extend_schema(request=None, responses=SubscriptionOutput, operation_id="unscheduleCancelation")
    def post(self, request: Request, subscription_id: str) -> Response:
        sub = services.subscription_unschedule_cancelation(
            organization=self.organization, subscription=self._sub(subscription_id), actor=self.actor
        )
        return Response(SubscriptionOutput(sub).data)


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
        return Response(SubscriptionAddonOutput(self._sub(subscription_id).addons.all(), many=True).data)

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
        return Response(SubscriptionOutput(self._sub(subscription_id)).data, status=status.HTTP_200_OK)
