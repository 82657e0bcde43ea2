"""Catalog API: price preview, features, plans (versions, phases, rate cards), add-ons.

Request bodies are read as plain JSON and validated by the catalog's own parsers (which reject
floats and name every bad field by its full path); the serializers below describe those bodies in the
schema and render every answer (prices as a `type`-discriminated union).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiTypes,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from catalog import selectors, services
from catalog.documents import ENTITLEMENT_TYPES, INSTANCE_TYPES, KEY_HELP, RATE_CARD_TYPES, TAX_BEHAVIORS
from catalog.models import AddonVersion, Feature, PlanVersion
from catalog.pricing import PAYMENT_TERMS, TIER_MODES, PriceInvalid, price_preview
from core.api import TenantAPIView, iso
from core.errors import ValidationFailed
from core.pagination import MAX_PAGE_SIZE, PAGE_PARAMETERS, page_of, page_params
from core.pagination import paged as core_paged


def invalid(exc: PriceInvalid) -> ValidationFailed:
    return ValidationFailed(str(exc), errors=exc.errors)


def body_object(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise ValidationFailed("The body must be a JSON object.", field="body")
    return request.data


# --- shared helpers -------------------------------------------------------------------------------
_iso = iso


def paged(qs: Any, request: Request, to_json: Any) -> dict[str, Any]:
    page, page_size = page_params(request)
    return core_paged(qs, page, page_size, lambda items: [to_json(i) for i in items])


def feature_json(feature: Feature) -> dict[str, Any]:
    return {
        "id": feature.id,
        "key": feature.key,
        "name": feature.name,
        "meterSlug": feature.meter_slug or None,
        "meterGroupByFilters": feature.meter_group_by_filters or {},
        "metadata": feature.metadata or {},
        "createdAt": _iso(feature.created_at),
        "updatedAt": _iso(feature.updated_at),
        "archivedAt": _iso(feature.archived_at),
    }


def plan_json(plan: PlanVersion) -> dict[str, Any]:
    return {
        "id": plan.id,
        "key": plan.key,
        "version": plan.version,
        "name": plan.name,
        "description": plan.description or None,
        "currency": plan.currency,
        "billingCadence": plan.billing_cadence,
        "status": plan.status,
        "phases": plan.phases,
        "addons": plan.addons,
        "metadata": plan.metadata or {},
        "effectiveFrom": _iso(plan.published_at),
        "effectiveTo": _iso(plan.archived_at),
        "createdAt": _iso(plan.created_at),
        "updatedAt": _iso(plan.updated_at),
        "publishedAt": _iso(plan.published_at),
        "archivedAt": _iso(plan.archived_at),
    }


def addon_json(addon: AddonVersion) -> dict[str, Any]:
    return {
        "id": addon.id,
        "key": addon.key,
        "version": addon.version,
        "name": addon.name,
        "description": addon.description or None,
        "currency": addon.currency,
        "instanceType": addon.instance_type,
        "status": addon.status,
        "rateCards": addon.rate_cards,
        "metadata": addon.metadata or {},
        "createdAt": _iso(addon.created_at),
        "updatedAt": _iso(addon.updated_at),
        "publishedAt": _iso(addon.published_at),
        "archivedAt": _iso(addon.archived_at),
    }


def _feature_out(feature: Feature) -> dict[str, Any]:
    return dict(FeatureOutput(feature_json(feature)).data)


def _plan_out(plan: PlanVersion) -> dict[str, Any]:
    return dict(PlanOutput(plan_json(plan)).data)


def _addon_out(addon: AddonVersion) -> dict[str, Any]:
    return dict(AddonOutput(addon_json(addon)).data)


def _version_param(request: Request) -> int | None:
    raw = request.query_params.get("version")
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValidationFailed("version must be an integer.", field="version") from None


def _truthy(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true", "yes")


VERSION_PARAM = OpenApiParameter(
    "version", OpenApiTypes.INT, description="A version number (default: the latest)."
)
INCLUDE_ARCHIVED = OpenApiParameter("includeArchived", OpenApiTypes.BOOL)


# --- serializers: what the wire carries ----------------------------------------------------------
# Request bodies are validated by the catalog's own parsers (catalog/documents.py, catalog/pricing.py:
# floats refused, every problem named by its full path such as `phases[0].rateCards[1].price.tiers[2]
# .upToAmount`); these serializers describe the same documents and render the answers.
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


class UnitPriceSerializer(serializers.Serializer):
    type = _const("unit")
    amount = _decimal(help_text="Per unit.")
    minimumAmount = _optional_decimal()
    maximumAmount = _optional_decimal()


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


class TieredPriceSerializer(serializers.Serializer):
    type = _const("tiered")
    mode = serializers.ChoiceField(choices=TIER_MODES, help_text="graduated or volume.")
    tiers = PriceTierSerializer(many=True)
    minimumAmount = _optional_decimal()
    maximumAmount = _optional_decimal()


class PackagePriceSerializer(serializers.Serializer):
    type = _const("package")
    amount = _decimal(help_text="Per package.")
    quantityPerPackage = _decimal()
    minimumAmount = _optional_decimal()
    maximumAmount = _optional_decimal()


class DynamicPriceSerializer(serializers.Serializer):
    type = _const("dynamic")
    multiplier = _decimal(required=False, help_text="Amount = quantity (a cost) x multiplier; default 1.")
    minimumAmount = _optional_decimal()
    maximumAmount = _optional_decimal()


class PercentagePriceSerializer(serializers.Serializer):
    type = _const("percentage")
    percentage = _decimal(help_text="0 to 100, of the transaction volume.")
    fixedAmountPerEvent = _optional_decimal()
    minimumAmount = _optional_decimal()
    maximumAmount = _optional_decimal()


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


class PlanPhaseSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    duration = serializers.CharField(
        required=False, allow_null=True, help_text="ISO 8601 duration; null on the last phase."
    )
    rateCards = RateCardSerializer(many=True, required=False)
    metadata = _strings_map(required=False, allow_null=True)


class PlanAddonLinkSerializer(serializers.Serializer):
    addonKey = serializers.CharField()
    fromPlanPhase = serializers.CharField(required=False, allow_null=True)
    maxQuantity = serializers.IntegerField(required=False, allow_null=True)


@extend_schema_field(PlanPhaseSerializer(many=True))
class PhasesField(serializers.JSONField):
    """A plan version's stored phases (the canonical JSON catalog.documents wrote), rendered as stored."""


