"""Catalog API: price preview, features, plans (versions, phases, rate cards), add-ons.

Request bodies are read as plain JSON and validated by the catalog's own parsers (which reject
floats and name every bad field by its full path); DRF serializers describe responses.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

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
