"""Core's API endpoints: the current organization, API keys, audit log.

The base every app's API views inherit (`TenantAPIView`, with pagination, schema and field helpers) is
`core/api_base.py`; its names are importable from here too, as the apps have always imported them."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core import services
from core.api_base import (  # noqa: F401  (re-exported: `from core.api import TenantAPIView` keeps working)
    ApiAutoSchema,
    IdCursorPagination,
    IsoDateTimeField,
    ScheduleDateTimeField,
    TenantAPIView,
    iso,
    paginate,
)
from core.models import ApiKey, AuditLog, Scope
from core.pagination import cursor_page_schema


class OrganizationView(TenantAPIView):
    required_scope = "read"

    class Output(serializers.Serializer):
        id = serializers.CharField()
        slug = serializers.CharField()
        name = serializers.CharField()
        defaultCurrency = serializers.CharField(source="default_currency")
        timezone = serializers.CharField()

    @extend_schema(responses=Output, operation_id="getOrganization")
    def get(self, request: Request) -> Response:
        return Response(self.Output(self.organization).data)


class ApiKeyOutput(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())
    createdAt = IsoDateTimeField(source="created_at")
    lastUsedAt = IsoDateTimeField(source="last_used_at", allow_null=True)
    expiresAt = IsoDateTimeField(source="expires_at", allow_null=True)
    revokedAt = IsoDateTimeField(source="revoked_at", allow_null=True)


class ApiKeyListCreateView(TenantAPIView):
    required_scope = "admin"
    model = ApiKey

    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        scopes = serializers.ListField(child=serializers.ChoiceField(choices=Scope.values), allow_empty=False)
        expiresAt = serializers.DateTimeField(required=False, allow_null=True)

    @cursor_page_schema(ApiKeyOutput, "listApiKeys")
    def get(self, request: Request) -> Response:
        return paginate(self, request, self.get_queryset(), ApiKeyOutput)

    @extend_schema(
        request=Input,
        responses={
            201: inline_serializer(
                "ApiKeyCreated", {"key": ApiKeyOutput(), "secret": serializers.CharField()}
            )
        },
        operation_id="createApiKey",
    )
    def post(self, request: Request) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        created = services.api_key_create(
            organization=self.organization,
            name=data.validated_data["name"],
            scopes=data.validated_data["scopes"],
            actor=self.actor,
            expires_at=data.validated_data.get("expiresAt"),
        )
        return Response(
            {"key": ApiKeyOutput(created.key).data, "secret": created.secret}, status=status.HTTP_201_CREATED
        )


class ApiKeyDetailView(TenantAPIView):
    required_scope = "admin"
    model = ApiKey

    @extend_schema(responses={204: None}, operation_id="revokeApiKey")
    def delete(self, request: Request, key_id: str) -> Response:
        services.api_key_revoke(organization=self.organization, key_id=key_id, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AuditLogView(TenantAPIView):
    required_scope = "admin"
    model = AuditLog

    class Output(serializers.Serializer):
        id = serializers.IntegerField()
        createdAt = IsoDateTimeField(source="created_at")
        actor = serializers.CharField(source="actor_label")
        action = serializers.CharField()
        objectType = serializers.CharField(source="object_type")
        objectId = serializers.CharField(source="object_id")
        before = serializers.JSONField()
        after = serializers.JSONField()

    class Pagination(IdCursorPagination):
        ordering = "-id"

    def scope_queryset(self, qs: QuerySet) -> QuerySet:
        params = self.request.query_params
        if params.get("objectType"):
            qs = qs.filter(object_type=params["objectType"])
        if params.get("objectId"):
            qs = qs.filter(object_id=params["objectId"])
        return qs

    @cursor_page_schema(
        Output, "listAuditLog", OpenApiParameter("objectType", str), OpenApiParameter("objectId", str)
    )
    def get(self, request: Request) -> Response:
        return paginate(self, request, self.get_queryset(), self.Output, self.Pagination)
