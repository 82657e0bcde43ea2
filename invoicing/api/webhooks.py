"""Notification endpoints (outgoing webhooks) and their deliveries."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.api_base import TenantAPIView, paginate
from core.pagination import CURSOR_PARAMETERS, cursor_page_of
from invoicing import selectors, webhooks
from invoicing.models import WebhookDelivery, WebhookEndpoint


class EndpointOutput(serializers.Serializer):
    id = serializers.CharField()
    url = serializers.CharField()
    description = serializers.CharField()
    eventTypes = serializers.ListField(source="event_types", child=serializers.CharField())
    enabled = serializers.BooleanField()
    format = serializers.CharField(help_text="`standard` (Standard Webhooks) or `lago` (Lago's envelope).")
    createdAt = serializers.DateTimeField(source="created_at")


class EndpointCreatedOutput(EndpointOutput):
    """Only the create response carries the signing secret (shown once, like Svix/OpenMeter)."""

    secret = serializers.CharField()


class EndpointListView(TenantAPIView):
    model = WebhookEndpoint
    required_scopes = {"GET": "read", "POST": "admin"}

    class Input(serializers.Serializer):
        url = serializers.CharField(max_length=1000)
        description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
        eventTypes = serializers.ListField(child=serializers.CharField(), required=False, default=list)
        format = serializers.CharField(max_length=32, required=False, default="standard")

    @extend_schema(
        responses=cursor_page_of(EndpointOutput),
        parameters=CURSOR_PARAMETERS,
        operation_id="listNotificationEndpoints",
    )
    def get(self, request: Request) -> Response:
        return paginate(self, request, self.get_queryset(), EndpointOutput)

    @extend_schema(
        request=Input, responses={201: EndpointCreatedOutput}, operation_id="createNotificationEndpoint"
    )
    def post(self, request: Request) -> Response:
        v = self.validated(self.Input)
        endpoint = webhooks.webhook_endpoint_create(
            organization=self.organization,
            url=v["url"],
            event_types=v["eventTypes"],
            description=v["description"],
            format=v["format"],
            actor=self.actor,
        )
        return Response(EndpointCreatedOutput(endpoint).data, status=status.HTTP_201_CREATED)


class EndpointDetailView(TenantAPIView):
    required_scopes = {"GET": "read", "PATCH": "admin", "DELETE": "admin"}

    class Input(serializers.Serializer):
        url = serializers.CharField(max_length=1000, required=False)
        description = serializers.CharField(max_length=200, required=False, allow_blank=True)
        eventTypes = serializers.ListField(child=serializers.CharField(), required=False)
        enabled = serializers.BooleanField(required=False)
        format = serializers.CharField(max_length=32, required=False)

    @extend_schema(responses=EndpointOutput, operation_id="getNotificationEndpoint")
    def get(self, request: Request, endpoint_id: str) -> Response:
        endpoint = selectors.webhook_endpoint_get(organization=self.organization, endpoint_id=endpoint_id)
        return Response(EndpointOutput(endpoint).data)

    @extend_schema(request=Input, responses=EndpointOutput, operation_id="updateNotificationEndpoint")
    def patch(self, request: Request, endpoint_id: str) -> Response:
        selectors.webhook_endpoint_get(organization=self.organization, endpoint_id=endpoint_id)
        v = self.validated(self.Input, partial=True)
        endpoint = webhooks.webhook_endpoint_update(
            organization=self.organization,
            endpoint_id=endpoint_id,
            url=v.get("url"),
            event_types=v.get("eventTypes"),
            description=v.get("description"),
            enabled=v.get("enabled"),
            format=v.get("format"),
            actor=self.actor,
        )
        return Response(EndpointOutput(endpoint).data)

    @extend_schema(request=None, responses={204: None}, operation_id="deleteNotificationEndpoint")
    def delete(self, request: Request, endpoint_id: str) -> Response:
        webhooks.webhook_endpoint_delete(
            organization=self.organization, endpoint_id=endpoint_id, actor=self.actor
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class DeliveryOutput(serializers.Serializer):
    id = serializers.CharField()
    eventId = serializers.CharField(source="message_id")
    eventType = serializers.CharField(source="message.type")
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    lastStatusCode = serializers.IntegerField(source="last_status_code", allow_null=True)
    responseSnippet = serializers.CharField(source="response_snippet")
    lastError = serializers.CharField(source="last_error")
    lastAttemptAt = serializers.DateTimeField(source="last_attempt_at", allow_null=True)
    nextAttemptAt = serializers.DateTimeField(source="next_attempt_at", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")


class EndpointDeliveriesView(TenantAPIView):
    model = WebhookDelivery
    required_scope = "read"

    @extend_schema(
        responses=cursor_page_of(DeliveryOutput),
        parameters=CURSOR_PARAMETERS,
        operation_id="listNotificationEndpointDeliveries",
    )
    def get(self, request: Request, endpoint_id: str) -> Response:
        endpoint = selectors.webhook_endpoint_get(organization=self.organization, endpoint_id=endpoint_id)
        qs = self.get_queryset().filter(endpoint_id=endpoint.id).select_related("message")
        return paginate(self, request, qs, DeliveryOutput)
