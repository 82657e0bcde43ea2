"""Grants of a metered entitlement: list and create under the customer's entitlement, void, and the
organization-wide admin list."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from billing import selectors, services
from billing.api.base import INCLUDE_DELETED, CustomerScopedView, include_deleted
from billing.api.serializers import GrantInput, GrantOutput
from billing.models import Grant
from core.api_base import TenantAPIView
from core.pagination import PAGE_PARAMETERS, page_of, page_params, paged


class CustomerEntitlementGrantsView(CustomerScopedView):
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
            include_deleted=include_deleted(request),
        )
        return Response(paged(qs, page, page_size, lambda items: GrantOutput(items, many=True).data))

    @extend_schema(
        request=GrantInput, responses={201: GrantOutput}, operation_id="createCustomerEntitlementGrantV2"
    )
    def post(self, request: Request, customer: str, entitlement: str) -> Response:
        cust = self._customer(customer)
        ent = self._entitlement(cust, entitlement)
        v = self.validated(GrantInput)
        grant = services.grant_create(
            organization=self.organization,
            entitlement=ent,
            actor=self.actor,
            **GrantInput.kwargs(v),
        )
        return Response(GrantOutput(grant).data, status=status.HTTP_201_CREATED)


class GrantVoidView(TenantAPIView):
    required_scope = "admin"
    model = Grant

    @extend_schema(responses={204: None}, operation_id="voidGrant")
    def delete(self, request: Request, grant_id: str) -> Response:
        services.grant_void(organization=self.organization, grant_id=grant_id, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


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
        qs = selectors.grant_list(organization=self.organization, include_deleted=include_deleted(request))
        return Response(paged(qs, page, page_size, lambda items: GrantOutput(items, many=True).data))