@extend_schema_field(RateCardSerializer(many=True))
class RateCardsField(serializers.JSONField):
    """An add-on version's stored rate cards, rendered as stored."""


@extend_schema_field(PlanAddonLinkSerializer(many=True))
class AddonLinksField(serializers.JSONField):
    """A plan version's stored add-on links, rendered as stored."""


class FeatureInput(serializers.Serializer):
    key = serializers.CharField(help_text=KEY_HELP)
    name = serializers.CharField()
    meterSlug = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    meterGroupByFilters = _strings_map(
        required=False, allow_null=True, help_text='Dimension -> value, e.g. {"model": "gpt-4o"}.'
    )
    metadata = _strings_map(required=False, allow_null=True)


class FeatureOutput(serializers.Serializer):
    id = serializers.CharField()
    key = serializers.CharField()
    name = serializers.CharField()
    meterSlug = serializers.CharField(allow_null=True)
    meterGroupByFilters = _strings_map()
    metadata = _strings_map()
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()
    archivedAt = serializers.DateTimeField(allow_null=True)


class PlanInput(serializers.Serializer):
    key = serializers.CharField(help_text=KEY_HELP + " Required on create; cannot change.")
    name = serializers.CharField()
    description = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    currency = serializers.CharField(help_text="ISO 4217 code.")
    billingCadence = serializers.CharField(help_text="ISO 8601 duration, e.g. P1M.")
    phases = PlanPhaseSerializer(many=True, required=False)
    addons = PlanAddonLinkSerializer(many=True, required=False, allow_null=True)
    metadata = _strings_map(required=False, allow_null=True)


class PlanUpdateInput(PlanInput):
    key = serializers.CharField(required=False, help_text="If sent, must be the plan's key.")


