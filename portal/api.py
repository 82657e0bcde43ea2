"""Portal API: OpenMeter-compatible portal tokens (minted with an API key) and the portal meter query
(authenticated with a portal token, forced to the token's customer/subject and allowed meters)."""

from __future__ import annotations

from datetime import timedelta

from django.utils.dateparse import parse_datetime, parse_duration
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from core import limits
from core.api_base import ApiAutoSchema, TenantAPIView
from core.errors import NotFound, ValidationFailed
from core.links import absolute_url
from metering.api import METER_QUERY_PARAMS, MeterQueryResultOutput
from portal import sources
from portal.auth import PortalAPIView
from portal.models import PortalToken
from portal.selectors import portal_token_list
from portal.services import portal_token_create, portal_token_invalidate


@extend_schema_field(
    {"oneOf": [{"type": "integer", "minimum": 0}, {"type": "string"}], "description": "Seconds or PT2H."}
)
class ExpiresInField(serializers.Field):
    """Seconds (int) or an ISO 8601 duration ("PT2H")."""

    def to_internal_value(self, data) -> timedelta:
        if isinstance(data, bool):
            raise serializers.ValidationError("Give seconds or an ISO 8601 duration.")
        try:  # a duration no timedelta can hold (P99999999999D, 10^20 s) is out of range, not a 500
            if isinstance(data, int):
                return timedelta(seconds=data)
            if isinstance(data, str):
                if data.isdigit() and len(data) <= 18:
                    return timedelta(seconds=int(data))
                parsed = parse_duration(data) if len(data) <= 64 else None
                if parsed is not None:
                    return parsed
        except OverflowError:
            raise serializers.ValidationError("The duration is out of range.") from None
        raise serializers.ValidationError("Give seconds or an ISO 8601 duration such as PT1H.")

    def to_representation(self, value):
        return int(value.total_seconds())


