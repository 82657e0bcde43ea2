"""Notification rules (balance thresholds) and the events they raised."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing import services
from billing.api.base import time_param
from billing.models import NotificationEvent, NotificationRule
from core.api_base import TenantAPIView, iso
from core.pagination import PAGE_PARAMETERS, page_of, page_params, paged

_dt = iso


class NotificationEventOutput(serializers.Serializer):
    id = serializers.CharField()
    type = serializers.CharField()
    createdAt = serializers.DateTimeField()
    ruleId = serializers.CharField(allow_null=True)
    payload = serializers.JSONField()


class NotificationRuleOutput(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    type = serializers.CharField()
    featureKey = serializers.CharField()
    thresholds = serializers.ListField(child=serializers.DictField())
    disabled = serializers.BooleanField()
    createdAt = serializers.DateTimeField()


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
            paged(
                qs,
                page,
                page_size,
                lambda items: (
                    NotificationEventOutput(
                        [
                            {
                                "id": e.id,
                                "type": e.type,
                                "createdAt": _dt(e.created_at),
                                "ruleId": e.rule_id,
                                "payload": e.payload,
                            }
                            for e in items
                        ],
                        many=True,
                    ).data
                ),
            )
        )


class NotificationRuleListCreateView(TenantAPIView):
    required_scopes = {"GET": "read", "POST": "admin"}
    model = NotificationRule

    class NotificationRuleListCreateInput(serializers.Serializer):
        name = serializers.CharField(max_length=256)
        featureKey = serializers.CharField(max_length=256)
        thresholds = serializers.ListField(child=serializers.DictField(), allow_empty=False)

    Input = NotificationRuleListCreateInput

    @staticmethod
    def out(r: NotificationRule) -> dict[str, Any]:
        return {
            "id": r.id,
            "name": r.name,
            "type": "entitlements.balance.threshold",
            "featureKey": r.feature_key,
            "thresholds": r.thresholds,
            "disabled": r.disabled,
            "createdAt": _dt(r.created_at),
        }

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
                lambda items: NotificationRuleOutput([self.out(r) for r in items], many=True).data,
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
        return Response(NotificationRuleOutput(self.out(rule)).data, status=status.HTTP_201_CREATED)
