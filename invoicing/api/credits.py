"""Customer credits: list, create, get (with where it was applied), void."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing.selectors import customer_get
from core.api_base import TenantAPIView
from core.pagination import page_params, page_schema, paged
from invoicing import credits
from invoicing.api.params import status_filter
from invoicing.models import CustomerCredit


def _money(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=38, decimal_places=12, normalize_output=True, **kwargs)


class CreditOutput(serializers.Serializer):
    """A credit with what is left of it (`remaining` = amount - applications on invoices not voided or
    gathering) and its status (active, expired, voided, used) now."""

    id = serializers.CharField()
    customerId = serializers.CharField(source="customer_id")
    currency = serializers.CharField()
    amount = _money()
    applied = _money()
    remaining = _money()
    status = serializers.ChoiceField(choices=["active", "expired", "voided", "used"])
    description = serializers.CharField()
    priority = serializers.IntegerField()
    expiresAt = serializers.DateTimeField(source="expires_at", allow_null=True)
    voidedAt = serializers.DateTimeField(source="voided_at", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")


class CreditApplicationOutput(serializers.Serializer):
    id = serializers.CharField()
    invoiceId = serializers.CharField(source="line.invoice_id")
    invoiceNumber = serializers.CharField(source="line.invoice.number")
    invoiceStatus = serializers.CharField(source="line.invoice.status")
    lineId = serializers.CharField(source="line_id")
    amount = _money()
    at = serializers.DateTimeField()


class CreditDetailOutput(CreditOutput):
    applications = CreditApplicationOutput(many=True, source="application_rows")


class CreditListView(TenantAPIView):
    """GET (page-paginated, burn order) and POST /api/v1/customers/{customerIdOrKey}/credits."""

    model = CustomerCredit
    required_scopes = {"GET": "read", "POST": "admin"}

    class Input(serializers.Serializer):
        amount = serializers.CharField(max_length=60)  # a decimal string; parsed by the service
        currency = serializers.CharField(max_length=3, required=False, allow_blank=True)
        description = serializers.CharField(max_length=200, required=False, default="Credit")
        priority = serializers.IntegerField(
            required=False, default=1, min_value=0, max_value=credits.MAX_PRIORITY
        )
        expiresAt = serializers.DateTimeField(required=False, allow_null=True)

        def validate_amount(self, value: Any) -> Any:
            if not isinstance(self.initial_data.get("amount"), str):
                raise serializers.ValidationError('Send the amount as a decimal string, e.g. "25.00".')
            return value

    @page_schema(CreditOutput, "listCustomerCredits", OpenApiParameter("status", str, many=True))
    def get(self, request: Request, customer: str) -> Response:
        cust = customer_get(organization=self.organization, id_or_key=customer)
        statuses = status_filter(request, credits.CREDIT_STATUSES)
        qs = credits.customer_credit_list(
            organization=self.organization, customer_id=cust.id, statuses=statuses
        )
        page, size = page_params(request)
        return Response(paged(qs, page, size, lambda items: CreditOutput(items, many=True).data))

    @extend_schema(request=Input, responses={201: CreditOutput}, operation_id="createCustomerCredit")
    def post(self, request: Request, customer: str) -> Response:
        cust = customer_get(organization=self.organization, id_or_key=customer)
        v = self.validated(self.Input)
        credit = credits.customer_credit_create(
            organization=self.organization,
            customer=cust,
            amount=v["amount"],
            currency=v.get("currency") or None,
            description=v["description"],
            priority=v["priority"],
            expires_at=v.get("expiresAt"),
            actor=self.actor,
        )
        out = credits.customer_credit_get(
            organization=self.organization, customer_id=cust.id, credit_id=credit.id
        )
        return Response(CreditOutput(out).data, status=status.HTTP_201_CREATED)


def _credit_detail(organization: Any, credit: CustomerCredit) -> dict[str, Any]:
    credit.application_rows = list(  # type: ignore[attr-defined]
        credits.credit_application_list(organization=organization, credit=credit)
    )
    return dict(CreditDetailOutput(credit).data)


class CreditDetailView(TenantAPIView):
    """GET /api/v1/customers/{customerIdOrKey}/credits/{creditId}: the credit and where it was applied."""

    required_scope = "read"

    @extend_schema(responses=CreditDetailOutput, operation_id="getCustomerCredit")
    def get(self, request: Request, customer: str, credit_id: str) -> Response:
        cust = customer_get(organization=self.organization, id_or_key=customer)
        credit = credits.customer_credit_get(
            organization=self.organization, customer_id=cust.id, credit_id=credit_id
        )
        return Response(_credit_detail(self.organization, credit))


class CreditVoidView(TenantAPIView):
    """POST .../credits/{creditId}/void: never applied again; what it paid stays paid (409 when voided)."""

    required_scope = "admin"

    @extend_schema(request=None, responses=CreditDetailOutput, operation_id="voidCustomerCredit")
    def post(self, request: Request, customer: str, credit_id: str) -> Response:
        cust = customer_get(organization=self.organization, id_or_key=customer)
        credit = credits.customer_credit_get(
            organization=self.organization, customer_id=cust.id, credit_id=credit_id
        )
        voided = credits.customer_credit_void(organization=self.organization, credit=credit, actor=self.actor)
        return Response(_credit_detail(self.organization, voided))