class PlanOutput(serializers.Serializer):
    id = serializers.CharField()
    key = serializers.CharField()
    version = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField(allow_null=True)
    currency = serializers.CharField()
    billingCadence = serializers.CharField()
    status = serializers.CharField(help_text="draft, published or archived (scheduled/active per OpenMeter).")
    phases = PhasesField()
    addons = AddonLinksField()
    metadata = _strings_map()
    effectiveFrom = serializers.DateTimeField(allow_null=True)
    effectiveTo = serializers.DateTimeField(allow_null=True)
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()
    publishedAt = serializers.DateTimeField(allow_null=True)
    archivedAt = serializers.DateTimeField(allow_null=True)


class AddonInput(serializers.Serializer):
    key = serializers.CharField(help_text=KEY_HELP + " Required on create; ignored on update.")
    name = serializers.CharField()
    description = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    currency = serializers.CharField()
    instanceType = serializers.ChoiceField(choices=INSTANCE_TYPES, required=False)
    rateCards = RateCardSerializer(many=True, required=False)
    metadata = _strings_map(required=False, allow_null=True)


class AddonUpdateInput(AddonInput):
    key = serializers.CharField(required=False)


class AddonOutput(serializers.Serializer):
    id = serializers.CharField()
    key = serializers.CharField()
    version = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField(allow_null=True)
    currency = serializers.CharField()
    instanceType = serializers.CharField()
    status = serializers.CharField()
    rateCards = RateCardsField()
    metadata = _strings_map()
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()
    publishedAt = serializers.DateTimeField(allow_null=True)
    archivedAt = serializers.DateTimeField(allow_null=True)


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


class PriceLineOutput(serializers.Serializer):
    type = serializers.CharField()
    description = serializers.CharField()
    quantity = serializers.CharField(allow_null=True)
    unitAmount = serializers.CharField(allow_null=True)
    amount = serializers.CharField()
    tier = serializers.IntegerField(allow_null=True)


class PricePreviewOutput(serializers.Serializer):
    amount = serializers.CharField(help_text="Rounded once to the currency.")
    unroundedAmount = serializers.CharField()
    currency = serializers.CharField()
    lines = PriceLineOutput(many=True)


class PricePreviewView(TenantAPIView):
    """POST /api/v1/prices/preview: what a price costs for a quantity (the editor's live preview)."""

    required_scope = "read"

    @extend_schema(request=PricePreviewInput, responses=PricePreviewOutput, operation_id="previewPrice")
    def post(self, request: Request) -> Response:
        data = body_object(request)
        try:
            preview = price_preview(
                price=data.get("price"),
                quantity=data.get("quantity", "0"),
                currency=data.get("currency") or self.organization.default_currency,
                discounts=data.get("discounts"),
                commitments=data.get("commitments"),
                event_count=data.get("eventCount", 0),
            )
        except PriceInvalid as exc:
            raise invalid(exc) from None
        return Response(PricePreviewOutput(preview.to_json()).data)


# --- features -------------------------------------------------------------------------------------
class FeatureListCreateView(TenantAPIView):
    """GET/POST /api/v1/features. Without page/pageSize the list is an array (OpenMeter's shape)."""

    required_scopes = {"GET": "read", "POST": "admin"}

    @extend_schema(
        responses=PolymorphicProxySerializer(
            component_name="FeatureList",
            serializers=[FeatureOutput(many=True), page_of(FeatureOutput)],
            resource_type_field_name=None,
            many=False,
        ),
        parameters=[
            INCLUDE_ARCHIVED,
            OpenApiParameter("meterSlug", OpenApiTypes.STR),
            *PAGE_PARAMETERS,
        ],
        description="An array of features; with `page` or `pageSize`, a page `{totalCount, page, pageSize, "
        "items}`.",
        operation_id="listFeatures",
    )
    def get(self, request: Request) -> Response:
        qs = selectors.feature_list(
            organization=self.organization,
            include_archived=_truthy(request, "includeArchived"),
            meter_slug=request.query_params.get("meterSlug", ""),
        )
        if "page" in request.query_params or "pageSize" in request.query_params:
            return Response(paged(qs, request, _feature_out))
        return Response([_feature_out(f) for f in qs[:MAX_PAGE_SIZE]])

    @extend_schema(request=FeatureInput, responses={201: FeatureOutput}, operation_id="createFeature")
    def post(self, request: Request) -> Response:
        data = body_object(request)
        feature = services.feature_create(
            organization=self.organization,
            key=data.get("key"),
            name=data.get("name"),
            meter_slug=data.get("meterSlug"),
            meter_group_by_filters=data.get("meterGroupByFilters"),
            metadata=data.get("metadata"),
            actor=self.actor,
        )
        return Response(_feature_out(feature), status=status.HTTP_201_CREATED)


