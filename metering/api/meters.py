"""Meters: list, create, read, update, delete (OpenMeter's shapes)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.api_base import BlankAsNullCharField, IsoDateTimeField, TenantAPIView
from core.errors import ValidationFailed
from metering import selectors, services
from metering.api.params import body_object, body_time
from metering.models import Aggregation


class MeterOutput(serializers.Serializer):
    id = serializers.CharField()
    slug = serializers.CharField()
    name = serializers.CharField(allow_blank=True)
    description = BlankAsNullCharField()
    eventType = serializers.CharField(source="event_type")
    aggregation = serializers.ChoiceField(choices=Aggregation.choices)
    valueProperty = BlankAsNullCharField(
        source="value_property", help_text="JSONPath into data, e.g. $.tokens."
    )
    groupBy = serializers.DictField(
        source="group_by", child=serializers.CharField(), help_text="Dimension -> JSONPath."
    )
    eventFrom = IsoDateTimeField(source="event_from", allow_null=True)
    createdAt = IsoDateTimeField(source="created_at")
    updatedAt = IsoDateTimeField(source="updated_at")
    deletedAt = IsoDateTimeField(source="deleted_at", allow_null=True)


class MeterCreateInput(serializers.Serializer):
    slug = serializers.CharField(help_text="Unique key (OpenMeter's `key` is accepted too).")
    name = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    description = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    eventType = serializers.CharField()
    aggregation = serializers.ChoiceField(choices=Aggregation.choices)
    valueProperty = serializers.CharField(required=False, allow_null=True)
    groupBy = serializers.DictField(child=serializers.CharField(), required=False, allow_null=True)
    eventFrom = serializers.DateTimeField(required=False, allow_null=True)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        """meter_create's arguments. Its rules (slug, eventType, aggregation, JSONPaths; each bad field
        named) are the service's, shared with the console; here the body is an object, eventFrom a time."""
        d = body_object(data)
        return {
            "slug": d.get("slug") or d.get("key") or "",
            "event_type": d.get("eventType") or "",
            "aggregation": d.get("aggregation") or "",
            "value_property": d.get("valueProperty"),
            "group_by": d.get("groupBy"),
            "name": d.get("name") or "",
            "description": d.get("description") or "",
            "event_from": body_time(d, "eventFrom"),
        }


class MeterUpdateInput(serializers.Serializer):
    """name, description and new groupBy dimensions change; eventType, aggregation, valueProperty and slug
    may be sent but must equal the meter's (history is never rewritten)."""

    name = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    description = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    groupBy = serializers.DictField(child=serializers.CharField(), required=False, allow_null=True)
    slug = serializers.CharField(required=False)
    eventType = serializers.CharField(required=False)
    aggregation = serializers.ChoiceField(choices=Aggregation.choices, required=False)
    valueProperty = serializers.CharField(required=False, allow_null=True)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        """meter_update's arguments; the immutable fields, if sent, must equal the meter's (context)."""
        d = body_object(data)
        meter = self.context["meter"]
        immutable = {
            "eventType": meter.event_type,
            "aggregation": meter.aggregation,
            "valueProperty": meter.value_property or None,
            "slug": meter.slug,
        }
        errors = [
            {"name": k, "reason": "cannot be changed (create a new meter; history is never rewritten)"}
            for k, v in immutable.items()
            if k in d and d[k] != v
        ]
        if errors:
            raise ValidationFailed("; ".join(f"{e['name']}: {e['reason']}" for e in errors), errors=errors)
        return {"name": d.get("name"), "description": d.get("description"), "group_by": d.get("groupBy")}


# --- meters ------------------------------------------------------------------------------------


class MeterListView(TenantAPIView):
    required_scopes = {"GET": "read", "POST": "admin"}

    @extend_schema(
        operation_id="listMeters",
        responses=MeterOutput(many=True),
        parameters=[OpenApiParameter("includeDeleted", bool)],
    )
    def get(self, request: Request) -> Response:
        include_deleted = (request.query_params.get("includeDeleted") or "").lower() == "true"
        meters = selectors.meter_list(organization=self.organization, include_deleted=include_deleted)
        return Response(MeterOutput(meters, many=True).data)

    @extend_schema(operation_id="createMeter", request=MeterCreateInput, responses={201: MeterOutput})
    def post(self, request: Request) -> Response:
        body = MeterCreateInput(data=request.data)
        body.is_valid(raise_exception=True)
        meter = services.meter_create(organization=self.organization, actor=self.actor, **body.validated_data)
        return Response(MeterOutput(meter).data, status=status.HTTP_201_CREATED)


class MeterDetailView(TenantAPIView):
    required_scopes = {"GET": "read", "PUT": "admin", "DELETE": "admin"}

    @extend_schema(operation_id="getMeter", responses=MeterOutput)
    def get(self, request: Request, id_or_slug: str) -> Response:
        meter = selectors.meter_get(organization=self.organization, id_or_slug=id_or_slug)
        return Response(MeterOutput(meter).data)

    @extend_schema(operation_id="updateMeter", request=MeterUpdateInput, responses=MeterOutput)
    def put(self, request: Request, id_or_slug: str) -> Response:
        meter = selectors.meter_get(organization=self.organization, id_or_slug=id_or_slug)
        body = MeterUpdateInput(data=request.data, context={"meter": meter})
        body.is_valid(raise_exception=True)
        meter = services.meter_update(
            organization=self.organization, id_or_slug=meter.id, actor=self.actor, **body.validated_data
        )
        return Response(MeterOutput(meter).data)

    @extend_schema(operation_id="deleteMeter", responses={204: None})
    def delete(self, request: Request, id_or_slug: str) -> Response:
        services.meter_delete(organization=self.organization, id_or_slug=id_or_slug, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)
