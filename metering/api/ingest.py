"""Ingest, wire-compatible with OpenMeter: CloudEvents (`/api/v1/events`, the v3 path Kong's plugin posts
to) and Kong http-log bodies (`/api/v1/events/kong`); the event log (GET /api/v1/events).

Ingest validates by hand (metering.ingest: no serializer per event, a fast path for big batches) and writes
through one store call. Each CloudEvents media type is its own request body in the schema."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from core.api_base import IsoDateTimeField, TenantAPIView, iso
from core.auth import ApiKeyAuthentication, CachedBearerAuthentication, api_key_lookup_cached
from core.errors import PayloadTooLarge, ValidationFailed
from metering import selectors, services
from metering.adapters.kong import KongBatch, kong_map, kong_parse
from metering.api.params import TIME_PARAMS, param_time
from metering.ingest import dumps, validate_body

INGEST_CONTENT_TYPES = (
    "application/cloudevents+json",
    "application/cloudevents-batch+json",
    "application/json",
    "",
)


# --- serializers: what the wire carries (OpenMeter's shapes) ----------------------------------------
class CloudEventSerializer(serializers.Serializer):
    """A CloudEvents 1.0 event, as OpenMeter ingests it. Validated by metering.ingest (every bad field
    named as events[i].field); `time` defaults to now, `data` is any JSON."""

    id = serializers.CharField(help_text="Deduplicated per (source, id): a resent event counts once.")
    source = serializers.CharField()  # type: ignore[assignment]
    specversion = serializers.CharField(help_text='"1.0"')
    type = serializers.CharField(help_text="Matched by meters' eventType.")
    subject = serializers.CharField(help_text="The customer's subject key.")
    time = serializers.DateTimeField(required=False, allow_null=True)
    datacontenttype = serializers.CharField(required=False, allow_null=True)
    dataschema = serializers.CharField(required=False, allow_null=True)
    data = serializers.JSONField(required=False, help_text="Any JSON.")  # type: ignore[assignment]


@extend_schema_field(CloudEventSerializer)
class CloudEventField(serializers.JSONField):
    """A stored event, rendered as stored (its time in RFC 3339)."""

    def to_representation(self, value: Any) -> Any:
        return {**value, "time": iso(value["time"])}


# One entry of the event log, rendered from a metering.selectors.IngestedEvent (a comment, not a docstring:
# the schema would show a docstring).
class IngestedEventOutput(serializers.Serializer):
    event = CloudEventField()
    ingestedAt = IsoDateTimeField(source="ingested_at")
    storedAt = IsoDateTimeField(source="stored_at", allow_null=True)
    validationError = serializers.CharField(
        source="validation_error",
        required=False,
        help_text="Why the event does not count (only on refused events).",
    )

    def to_representation(self, instance: Any) -> dict[str, Any]:
        out = super().to_representation(instance)
        if not out["validationError"]:
            del out["validationError"]
        return out


# One media type in the schema: `application/json` takes an event or an array. The same bodies are taken as
# application/cloudevents+json (one event) and application/cloudevents-batch+json (an array), which the SDK
# sends and `check_media_type_shape` enforces. They are not listed as separate request bodies: with more than
# one body, openapi-python-client (0.29) dispatches on `isinstance(body, list[CloudEvent])`, a TypeError in
# every generated client.
INGEST_BODY = {
    "application/json": PolymorphicProxySerializer(
        component_name="CloudEventOrBatch",
        serializers=[CloudEventSerializer, CloudEventSerializer(many=True)],
        resource_type_field_name=None,
        many=False,
    ),
}
# What each CloudEvents media type carries: the first byte of its JSON body.
MEDIA_TYPE_SHAPES = {
    "application/cloudevents+json": (
        b"{",
        "one CloudEvent (a JSON object); send an array as application/cloudevents-batch+json",
    ),
    "application/cloudevents-batch+json": (
        b"[",
        "an array of CloudEvents; send one event as application/cloudevents+json",
    ),
}
INGEST_MEDIA_TYPES = (
    "Body: one CloudEvent or an array of them, sent as `application/json`, `application/cloudevents+json` "
    "(one event) or `application/cloudevents-batch+json` (an array)."
)


class KongLogEntrySerializer(serializers.Serializer):
    """One Kong http-log entry (the plugin's JSON); unknown fields are kept. See docs/kong.md."""

    request = serializers.JSONField(required=False, help_text="id, method, uri, headers, size, ...")
    response = serializers.JSONField(required=False, help_text="status, size, headers, ...")
    consumer = serializers.JSONField(required=False, help_text="id, username, custom_id (or null)")
    route = serializers.JSONField(required=False)
    service = serializers.JSONField(required=False)
    latencies = serializers.JSONField(required=False)
    started_at = serializers.IntegerField(required=False, help_text="Milliseconds since the epoch.")
    ai = serializers.JSONField(required=False, help_text="AI proxy usage: tokens, model, provider.")


# --- authentication for ingest ------------------------------------------------------------


class IngestKeyAuthentication(ApiKeyAuthentication):
    """Bearer, or `X-Api-Key: <key>`, or Basic auth whose password (or username) is the key:
    Kong's http-log cannot set Authorization itself but turns URL userinfo into Basic auth."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        secret = self.secret_from_header(header) or request.META.get("HTTP_X_API_KEY") or None
        if secret is None and header[:6].lower() == "basic ":
            try:
                user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise exceptions.AuthenticationFailed("Malformed Basic authorization header.") from None
            secret = password if password.startswith("ml_") else user
        if not secret:
            return None
        key = api_key_lookup_cached(secret.strip())
        if key is None:
            raise exceptions.AuthenticationFailed("The API key is invalid, expired or revoked.")
        request._request.organization = key.organization
        return (None, key)


# --- ingest ------------------------------------------------------------------------------------

# Error answers every ingest path gives (application/problem+json, RFC 7807).
INGEST_ERRORS = {
    400: OpenApiResponse(description="invalid_params names each bad field (events[i].field); nothing stored"),
    413: OpenApiResponse(description="body above INGEST_MAX_BODY_BYTES; `limit` names it"),
    503: OpenApiResponse(
        description="ingest backlog above INGEST_BACKLOG_MAX_EVENTS; Retry-After; nothing stored"
    ),
}


def read_ingest_body(request: Request) -> bytes:
    limit = settings.INGEST_MAX_BODY_BYTES
    too_big = PayloadTooLarge(
        f"The body exceeds the ingest limit of {limit} bytes (INGEST_MAX_BODY_BYTES); split the batch.",
        extra={"limit": limit},
    )
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise too_big
    ctype = (request.META.get("CONTENT_TYPE") or "").split(";", 1)[0].strip().lower()
    if ctype not in INGEST_CONTENT_TYPES:
        raise exceptions.UnsupportedMediaType(
            ctype,
            detail=f"Unsupported content type {ctype!r}; send "
            "application/cloudevents+json, application/cloudevents-batch+json "
            "or application/json.",
        )
    try:
        body = request._request.body
    except RequestDataTooBig:
        raise too_big from None
    if len(body) > limit:
        raise too_big
    return body


def check_media_type_shape(request: Request, body: bytes) -> None:
    """A CloudEvents media type and its body agree: one event for `cloudevents+json`, an array for
    `cloudevents-batch+json` (a body that is not JSON at all is left to the parser's own message)."""
    ctype = (request.META.get("CONTENT_TYPE") or "").split(";", 1)[0].strip().lower()
    shape = MEDIA_TYPE_SHAPES.get(ctype)
    first = body.lstrip()[:1]
    if shape is not None and first in (b"{", b"[") and first != shape[0]:
        raise ValidationFailed(f"{ctype} carries {shape[1]}.", field="body")


class _IngestBase(TenantAPIView):
    abstract = True
    strict = False
    accepted_status = 204
    authentication_classes = [CachedBearerAuthentication]

    def tenant_scope_deferred(self, request: Request) -> bool:
        return request.method == "POST"  # one round trip: the scope is sent with the inbox insert

    def post(self, request: Request) -> HttpResponse:
        raw = read_ingest_body(request)
        check_media_type_shape(request, raw)
        body, count = validate_body(raw, strict=self.strict)
        services.events_accept(organization=self.organization, body=body, event_count=count)
        return HttpResponse(status=self.accepted_status)


@extend_schema_view(
    post=extend_schema(
        operation_id="ingestEvents",
        examples=[
            OpenApiExample(
                "One event",
                request_only=True,
                value={
                    "id": "evt-1",
                    "source": "my-app",
                    "specversion": "1.0",
                    "type": "prompt",
                    "subject": "customer-1",
                    "time": "2025-01-01T12:00:00Z",
                    "data": {"tokens": 100, "model": "gpt-4o", "type": "input"},
                },
            )
        ],
        description="OpenMeter's ingest: 204 with an empty body; a resent event (same source and id) is "
        "accepted and counted once.\n\n" + INGEST_MEDIA_TYPES,
        request=INGEST_BODY,
        responses={204: None, **INGEST_ERRORS},
    )
)
class EventsView(_IngestBase):
    """POST: ingest (204, scope ingest). GET: recent events with why they did not count (scope read)."""

    required_scopes = {"POST": "ingest", "GET": "read"}

    @extend_schema(
        operation_id="listEvents",
        responses=IngestedEventOutput(many=True),
        parameters=[
            OpenApiParameter("subject", str),
            OpenApiParameter("type", str),
            OpenApiParameter("id", str),
            *TIME_PARAMS,
            OpenApiParameter("ingestedAtFrom", OpenApiTypes.DATETIME),
            OpenApiParameter("ingestedAtTo", OpenApiTypes.DATETIME),
            OpenApiParameter("limit", int, description="1 to 1000 (default 100)."),
            OpenApiParameter("hasError", bool),
        ],
    )
    def get(self, request: Request) -> Response:
        q = request.query_params
        try:
            limit = int(q.get("limit") or 100)
        except ValueError:
            raise ValidationFailed("limit must be an integer.", field="limit") from None
        if not 1 <= limit <= 1000:
            raise ValidationFailed("limit must be between 1 and 1000.", field="limit")
        has_error = q.get("hasError")
        events = selectors.events_list(
            organization=self.organization,
            subject=q.get("subject"),
            type=q.get("type"),
            id=q.get("id"),
            from_=param_time(q, "from"),
            to=param_time(q, "to"),
            limit=limit,
            has_error=None if has_error is None else has_error.lower() in ("1", "true", "yes"),
            ingested_from=param_time(q, "ingestedAtFrom"),
            ingested_to=param_time(q, "ingestedAtTo"),
        )
        return Response(IngestedEventOutput(events, many=True).data)


@extend_schema_view(
    post=extend_schema(
        operation_id="ingestEventsV3",
        description="The path Kong's Metering & Billing plugin posts to: 202, unknown event properties "
        "refused.\n\n" + INGEST_MEDIA_TYPES,
        request=INGEST_BODY,
        responses={202: None, **INGEST_ERRORS},
    )
)
class EventsV3View(_IngestBase):
    """The OpenMeter self-hosted path Kong's Metering & Billing plugin posts to: 202, strict properties."""

    required_scope = "ingest"
    strict = True
    accepted_status = 202


class KongRejectionOutput(serializers.Serializer):
    index = serializers.IntegerField(
        allow_null=True, help_text="position in Kong's batch; null for one object"
    )
    requestId = serializers.CharField(source="request_id", help_text="Kong's request.id, when readable")
    invalid_params = serializers.ListField(
        source="errors",
        child=serializers.DictField(child=serializers.CharField()),
        help_text="each bad field: {name, reason}, named by the entry's position in Kong's batch",
    )


class KongIngestOutput(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="log entries accepted (their events are stored)")
    rejected = serializers.IntegerField(help_text="log entries refused, each kept in the event log")
    events = serializers.IntegerField(help_text="CloudEvents accepted from the accepted entries")
    unresolvedSubjects = serializers.IntegerField(help_text='accepted entries stored with subject "unknown"')
    rejections = KongRejectionOutput(many=True)


class KongEventsView(TenantAPIView):
    """Kong http-log JSON (one entry or a batch) → CloudEvents, entry by entry (docs/kong.md).

    Good entries are accepted like any ingest batch; a bad entry is kept as a rejected event (event log,
    with its reason and position in Kong's batch) and the answer is still 200, because Kong retries a
    non-2xx answer and then drops the whole batch. `?subjectHeader=x-customer` names a request header to
    use as subject when no consumer is set."""

    required_scope = "ingest"
    authentication_classes = [IngestKeyAuthentication]
    source = "kong"

    @extend_schema(
        operation_id="ingestKongHttpLog",
        request=PolymorphicProxySerializer(
            component_name="KongLogBody",
            serializers=[KongLogEntrySerializer, KongLogEntrySerializer(many=True)],
            resource_type_field_name=None,
            many=False,
        ),
        parameters=[
            OpenApiParameter("subjectHeader", str, description="A request header to use as subject.")
        ],
        responses={200: KongIngestOutput, **INGEST_ERRORS},
    )
    def post(self, request: Request) -> Response:
        batch = kong_map(
            kong_parse(read_ingest_body(request)),
            subject_header=request.query_params.get("subjectHeader") or None,
            source=self.source,
        )
        body, count = _kong_inbox_body(batch)
        services.events_accept_partial(
            organization=self.organization,
            body=body,
            event_count=count,
            rejected=[r.rejected_event(source=self.source) for r in batch.rejections],
        )
        result = {
            "accepted": len(batch.entries),
            "rejected": len(batch.rejections),
            "events": count,
            "unresolvedSubjects": sum(entry.subject_unresolved for entry in batch.entries),
            "rejections": batch.rejections,
        }
        return Response(KongIngestOutput(result).data)


def _kong_inbox_body(batch: KongBatch) -> tuple[bytes | None, int]:
    """The inbox body of the accepted entries' events. The adapter already keeps ingest's rules; should an
    entry still break one (a rule the mapping does not know, such as the future-time limit), that entry is
    moved to the rejections and the others are accepted."""
    if not batch.entries:
        return None, 0
    try:
        return validate_body(dumps(batch.events).encode())
    except ValidationFailed:
        pass
    for entry in list(batch.entries):
        try:
            validate_body(dumps(entry.events).encode())
        except ValidationFailed as exc:
            batch.reject(entry, exc.errors)
    if not batch.entries:
        return None, 0
    return validate_body(dumps(batch.events).encode())
