"""Entitlements and access: OpenMeter's customer-scoped paths (v2, and the v1 value/access paths), so the
official SDK works unchanged; the organization-wide admin list."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing import selectors, services
from billing.api.base import (
    INCLUDE_DELETED,
    TIME_PARAM,
    VALUE_EXAMPLE,
    CustomerScopedView,
    include_deleted,
    time_param,
)
from billing.api.serializers import (
    CustomerAccessOutput,
    EntitlementHistoryOutput,
    EntitlementInput,
    EntitlementOutput,
    EntitlementValueOutput,
    EntitlementValueV2Output,
)
from billing.models import Entitlement
from core.api_base import ScheduleDateTimeField, TenantAPIView
from core.auth import CachedBearerAuthentication
from core.errors import NotFound, ValidationFailed
from core.pagination import PAGE_PARAMETERS, page_of, page_params, paged


class CustomerEntitlementsView(CustomerScopedView):
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
            include_deleted=include_deleted(request),
        )
        qs = qs.prefetch_related("resets")
        return Response(paged(qs, page, page_size, lambda items: EntitlementOutput(items, many=True).data))

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
        return Response(EntitlementOutput(ent).data, status=status.HTTP_201_CREATED)


class CustomerEntitlementDetailView(CustomerScopedView):
    @extend_schema(responses=EntitlementOutput, operation_id="getCustomerEntitlementV2")
    def get(self, request: Request, customer: str, entitlement: str) -> Response:
        cust = self._customer(customer)
        return Response(EntitlementOutput(self._entitlement(cust, entitlement)).data)

    @extend_schema(responses={204: None}, operation_id="deleteCustomerEntitlementV2")
    def delete(self, request: Request, customer: str, entitlement: str) -> Response:
        cust = self._customer(customer)
        services.entitlement_delete(
            organization=self.organization, entitlement=self._entitlement(cust, entitlement), actor=self.actor
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class CustomerEntitlementOverrideView(CustomerScopedView):
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
        return Response(EntitlementOutput(new).data, status=status.HTTP_201_CREATED)


class CustomerEntitlementValueView(CustomerScopedView):
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
        at = time_param(request) or timezone.now()
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
        return Response(out(value).data)


@extend_schema_view(
    get=extend_schema(responses=EntitlementValueOutput, operation_id="getCustomerEntitlementValue")
)
class CustomerEntitlementValueV1View(CustomerEntitlementValueView):
    v2 = False


class CustomerEntitlementHistoryView(CustomerScopedView):
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
        start = time_param(request, "from") or ent.measure_usage_from or ent.active_from
        end = time_param(request, "to") or now
        if end <= start:
            raise ValidationFailed("to must be after from.", field="to")
        window = request.query_params.get("windowSize", "DAY")
        tz = request.query_params.get("windowTimeZone", "UTC")
        body = selectors.entitlement_history(
            organization=self.organization, entitlement=ent, start=start, end=end, window_size=window, tz=tz
        )
        return Response(EntitlementHistoryOutput(body).data)


class CustomerEntitlementResetView(CustomerScopedView):
    class CustomerEntitlementResetInput(serializers.Serializer):
        effectiveAt = ScheduleDateTimeField(required=False)
        retainAnchor = serializers.BooleanField(required=False)

    Input = CustomerEntitlementResetInput

    @extend_schema(request=Input, responses={204: None}, operation_id="resetCustomerEntitlementV2")
    def post(self, request: Request, customer: str, entitlement: str) -> Response:
        cust = self._customer(customer)
        v = self.validated(self.Input)
        services.entitlement_reset(
            organization=self.organization,
            entitlement=self._entitlement(cust, entitlement),
            at=v.get("effectiveAt"),
            actor=self.actor,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class CustomerAccessView(CustomerScopedView):
    authentication_classes = [CachedBearerAuthentication]

    @extend_schema(responses=CustomerAccessOutput, operation_id="getCustomerAccess")
    def get(self, request: Request, customer: str) -> Response:
        cust = self._customer(customer)
        access = selectors.customer_access(organization=self.organization, customer=cust)
        return Response(CustomerAccessOutput({"entitlements": access}).data)


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
            organization=self.organization, include_deleted=include_deleted(request)
        )
        if request.query_params.get("featureKey"):
            qs = qs.filter(feature_key=request.query_params["featureKey"])
        qs = qs.prefetch_related("resets")
        return Response(paged(qs, page, page_size, lambda items: EntitlementOutput(items, many=True).data))
