"""Catalog API: price preview, features, plans (versions, phases, rate cards), add-ons.

Request bodies are read as plain JSON and validated by the catalog's own parsers (which reject
floats and name every bad field by its full path); DRF serializers describe responses.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from catalog import selectors, services
from catalog.models import AddonVersion, Feature, PlanVersion
from catalog.pricing import PriceInvalid, price_preview
from core.api import TenantAPIView
from core.errors import ValidationFailed


def invalid(exc: PriceInvalid) -> ValidationFailed:
    return ValidationFailed(str(exc), errors=exc.errors)


def body_object(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise ValidationFailed("The body must be a JSON object.", field="body")
    return request.data


class PricePreviewView(TenantAPIView):
    """POST /api/v1/prices/preview: what a price costs for a quantity (the editor's live preview)."""

    required_scope = "read"

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT, operation_id="previewPrice")
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
        return Response(preview.to_json())


# --- shared helpers -------------------------------------------------------------------------------
MAX_PAGE_SIZE = 1000


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def page_params(request: Request, default_size: int = 100) -> tuple[int, int]:
    def as_int(name: str, default: int, maximum: int) -> int:
        raw = request.query_params.get(name)
        if raw in (None, ""):
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ValidationFailed(f"{name} must be an integer.", field=name) from None
        if not 1 <= value <= maximum:
            raise ValidationFailed(f"{name} must be between 1 and {maximum}.", field=name)
        return value

    return as_int("page", 1, 10**9), as_int("pageSize", default_size, MAX_PAGE_SIZE)


def paged(qs: Any, request: Request, to_json: Any) -> dict[str, Any]:
    page, page_size = page_params(request)
    total = qs.count()
    items = list(qs[(page - 1) * page_size : page * page_size])
    return {"totalCount": total, "page": page, "pageSize": page_size, "items": [to_json(i) for i in items]}


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


OBJ = OpenApiTypes.OBJECT


# --- features -------------------------------------------------------------------------------------
class FeatureListCreateView(TenantAPIView):
    """GET/POST /api/v1/features. Without page/pageSize the list is an array (OpenMeter's shape)."""

    required_scopes = {"GET": "read", "POST": "admin"}

    @extend_schema(responses=OBJ, operation_id="listFeatures")
    def get(self, request: Request) -> Response:
        qs = selectors.feature_list(
            organization=self.organization,
            include_archived=_truthy(request, "includeArchived"),
            meter_slug=request.query_params.get("meterSlug", ""),
        )
        if "page" in request.query_params or "pageSize" in request.query_params:
            return Response(paged(qs, request, feature_json))
        return Response([feature_json(f) for f in qs[:MAX_PAGE_SIZE]])

    @extend_schema(request=OBJ, responses={201: OBJ}, operation_id="createFeature")
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
        return Response(feature_json(feature), status=status.HTTP_201_CREATED)


