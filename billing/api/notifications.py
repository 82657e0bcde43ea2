"""Notification rules (balance thresholds) and the events they raised."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing import services
from billing.api.base import time_param
from billing.models import NotificationEvent, NotificationRule
from core.api_base import TenantAPIView
from core.pagination import PAGE_PARAMETERS, page_of, page_params, paged


class NotificationEventOutput(serializers.Serializer):
    id = serializers.CharField()
    type = serializers.CharField()
    createdAt = serializers.DateTimeField(source="created_at")
    ruleId = serializers.CharField(source="rule_id", allow_null=True)
    payload = serializers.JSONField()


class NotificationRuleOutput(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    type = serializers.SerializerMethodField(help_text="entitlements.balance.threshold")
    featureKey = serializers.CharField(source="feature_key")
    thresholds = serializers.ListField(child=serializers.DictField())
    disabled = serializers.BooleanField()
    createdAt = serializers.DateTimeField(source="created_at")

    def get_type(self, rule: NotificationRule) -> str:
        return "entitlements.balance.threshold"


class NotificationEventListView(TenantAPIView):
    required_scope = "read"
    model = NotificationEvent

    @extend_schema(
        responses=page_of(NotificationEventOutput),
        parameters=[
            OpenApiParameter("type", str),
            OpenApiParameter("from", OpenApiTypes.DATETIME),
            *PAGE_PARAMETERS,
        ],
        operation_id="listNotificationEvents",
    )
    def get(self, request: Request) -> Response:
        page, page_size = page_params(request)
        qs = self.get_queryset().order_by("-created_at", "-id")
        if request.query_params.get("type"):
            qs = qs.filter(type=request.query_params["type"])
        since = time_param(request, "from")
        if since:
            qs = qs.filter(created_at__gte=since)
        return Response(
            paged(qs, page, page_size, lambda items: NotificationEventOutput(items, many=True).data)
        )


class NotificationRuleListCreateView(TenantAPIView):
    required_scopes = {"GET": "read", "POST": "admin"}
    model = NotificationRule

    class NotificationRuleListCreateInput(serializers.Serializer):
        name = serializers.CharField(max_length=256)
        featureKey = serializers.CharField(max_length=256)
        thresholds = serializers.ListField(child=serializers.DictField(), allow_empty=False)

    Input = NotificationRuleListCreateInput

    @extend_schema(
        responses=page_of(NotificationRuleOutput),
        parameters=PAGE_PARAMETERS,
        operation_id="listNotificationRules",
    )
    def get(self, request: Request) -> Response:
        page, page_size = page_params(request)
        return Response(
            paged(
                self.get_queryset(),
                page,
                page_size,
                lambda items: NotificationRuleOutput(items, many=True).data,
            )
        )

    @extend_schema(
        request=Input, responses={201: NotificationRuleOutput}, operation_id="createNotificationRule"
    )
    def post(self, request: Request) -> Response:
        v = self.validated(self.Input)
        rule = services.notification_rule_create(
            organization=self.organization,
            name=v["name"],
            feature_key=v["featureKey"],
            thresholds=v["thresholds"],
            actor=self.actor,
        )
        return Response(NotificationRuleOutput(rule).data, status=status.HTTP_201_CREATED)
