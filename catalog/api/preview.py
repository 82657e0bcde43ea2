"""POST /api/v1/prices/preview: what a price costs for a quantity (the editor's live preview)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.api.serializers import PricePreviewInput, PricePreviewOutput, checked_body, invalid
from catalog.pricing import Preview, PriceInvalid, price_preview
from core.api_base import TenantAPIView


class PricePreviewView(TenantAPIView):
    """POST /api/v1/prices/preview: what a price costs for a quantity (the editor's live preview)."""

    required_scope = "read"

    @extend_schema(request=PricePreviewInput, responses=PricePreviewOutput, operation_id="previewPrice")
    def post(self, request: Request) -> Response:
        body = PricePreviewInput(data=request.data, context={"organization": self.organization})

        def rated(raw: dict[str, Any]) -> Preview:
            try:
                return price_preview(**body.arguments(raw))
            except PriceInvalid as exc:
                raise invalid(exc) from None

        return Response(PricePreviewOutput(rated(checked_body(body, rated))).data)
