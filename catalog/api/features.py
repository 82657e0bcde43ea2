"""Features over the API (OpenMeter's shapes): list, create, read, delete."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, PolymorphicProxySerializer, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from catalog import selectors, services
from catalog.api.serializers import FeatureInput, FeatureOutput, checked_body
from catalog.api.versions import INCLUDE_ARCHIVED, truthy
from core.api_base import TenantAPIView
from core.pagination import MAX_PAGE_SIZE, PAGE_PARAMETERS, page_of, page_params, paged


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
            include_archived=truthy(request, "includeArchived"),
            meter_slug=request.query_params.get("meterSlug", ""),
        )
        if "page" in request.query_params or "pageSize" in request.query_params:
            return Response(
                paged(qs, *page_params(request), lambda rows: FeatureOutput(rows, many=True).data)
            )
        return Response(FeatureOutput(qs[:MAX_PAGE_SIZE], many=True).data)

    @extend_schema(request=FeatureInput, responses={201: FeatureOutput}, operation_id="createFeature")
    def post(self, request: Request) -> Response:
        def rules(raw: dict[str, Any]) -> object:
            return services.feature_check(organization=self.organization, **FeatureInput.arguments(raw))

        raw = checked_body(FeatureInput(data=request.data), rules)
        feature = services.feature_create(
            organization=self.organization, actor=self.actor, **FeatureInput.arguments(raw)
        )
        return Response(FeatureOutput(feature).data, status=status.HTTP_201_CREATED)


class FeatureDetailView(TenantAPIView):
    required_scopes = {"GET": "read", "DELETE": "admin"}

    @extend_schema(responses=FeatureOutput, operation_id="getFeature")
    def get(self, request: Request, feature_id: str) -> Response:
        feature = selectors.feature_get(organization=self.organization, id_or_key=feature_id)
        return Response(FeatureOutput(feature).data)

    @extend_schema(responses={204: None}, operation_id="deleteFeature")
    def delete(self, request: Request, feature_id: str) -> Response:
        """Deletes an unused feature; archives one that plans use (it stays readable by id)."""
        services.feature_delete(organization=self.organization, id_or_key=feature_id, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)