class FeatureDetailView(TenantAPIView):
    required_scopes = {"GET": "read", "DELETE": "admin"}

    @extend_schema(responses=OBJ, operation_id="getFeature")
    def get(self, request: Request, feature_id: str) -> Response:
        return Response(
            feature_json(selectors.feature_get(organization=self.organization, id_or_key=feature_id))
        )

    @extend_schema(responses={204: None}, operation_id="deleteFeature")
    def delete(self, request: Request, feature_id: str) -> Response:
        """Deletes an unused feature; archives one that plans use (it stays readable by id)."""
        services.feature_delete(organization=self.organization, id_or_key=feature_id, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- plans ----------------------------------------------------------------------------------------
class PlanListCreateView(TenantAPIView):
    required_scopes = {"GET": "read", "POST": "admin"}

    @extend_schema(responses=OBJ, operation_id="listPlans")
    def get(self, request: Request) -> Response:
        p = request.query_params
        qs = selectors.plan_list(
            organization=self.organization,
            key=p.getlist("key"),
            status=p.getlist("status"),
            currency=p.get("currency", ""),
            include_archived=_truthy(request, "includeArchived") or bool(p.getlist("status")),
        )
        return Response(paged(qs, request, plan_json))

    @extend_schema(request=OBJ, responses={201: OBJ}, operation_id="createPlan")
    def post(self, request: Request) -> Response:
        data = body_object(request)
        plan = services.plan_create(
            organization=self.organization,
            key=data.get("key"),
            data={k: v for k, v in data.items() if k != "key"},
            actor=self.actor,
        )
        return Response(plan_json(plan), status=status.HTTP_201_CREATED)


class PlanDetailView(TenantAPIView):
    required_scopes = {"GET": "read", "PUT": "admin", "DELETE": "admin"}

    @extend_schema(responses=OBJ, operation_id="getPlan")
    def get(self, request: Request, plan_id: str) -> Response:
        plan = selectors.plan_get(
            organization=self.organization, id_or_key=plan_id, version=_version_param(request)
        )
        return Response(plan_json(plan))

    @extend_schema(request=OBJ, responses=OBJ, operation_id="updatePlan")
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
        return Response(plan_json(plan))

    @extend_schema(responses={204: None}, operation_id="deletePlan")
    def delete(self, request: Request, plan_id: str) -> Response:
        plan = selectors.plan_get(organization=self.organization, id_or_key=plan_id)
        services.plan_delete(organization=self.organization, plan_id=plan.id, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PlanPublishView(TenantAPIView):
    required_scope = "admin"

    @extend_schema(request=None, responses=OBJ, operation_id="publishPlan")
    def post(self, request: Request, plan_id: str) -> Response:
        plan = selectors.plan_get(organization=self.organization, id_or_key=plan_id)
        return Response(
            plan_json(
                services.plan_publish(organization=self.organization, plan_id=plan.id, actor=self.actor)
            )
        )


class PlanArchiveView(TenantAPIView):
    required_scope = "admin"

    @extend_schema(request=None, responses=OBJ, operation_id="archivePlan")
    def post(self, request: Request, plan_id: str) -> Response:
        plan = selectors.plan_get(organization=self.organization, id_or_key=plan_id)
        return Response(
            plan_json(
                services.plan_archive(organization=self.organization, plan_id=plan.id, actor=self.actor)
            )
        )


class PlanNextVersionView(TenantAPIView):
    required_scope = "admin"

    @extend_schema(request=None, responses={201: OBJ}, operation_id="nextPlanVersion")
    def post(self, request: Request, plan_id: str) -> Response:
        plan = services.plan_next_version(organization=self.organization, id_or_key=plan_id, actor=self.actor)
        return Response(plan_json(plan), status=status.HTTP_201_CREATED)


def _draft_id(view: TenantAPIView, plan_id: str) -> str:
    return selectors.plan_get(organization=view.organization, id_or_key=plan_id).id


class PhaseListCreateView(TenantAPIView):
    required_scope = "admin"

    @extend_schema(request=OBJ, responses={201: OBJ}, operation_id="addPlanPhase")
    def post(self, request: Request, plan_id: str) -> Response:
        plan = services.phase_add(
            organization=self.organization,
            plan_id=_draft_id(self, plan_id),
            phase=body_object(request),
            actor=self.actor,
        )
        return Response(plan_json(plan), status=status.HTTP_201_CREATED)


class PhaseDetailView(TenantAPIView):
    required_scope = "admin"

    @extend_schema(request=OBJ, responses=OBJ, operation_id="updatePlanPhase")
    def put(self, request: Request, plan_id: str, phase_key: str) -> Response:
        plan = services.phase_update(
            organization=self.organization,
            plan_id=_draft_id(self, plan_id),
            phase_key=phase_key,
            phase=body_object(request),
            actor=self.actor,
        )
        return Response(plan_json(plan))

    @extend_schema(responses=OBJ, operation_id="deletePlanPhase")
    def delete(self, request: Request, plan_id: str, phase_key: str) -> Response:
        plan = services.phase_remove(
            organization=self.organization,
            plan_id=_draft_id(self, plan_id),
            phase_key=phase_key,
            actor=self.actor,
        )
        return Response(plan_json(plan))


class RateCardListCreateView(TenantAPIView):
    required_scope = "admin"

    @extend_schema(request=OBJ, responses={201: OBJ}, operation_id="addRateCard")
    def post(self, request: Request, plan_id: str, phase_key: str) -> Response:
        plan = services.rate_card_upsert(
            organization=self.organization,
            plan_id=_draft_id(self, plan_id),
            phase_key=phase_key,
            rate_card=body_object(request),
            actor=self.actor,
        )
        return Response(plan_json(plan), status=status.HTTP_201_CREATED)


class RateCardDetailView(TenantAPIView):
    required_scope = "admin"

    @extend_schema(request=OBJ, responses=OBJ, operation_id="updateRateCard")
    def put(self, request: Request, plan_id: str, phase_key: str, rate_card_key: str) -> Response:
        plan = services.rate_card_upsert(
            organization=self.organization,
            plan_id=_draft_id(self, plan_id),
            phase_key=phase_key,
            rate_card=body_object(request),
            replace_key=rate_card_key,
            actor=self.actor,
        )
        return Response(plan_json(plan))

    @extend_schema(responses=OBJ, operation_id="deleteRateCard")
    def delete(self, request: Request, plan_id: str, phase_key: str, rate_card_key: str) -> Response:
        plan = services.rate_card_remove(
            organization=self.organization,
            plan_id=_draft_id(self, plan_id),
            phase_key=phase_key,
            rate_card_key=rate_card_key,
            actor=self.actor,
        )
        return Response(plan_json(plan))


# --- add-ons --------------------------------------------------------------------------------------
class AddonListCreateView(TenantAPIView):
    required_scopes = {"GET": "read", "POST": "admin"}

    @extend_schema(responses=OBJ, operation_id="listAddons")
    def get(self, request: Request) -> Response:
        p = request.query_params
        qs = selectors.addon_list(
            organization=self.organization, key=p.get("key", ""), status=p.get("status", "")
        )
        return Response(paged(qs, request, addon_json))

    @extend_schema(request=OBJ, responses={201: OBJ}, operation_id="createAddon")
    def post(self, request: Request) -> Response:
        data = body_object(request)
        addon = services.addon_create(
            organization=self.organization,
            key=data.get("key"),
            data={k: v for k, v in data.items() if k != "key"},
            actor=self.actor,
        )
        return Response(addon_json(addon), status=status.HTTP_201_CREATED)


class AddonDetailView(TenantAPIView):
    required_scopes = {"GET": "read", "PUT": "admin"}

    @extend_schema(responses=OBJ, operation_id="getAddon")
    def get(self, request: Request, addon_id: str) -> Response:
        addon = selectors.addon_get(
            organization=self.organization, id_or_key=addon_id, version=_version_param(request)
        )
        return Response(addon_json(addon))

    @extend_schema(request=OBJ, responses=OBJ, operation_id="updateAddon")
    def put(self, request: Request, addon_id: str) -> Response:
        data = body_object(request)
        addon = selectors.addon_get(organization=self.organization, id_or_key=addon_id)
        addon = services.addon_update(
            organization=self.organization,
            addon_id=addon.id,
            data={k: v for k, v in data.items() if k != "key"},
            actor=self.actor,
        )
        return Response(addon_json(addon))


class AddonPublishView(TenantAPIView):
    required_scope = "admin"

    @extend_schema(request=None, responses=OBJ, operation_id="publishAddon")
    def post(self, request: Request, addon_id: str) -> Response:
        addon = selectors.addon_get(organization=self.organization, id_or_key=addon_id)
        return Response(
            addon_json(
                services.addon_publish(organization=self.organization, addon_id=addon.id, actor=self.actor)
            )
        )


class AddonArchiveView(TenantAPIView):
    required_scope = "admin"

    @extend_schema(request=None, responses=OBJ, operation_id="archiveAddon")
    def post(self, request: Request, addon_id: str) -> Response:
        addon = selectors.addon_get(organization=self.organization, id_or_key=addon_id)
        return Response(
            addon_json(
                services.addon_archive(organization=self.organization, addon_id=addon.id, actor=self.actor)
            )
        )


class AddonNextVersionView(TenantAPIView):
    required_scope = "admin"

    @extend_schema(request=None, responses={201: OBJ}, operation_id="nextAddonVersion")
    def post(self, request: Request, addon_id: str) -> Response:
        addon = services.addon_next_version(
            organization=self.organization, id_or_key=addon_id, actor=self.actor
        )
        return Response(addon_json(addon), status=status.HTTP_201_CREATED)
