"""Customers: list, create, get, replace, update, delete (OpenMeter's shapes)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing import selectors, services
from billing.models import Customer
from core.api_base import TenantAPIView
from core.pagination import PAGE_PARAMETERS, page_of, page_params, paged


class AddressSerializer(serializers.Serializer):
    country = serializers.CharField(max_length=2, required=False, allow_blank=True, allow_null=True)
    postalCode = serializers.CharField(max_length=64, required=False, allow_blank=True, allow_null=True)
    state = serializers.CharField(max_length=128, required=False, allow_blank=True, allow_null=True)
    city = serializers.CharField(max_length=128, required=False, allow_blank=True, allow_null=True)
    line1 = serializers.CharField(max_length=256, required=False, allow_blank=True, allow_null=True)
    line2 = serializers.CharField(max_length=256, required=False, allow_blank=True, allow_null=True)
    phoneNumber = serializers.CharField(max_length=64, required=False, allow_blank=True, allow_null=True)


class UsageAttributionSerializer(serializers.Serializer):
    subjectKeys = serializers.ListField(child=serializers.CharField(max_length=256), allow_empty=True)


class CustomerInput(serializers.Serializer):
    name = serializers.CharField(max_length=256)
    key = serializers.CharField(max_length=256, required=False, allow_null=True)
    description = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    primaryEmail = serializers.EmailField(max_length=320, required=False, allow_blank=True, allow_null=True)
    currency = serializers.CharField(max_length=3, required=False, allow_blank=True, allow_null=True)
    timezone = serializers.CharField(max_length=64, required=False, allow_blank=True, allow_null=True)
    billingAddress = AddressSerializer(required=False, allow_null=True)
    taxIds = serializers.ListField(child=serializers.JSONField(), required=False, allow_null=True)
    metadata = serializers.DictField(
        child=serializers.CharField(allow_blank=True), required=False, allow_null=True
    )
    usageAttribution = UsageAttributionSerializer(required=False, allow_null=True)


FIELD_MAP = {  # API name -> service keyword
    "name": "name",
    "key": "key",
    "description": "description",
    "primaryEmail": "primary_email",
    "currency": "currency",
    "timezone": "timezone_name",
    "billingAddress": "billing_address",
    "taxIds": "tax_ids",
    "metadata": "metadata",
}


def customer_kwargs(data: dict[str, Any], *, full: bool) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for api_name, kw in FIELD_MAP.items():
        if api_name in data:
            value = data[api_name]
            kwargs[kw] = dict(value) if isinstance(value, dict) else value
        elif full and api_name != "key":
            kwargs[kw] = (
                None if kw in ("billing_address",) else ("" if kw not in ("tax_ids", "metadata") else None)
            )
    if "usageAttribution" in data:
        kwargs["subject_keys"] = list((data["usageAttribution"] or {}).get("subjectKeys") or [])
    elif full:
        kwargs["subject_keys"] = []
    for kw in ("description", "primary_email", "currency", "timezone_name"):
        if kw in kwargs and kwargs[kw] is None:
            kwargs[kw] = ""
    return kwargs


class CustomerOutput(serializers.Serializer):
    id = serializers.CharField()
    key = serializers.CharField(allow_null=True)
    name = serializers.CharField()
    description = serializers.CharField(allow_null=True)
    primaryEmail = serializers.CharField(source="primary_email", allow_null=True)
    currency = serializers.CharField(allow_null=True)
    timezone = serializers.CharField(allow_null=True)
    billingAddress = serializers.JSONField(source="billing_address")
    taxIds = serializers.JSONField(source="tax_ids")
    metadata = serializers.JSONField()
    usageAttribution = serializers.SerializerMethodField()
    currentSubscriptionId = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")
    deletedAt = serializers.DateTimeField(source="deleted_at", allow_null=True)

    def get_usageAttribution(self, obj: Customer) -> dict[str, list[str]]:
        return {"subjectKeys": sorted(s.subject_key for s in obj.subjects.all())}

    def get_currentSubscriptionId(self, obj: Customer) -> str | None:
        return getattr(obj, "current_subscription_id", None)

    def to_representation(self, instance: Customer) -> dict[str, Any]:
        data = super().to_representation(instance)
        for name in ("description", "primaryEmail", "currency", "timezone"):
            if data[name] == "":
                data[name] = None
        return data


class CustomerListCreateView(TenantAPIView):
    required_scopes = {"GET": "read", "POST": "admin"}
    model = Customer

    @extend_schema(
        responses=page_of(CustomerOutput),
        parameters=[
            OpenApiParameter("search", str, description="Matches key, name, email or a subject."),
            OpenApiParameter("key", str),
            OpenApiParameter("name", str),
            OpenApiParameter("primaryEmail", str),
            OpenApiParameter("subject", str),
            OpenApiParameter("includeDeleted", bool),
            OpenApiParameter("orderBy", str, description="name (default), id, key or createdAt."),
            *PAGE_PARAMETERS,
        ],
        operation_id="listCustomers",
    )
    def get(self, request: Request) -> Response:
        page, page_size = page_params(request)
        p = request.query_params
        qs = selectors.customer_list(
            organization=self.organization,
            search=p.get("search", ""),
            key=p.get("key", ""),
            name=p.get("name", ""),
            primary_email=p.get("primaryEmail", ""),
            subject=p.get("subject", ""),
            include_deleted=p.get("includeDeleted", "").lower() == "true",
            order_by=p.get("orderBy", "name"),
        )
        body = paged(
            qs,
            page,
            page_size,
            lambda items: (
                CustomerOutput(
                    selectors.customers_annotate_current_subscription(
                        organization=self.organization, customers=items
                    ),
                    many=True,
                ).data
            ),
        )
        return Response(body)

    @extend_schema(request=CustomerInput, responses={201: CustomerOutput}, operation_id="createCustomer")
    def post(self, request: Request) -> Response:
        v = self.validated(CustomerInput)
        customer = services.customer_create(
            organization=self.organization,
            actor=self.actor,
            **customer_kwargs(v, full=False),
        )
        return Response(CustomerOutput(customer).data, status=status.HTTP_201_CREATED)


class CustomerDetailView(TenantAPIView):
    required_scopes = {"GET": "read", "PUT": "admin", "PATCH": "admin", "DELETE": "admin"}
    model = Customer

    def _customer(self, id_or_key: str) -> Customer:
        customer = selectors.customer_get(organization=self.organization, id_or_key=id_or_key)
        selectors.customers_annotate_current_subscription(
            organization=self.organization, customers=[customer]
        )
        return customer

    @extend_schema(responses=CustomerOutput, operation_id="getCustomer")
    def get(self, request: Request, id_or_key: str) -> Response:
        return Response(CustomerOutput(self._customer(id_or_key)).data)

    def _update(self, request: Request, id_or_key: str, *, full: bool) -> Response:
        customer = self._customer(id_or_key)
        v = self.validated(CustomerInput, partial=not full)
        customer = services.customer_update(
            organization=self.organization,
            customer=customer,
            actor=self.actor,
            **customer_kwargs(v, full=full),
        )
        selectors.customers_annotate_current_subscription(
            organization=self.organization, customers=[customer]
        )
        return Response(CustomerOutput(customer).data)

    @extend_schema(request=CustomerInput, responses=CustomerOutput, operation_id="replaceCustomer")
    def put(self, request: Request, id_or_key: str) -> Response:
        return self._update(request, id_or_key, full=True)

    @extend_schema(request=CustomerInput, responses=CustomerOutput, operation_id="updateCustomer")
    def patch(self, request: Request, id_or_key: str) -> Response:
        return self._update(request, id_or_key, full=False)

    @extend_schema(responses={204: None}, operation_id="deleteCustomer")
    def delete(self, request: Request, id_or_key: str) -> Response:
        customer = selectors.customer_get(organization=self.organization, id_or_key=id_or_key)
        services.customer_delete(organization=self.organization, customer=customer, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)
