"""What the entitlement, grant and notification views share: the customer-scoped view base, the `time`
query parameter, and the parameters and examples of the schema."""

from __future__ import annotations

from datetime import datetime

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter
from rest_framework import serializers
from rest_framework.request import Request

from billing import selectors
from billing.models import Customer, Entitlement
from core.api_base import ScheduleDateTimeField, TenantAPIView
from core.errors import ValidationFailed

INCLUDE_DELETED = OpenApiParameter("includeDeleted", bool)
VALUE_EXAMPLE = OpenApiExample(
    "A metered entitlement with 100 of 1000 used",
    response_only=True,
    value={"hasAccess": True, "balance": 900, "usage": 100, "overage": 0, "totalAvailableGrantAmount": 1000},
)
TIME_PARAM = OpenApiParameter(
    "time", OpenApiTypes.DATETIME, description="The moment to evaluate (default now)."
)


class CustomerScopedView(TenantAPIView):
    required_scopes = {"GET": "read", "POST": "admin", "PUT": "admin", "DELETE": "admin"}
    model = Entitlement

    def _customer(self, customer_id_or_key: str) -> Customer:
        return selectors.customer_get(organization=self.organization, id_or_key=customer_id_or_key)

    def _entitlement(self, customer: Customer, id_or_feature_key: str) -> Entitlement:
        ent = selectors.entitlement_get(
            organization=self.organization, customer=customer, id_or_feature_key=id_or_feature_key
        )
        ent.customer = customer  # the answer names the customer: no second read of it
        return ent


def include_deleted(request: Request) -> bool:
    return request.query_params.get("includeDeleted") == "true"


def time_param(request: Request, name: str = "time") -> datetime | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        return ScheduleDateTimeField().to_internal_value(raw)
    except serializers.ValidationError as exc:
        reason = exc.detail[0] if isinstance(exc.detail, list) else exc.detail
        raise ValidationFailed(f"{name}: {reason}", field=name) from None