class PortalTokenOutput(serializers.Serializer):
    id = serializers.CharField()
    subject = serializers.CharField()
    customerId = serializers.CharField(source="customer_id", allow_null=True)
    allowedMeterSlugs = serializers.ListField(source="allowed_meter_slugs", child=serializers.CharField())
    expiresAt = serializers.DateTimeField(source="expires_at")
    expired = serializers.SerializerMethodField()
    invalidatedAt = serializers.DateTimeField(source="invalidated_at", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")

    def get_expired(self, obj: PortalToken) -> bool:
        return not obj.is_active


class PortalTokenListCreateView(TenantAPIView):
    """`POST` mints a token (admin scope: it creates a credential); `GET` lists tokens without secrets
    (read scope)."""

    required_scopes = {"GET": "read", "POST": "admin"}

    class Input(serializers.Serializer):
        subject = serializers.CharField(required=False, allow_blank=True, max_length=256, default="")
        customer = serializers.CharField(required=False, allow_blank=True, max_length=256, default="")
        customerId = serializers.CharField(required=False, allow_blank=True, max_length=256, default="")
        allowedMeterSlugs = serializers.ListField(
            child=serializers.CharField(max_length=256), required=False, default=list, max_length=100
        )
        expiresIn = ExpiresInField(required=False)

    class Output(PortalTokenOutput):
        token = serializers.CharField()
        url = serializers.CharField(help_text="The magic link that opens the portal pages with this token.")

    @extend_schema(
        responses=PortalTokenOutput(many=True),
        parameters=[OpenApiParameter("subject", str), OpenApiParameter("limit", int)],
        operation_id="listPortalTokens",
    )
    def get(self, request: Request) -> Response:
        subject = request.query_params.get("subject", "")
        try:
            limit = max(1, min(int(request.query_params.get("limit", 100)), 1000))
        except ValueError:
            raise ValidationFailed("limit must be an integer.", field="limit") from None
        rows = portal_token_list(organization=self.organization, subject=subject, limit=limit)
        return Response(PortalTokenOutput(rows, many=True).data)

    @extend_schema(request=Input, responses={201: Output}, operation_id="createPortalToken")
    def post(self, request: Request) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        row, token = portal_token_create(
            organization=self.organization,
            subject=v["subject"],
            customer=v["customer"] or v["customerId"],
            allowed_meter_slugs=v["allowedMeterSlugs"],
            expires_in=v.get("expiresIn"),
            actor=self.actor,
        )
        row.token = token  # type: ignore[attr-defined]
        row.url = absolute_url(f"/portal/{token}", request=request)  # type: ignore[attr-defined]
        return Response(self.Output(row).data, status=201)


class PortalTokenInvalidateView(TenantAPIView):
    required_scope = "admin"

    class Input(serializers.Serializer):
        id = serializers.CharField(required=False, allow_blank=True, default="")
        subject = serializers.CharField(required=False, allow_blank=True, default="")
        customer = serializers.CharField(required=False, allow_blank=True, default="")

    @extend_schema(request=Input, responses={204: None}, operation_id="invalidatePortalTokens")
    def post(self, request: Request) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        customer_id = ""
        if v["customer"]:
            try:
                customer_id = sources.customer_get(organization=self.organization, id_or_key=v["customer"]).id
            except NotFound:
                raise ValidationFailed(f"No such customer: {v['customer']!r}.", field="customer") from None
        portal_token_invalidate(
            organization=self.organization,
            token_id=v["id"],
            subject=v["subject"],
            customer_id=customer_id,
            actor=self.actor,
        )
        return Response(status=204)


WINDOW_SIZES = ("MINUTE", "HOUR", "DAY", "MONTH")


class PortalMeterQueryView(PortalAPIView):
    """`GET /api/v1/portal/meters/{slug}/query`: the meter query, forced to the token's subjects.

    Accepts from, to, windowSize, windowTimeZone, groupBy (repeated) and `subject` (only a subset of the
    token's own subjects; anything else is 403). Answers like the meter query."""

    schema = ApiAutoSchema()

    @extend_schema(
        responses=MeterQueryResultOutput,
        parameters=[
            p for p in METER_QUERY_PARAMS if p.name not in ("filterGroupBy", "advancedMeterGroupByFilters")
        ],
        operation_id="queryPortalMeter",
    )
    def get(self, request: Request, slug: str) -> Response:
        scope = self.scope
        if not scope.meter_allowed(slug):
            raise PermissionDenied(f"This portal token may not query meter {slug!r}.")
        meter = sources.meter_get(organization=self.organization, slug=slug)
        if meter is None:
            raise NotFound(f"No such meter: {slug!r}.")
        params = request.query_params
        asked = params.getlist("subject")
        if asked and not set(asked) <= set(scope.subjects):
            raise PermissionDenied("A portal token can only query its own subject.")
        if params.getlist("filterCustomerId") and set(params.getlist("filterCustomerId")) != {
            scope.customer_id
        }:
            raise PermissionDenied("A portal token can only query its own customer.")
        subjects = asked or scope.subjects
        window_size = params.get("windowSize") or None
        if window_size is not None and window_size not in WINDOW_SIZES:
            raise ValidationFailed(
                f"windowSize must be one of {', '.join(WINDOW_SIZES)}.", field="windowSize"
            )
        start = _parse_time(params.get("from"), "from")
        end = _parse_time(params.get("to"), "to")
        group_by = [g for g in params.getlist("groupBy") if g]
        unknown = [g for g in group_by if g not in (meter.group_by or {}) and g not in ("subject",)]
        if unknown:
            raise ValidationFailed(f"Unknown groupBy key(s): {', '.join(unknown)}.", field="groupBy")
        result = sources.meter_query(
            organization=self.organization,
            meter=meter,
            start=start,
            end=end,
            window_size=window_size,
            window_time_zone=params.get("windowTimeZone") or "UTC",
            subjects=subjects,
            customer_id="" if asked else scope.usage_customer_id,
            group_by=group_by,
            force_empty=not subjects,
        )
        return Response(result)


def _parse_time(value: str | None, name: str):
    if not value:
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:  # well formed but not a date (2025-02-30)
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ValidationFailed(f"{name} must be an RFC 3339 timestamp with a time zone.", field=name)
    return limits.check_time(parsed, field=name)