class FeatureDetailView(TenantAPIView):
    required_scopes = {"GET": "read", "DELETE": "admin"}

    @extend_schema(responses=FeatureOutput, operation_id="getFeature")
    def get(self, request: Request, feature_id: str) -> Response:
        return Response(
            _feature_out(selectors.feature_get(organization=self.organization, id_or_key=feature_id))
        )

    @extend_schema(responses={204: None}, operation_id="deleteFeature")
    def delete(self, request: Request, feature_id: str) -> Response:
        """Deletes an unused feature; archives one that plans use (it stays readable by id)."""
        services.feature_delete(organization=self.organization, id_or_key=feature_id, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- plans ----------------------------------------------------------------------------------------
class PlanListCreateView(TenantAPIView):
    required_scopes = {"GET": "read", "POST": "admin"}

    @extend_schema(
        responses=page_of(PlanOutput),
        parameters=[
            OpenApiParameter("key", OpenApiTypes.STR, many=True),
            OpenApiParameter("status", OpenApiTypes.STR, many=True),
            OpenApiParameter("currency", OpenApiTypes.STR),
            INCLUDE_ARCHIVED,
            *PAGE_PARAMETERS,
        ],
        operation_id="listPlans",
    )
    def get(self, request: Request) -> Response:
        p = request.query_params
        qs = selectors.plan_list(
            organization=self.organization,
            key=p.getlist("key"),
            status=p.getlist("status"),
            currency=p.get("currency", ""),
            include_archived=_truthy(request, "includeArchived") or bool(p.getlist("status")),
        )
        return Response(paged(qs, request, _plan_out))

    @extend_schema(
        request=PlanInput,
        responses={201: PlanOutput},
        operation_id="createPlan",
        examples=[
            OpenApiExample(
                "A monthly fee and graduated token pricing",
                request_only=True,
                value={
                    "key": "pro",
                    "name": "Pro",
                    "currency": "USD",
                    "billingCadence": "P1M",
                    "phases": [
                        {
                            "key": "default",
                            "name": "Default",
                            "rateCards": [
                                {
                                    "type": "flat_fee",
                                    "key": "platform",
                                    "name": "Platform fee",
                                    "billingCadence": "P1M",
                                    "price": {"type": "flat", "amount": "49", "paymentTerm": "in_advance"},
                                },
                                {
                                    "type": "usage_based",
                                    "key": "gpt_tokens",
                                    "name": "GPT tokens",
                                    "featureKey": "gpt_tokens",
                                    "billingCadence": "P1M",
                                    "price": {
                                        "type": "tiered",
                                        "mode": "graduated",
                                        "tiers": [
                                            {
                                                "upToAmount": "1000000",
                                                "unitPrice": {"type": "unit", "amount": "0.00001"},
                                            },
                                            {
                                                "upToAmount": None,
                                                "unitPrice": {"type": "unit", "amount": "0.000005"},
                                            },
                                        ],
                                    },
                                    "entitlementTemplate": {
                                        "type": "metered",
                                        "usagePeriod": "P1M",
                                        "issueAfterReset": "5000000",
                                    },
                                },
                            ],
                        }
                    ],
                },
            )
        ],
    )
    def post(self, request: Request) -> Response:
        data = body_object(request)
        plan = services.plan_create(
            organization=self.organization,
            key=data.get("key"),
            data={k: v for k, v in data.items() if k != "key"},
            actor=self.actor,
        )
        return Response(_plan_out(plan), status=status.HTTP_201_CREATED)


class PlanDetailView(TenantAPIView):
    required_scopes = {"GET": "read", "PUT": "admin", "DELETE": "admin"}

    @extend_schema(responses=PlanOutput, parameters=[VERSION_PARAM], operation_id="getPlan")
    def get(self, request: Request, plan_id: str) -> Response:
        plan = selectors.plan_get(
            organization=self.organization, id_or_key=plan_id, version=_version_param(request)
        )
        return Response(_plan_out(plan))

    @extend_schema(request=PlanUpdateInput, responses=PlanOutput, operation_id="updatePlan")
    def put(self, request: Request, plan_id: str) -> Response:
        data = body_object(request)
        plan = selectors.plan_get(organization=self.organization, id_or_key=plan_id)
        if "key" in data and data["key"] != plan.key:
            raise ValidationFailed("A plan's key cannot change.", field="key")
        plan = services.plan_update(
            organization=self.organization,
            plan_id=plan.id,
            data={k: v for k, v in data.items() if k != "key"},
            actor=self.actor,
        )
        return Response(_plan_out(plan))

    @extend_schema(responses={204: None}, operation_id="deletePlan")
    def delete(self, request: Request, plan_id: str) -> Response:
        plan = selectors.plan_get(organization=self.organization, id_or_key=plan_id)
        services.plan_delete(organization=self.organization, plan_id=plan.id, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PlanPublishView(TenantAPIView):
    required_scope = "admin"

    @extend_schema(request=None, responses=PlanOutput, operation_id="publishPlan")
    def post(self, request: Request, plan_id: str) -> Response:
        plan = selectors.plan_get(organization=self.organization, id_or_key=plan_id)
        return Response(
            _plan_out(
                services.plan_publish(organization=self.organization, plan_id=plan.id, actor=self.actor)
            )
        )


class PlanArchiveView(TenantAPIView):
    required_scope = "admin"

    @extend_schema(request=None, responses=PlanOutput, operation_id="archivePlan")
    def post(self, request: Request, plan_id: str) -> Response:
        plan = selectors.plan_get(organization=self.organization, id_or_key=plan_id)
        return Response(
            _plan_out(
                services.plan_archive(organization=self.organization, plan_id=plan.id, actor=self.actor)
            )
        )


class PlanNextVersionView(TenantAPIView):
    required_scope = "admin"

    @extend_schema(request=None, responses={201: PlanOutput}, operation_id="nextPlanVersion")
    def post(self, request: Request, plan_id: str) -> Response:
        plan = services.plan_next_version(organization=self.organization, id_or_key=plan_id, actor=self.actor)
        return Response(_plan_out(plan), status=status.HTTP_201_CREATED)


def _draft_id(view: TenantAPIView, plan_id: str) -> str:
    return selectors.plan_get(organization=view.organization, id_or_key=plan_id).id


class PhaseListCreateView(TenantAPIView):
    required_scope = "admin"

    @extend_schema(request=PlanPhaseSerializer, responses={201: PlanOutput}, operation_id="addPlanPhase")
    def post(self, request: Request, plan_id: str) -> Response:
        plan = services.phase_add(
            organization=self.organization,
            plan_id=_draft_id(self, plan_id),
            phase=body_object(request),
            actor=self.actor,
        )
        return Response(_plan_out(plan), status=status.HTTP_201_CREATED)


class PhaseDetailView(TenantAPIView):
    required_scope = "admin"

    @extend_schema(request=PlanPhaseSerializer, responses=PlanOutput, operation_id="updatePlanPhase")
    def put(self, request: Request, plan_id: str, phase_key: str) -> Response:
        plan = services.phase_update(
            organization=self.organization,
            plan_id=_draft_id(self, plan_id),
            phase_key=phase_key,
            phase=body_object(request),
            actor=self.actor,
        )
        return Response(_plan_out(plan))

    @extend_schema(responses={200: PlanOutput}, operation_id="deletePlanPhase")
    def delete(self, request: Request, plan_id: str, phase_key: str) -> Response:
        plan = services.phase_remove(
            organization=self.organization,
            plan_id=_draft_id(self, plan_id),
            phase_key=phase_key,
            actor=self.actor,
        )
        return Response(_plan_out(plan))


class RateCardListCreateView(TenantAPIView):
    required_scope = "admin"

    @extend_schema(request=RateCardSerializer, responses={201: PlanOutput}, operation_id="addRateCard")
    def post(self, request: Request, plan_id: str, phase_key: str) -> Response:
        plan = services.rate_card_upsert(
            organization=self.organization,
            plan_id=_draft_id(self, plan_id),
            phase_key=phase_key,
            rate_card=body_object(request),
            actor=self.actor,
        )
        return Response(_plan_out(plan), status=status.HTTP_201_CREATED)


class RateCardDetailView(TenantAPIView):
    required_scope = "admin"

    @extend_schema(request=RateCardSerializer, responses=PlanOutput, operation_id="updateRateCard")
    def put(self, request: Request, plan_id: str, phase_key: str, rate_card_key: str) -> Response:
        plan = services.rate_card_upsert(
            organization=self.organization,
            plan_id=_draft_id(self, plan_id),
            phase_key=phase_key,
            rate_card=body_object(request),
            replace_key=rate_card_key,
            actor=self.actor,
        )
        return Response(_plan_out(plan))

    @extend_schema(responses={200: PlanOutput}, operation_id="deleteRateCard")
    def delete(self, request: Request, plan_id: str, phase_key: str, rate_card_key: str) -> Response:
        plan = services.rate_card_remove(
            organization=self.organization,
            plan_id=_draft_id(self, plan_id),
            phase_key=phase_key,
            rate_card_key=rate_card_key,
            actor=self.actor,
        )
        return Response(_plan_out(plan))


# --- add-ons --------------------------------------------------------------------------------------
class AddonListCreateView(TenantAPIView):
    required_scopes = {"GET": "read", "POST": "admin"}

    @extend_schema(
        responses=page_of(AddonOutput),
        parameters=[
            OpenApiParameter("key", OpenApiTypes.STR),
            OpenApiParameter("status", OpenApiTypes.STR),
            *PAGE_PARAMETERS,
        ],
        operation_id="listAddons",
    )
    def get(self, request: Request) -> Response:
        p = request.query_params
        qs = selectors.addon_list(
            organization=self.organization, key=p.get("key", ""), status=p.get("status", "")
        )
        return Response(paged(qs, request, _addon_out))

    @extend_schema(request=AddonInput, responses={201: AddonOutput}, operation_id="createAddon")
    def post(self, request: Request) -> Response:
        data = body_object(request)
        addon = services.addon_create(
            organization=self.organization,
            key=data.get("key"),
            data={k: v for k, v in data.items() if k != "key"},
            actor=self.actor,
        )
        return Response(_addon_out(addon), status=status.HTTP_201_CREATED)


class AddonDetailView(TenantAPIView):
    required_scopes = {"GET": "read", "PUT": "admin"}

    @extend_schema(responses=AddonOutput, parameters=[VERSION_PARAM], operation_id="getAddon")
    def get(self, request: Request, addon_id: str) -> Response:
        addon = selectors.addon_get(
            organization=self.organization, id_or_key=addon_id, version=_version_param(request)
        )
        return Response(_addon_out(addon))

    @extend_schema(request=AddonUpdateInput, responses=AddonOutput, operation_id="updateAddon")
    def put(self, request: Request, addon_id: str) -> Response:
        data = body_object(request)
        addon = selectors.addon_get(organization=self.organization, id_or_key=addon_id)
        addon = services.addon_update(
            organization=self.organization,
            addon_id=addon.id,
            data={k: v for k, v in data.items() if k != "key"},
            actor=self.actor,
        )
        return Response(_addon_out(addon))


class AddonPublishView(TenantAPIView):
    required_scope = "admin"

    @extend_schema(request=None, responses=AddonOutput, operation_id="publishAddon")
    def post(self, request: Request, addon_id: str) -> Response:
        addon = selectors.addon_get(organization=self.organization, id_or_key=addon_id)
        return Response(
            _addon_out(
                services.addon_publish(organization=self.organization, addon_id=addon.id, actor=self.actor)
            )
        )


class AddonArchiveView(TenantAPIView):
    required_scope = "admin"

    @extend_schema(request=None, responses=AddonOutput, operation_id="archiveAddon")
    def post(self, request: Request, addon_id: str) -> Response:
        addon = selectors.addon_get(organization=self.organization, id_or_key=addon_id)
        return Response(
            _addon_out(
                services.addon_archive(organization=self.organization, addon_id=addon.id, actor=self.actor)
            )
        )


class AddonNextVersionView(TenantAPIView):
    required_scope = "admin"

    @extend_schema(request=None, responses={201: AddonOutput}, operation_id="nextAddonVersion")
    def post(self, request: Request, addon_id: str) -> Response:
        addon = services.addon_next_version(
            organization=self.organization, id_or_key=addon_id, actor=self.actor
        )
        return Response(_addon_out(addon), status=status.HTTP_201_CREATED)
