"""Billing settings: tax rates and the organization's invoicing settings."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.api_base import TenantAPIView
from core.errors import ValidationFailed
from core.pagination import PAGE_PARAMETERS, page_of, page_params, paged
from invoicing import selectors, services
from invoicing.models import TaxRate


class TaxRateOutput(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    percentage = serializers.DecimalField(max_digits=7, decimal_places=4, normalize_output=True)
    behavior = serializers.SerializerMethodField()
    inclusive = serializers.BooleanField()
    isDefault = serializers.BooleanField(source="is_default")
    archivedAt = serializers.DateTimeField(source="archived_at", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")

    def get_behavior(self, obj: TaxRate) -> str:
        return "inclusive" if obj.inclusive else "exclusive"


class _TaxRateInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    percentage = serializers.CharField(max_length=20)  # a decimal string; parsed by the service
    behavior = serializers.ChoiceField(choices=["inclusive", "exclusive"], default="exclusive")
    isDefault = serializers.BooleanField(default=False)

    def validate_percentage(self, value: Any) -> Any:
        if not isinstance(self.initial_data.get("percentage"), str):
            raise serializers.ValidationError('Send the percentage as a decimal string, e.g. "19".')
        return value


class TaxRateListView(TenantAPIView):
    model = TaxRate
    required_scopes = {"GET": "read", "POST": "admin"}

    Input = _TaxRateInput

    @extend_schema(
        responses=page_of(TaxRateOutput),
        parameters=[OpenApiParameter("includeArchived", bool), *PAGE_PARAMETERS],
        operation_id="listTaxRates",
    )
    def get(self, request: Request) -> Response:
        include = request.query_params.get("includeArchived", "") in ("1", "true")
        qs = selectors.tax_rate_list(organization=self.organization, include_archived=include)
        page, size = page_params(request)
        return Response(paged(qs, page, size, lambda rows: TaxRateOutput(rows, many=True).data))

    @extend_schema(request=_TaxRateInput, responses={201: TaxRateOutput}, operation_id="createTaxRate")
    def post(self, request: Request) -> Response:
        v = self.validated(self.Input)
        rate = services.tax_rate_create(
            organization=self.organization,
            name=v["name"],
            percentage=v["percentage"],
            inclusive=v["behavior"] == "inclusive",
            is_default=v["isDefault"],
            actor=self.actor,
        )
        return Response(TaxRateOutput(rate).data, status=status.HTTP_201_CREATED)


class TaxRateDetailView(TenantAPIView):
    required_scopes = {"GET": "read", "PATCH": "admin", "DELETE": "admin"}

    class Input(_TaxRateInput):
        name = serializers.CharField(max_length=100, required=False)
        percentage = serializers.CharField(max_length=20, required=False)
        behavior = serializers.ChoiceField(choices=["inclusive", "exclusive"], required=False)
        isDefault = serializers.BooleanField(required=False)

    @extend_schema(responses=TaxRateOutput, operation_id="getTaxRate")
    def get(self, request: Request, tax_rate_id: str) -> Response:
        rate = selectors.tax_rate_get(organization=self.organization, tax_rate_id=tax_rate_id)
        return Response(TaxRateOutput(rate).data)

    @extend_schema(request=Input, responses=TaxRateOutput, operation_id="updateTaxRate")
    def patch(self, request: Request, tax_rate_id: str) -> Response:
        selectors.tax_rate_get(organization=self.organization, tax_rate_id=tax_rate_id)  # 404 first
        v = self.validated(self.Input, partial=True)
        rate = services.tax_rate_update(
            organization=self.organization,
            tax_rate_id=tax_rate_id,
            name=v.get("name"),
            percentage=v.get("percentage"),
            inclusive=(v["behavior"] == "inclusive") if "behavior" in v else None,
            is_default=v.get("isDefault"),
            actor=self.actor,
        )
        return Response(TaxRateOutput(rate).data)

    @extend_schema(request=None, responses={204: None, 200: TaxRateOutput}, operation_id="deleteTaxRate")
    def delete(self, request: Request, tax_rate_id: str) -> Response:
        rate = services.tax_rate_archive(
            organization=self.organization, tax_rate_id=tax_rate_id, actor=self.actor
        )
        if rate is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(TaxRateOutput(rate).data)  # used by invoices: archived, not deleted


class BillingSettingsOutput(serializers.Serializer):
    collectionDelaySeconds = serializers.IntegerField(source="collection_delay_seconds")
    autoAdvance = serializers.BooleanField(source="auto_advance")
    draftPeriodSeconds = serializers.IntegerField(source="draft_period_seconds")
    dueDays = serializers.IntegerField(source="due_days")
    numberPrefix = serializers.CharField(source="number_prefix")
    supplierName = serializers.CharField(source="supplier_name")
    supplierAddress = serializers.CharField(source="supplier_address")
    supplierTaxId = serializers.CharField(source="supplier_tax_id")
    supplierEmail = serializers.CharField(source="supplier_email")
    paymentInstructions = serializers.CharField(source="payment_instructions")


SETTINGS_API_FIELDS = {
    "collectionDelaySeconds": "collection_delay_seconds",
    "autoAdvance": "auto_advance",
    "draftPeriodSeconds": "draft_period_seconds",
    "dueDays": "due_days",
    "numberPrefix": "number_prefix",
    "supplierName": "supplier_name",
    "supplierAddress": "supplier_address",
    "supplierTaxId": "supplier_tax_id",
    "supplierEmail": "supplier_email",
    "paymentInstructions": "payment_instructions",
}


class BillingSettingsView(TenantAPIView):
    required_scopes = {"GET": "read", "PUT": "admin"}

    @extend_schema(responses=BillingSettingsOutput, operation_id="getBillingSettings")
    def get(self, request: Request) -> Response:
        cfg = services.invoicing_settings_get(organization=self.organization)
        return Response(BillingSettingsOutput(cfg).data)

    @extend_schema(
        request=BillingSettingsOutput, responses=BillingSettingsOutput, operation_id="updateBillingSettings"
    )
    def put(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise ValidationFailed("Send a JSON object.", field="body")
        unknown = sorted(set(request.data) - set(SETTINGS_API_FIELDS))
        if unknown:
            raise ValidationFailed(
                f"Unknown settings: {', '.join(unknown)}.",
                errors=[{"name": k, "reason": "Unknown setting."} for k in unknown],
            )
        fields = {SETTINGS_API_FIELDS[k]: v for k, v in request.data.items()}
        cfg = services.invoicing_settings_update(organization=self.organization, actor=self.actor, **fields)
        return Response(BillingSettingsOutput(cfg).data)
