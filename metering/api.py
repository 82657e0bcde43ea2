"""Metering API, wire-compatible with OpenMeter (see ../shared/reference/openmeter-api.md).

Ingest views validate by hand (no serializers per event) and write through one store call.
"""

from __future__ import annotations

import ast
import base64
import binascii
import csv
import io
import json
from datetime import datetime
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
)
from rest_framework import exceptions, renderers, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core import limits
from core.api import TenantAPIView
from core.api import iso as core_iso
from core.auth import ApiKeyAuthentication, CachedBearerAuthentication, api_key_lookup_cached
from core.errors import PayloadTooLarge, ValidationFailed
from metering import selectors, services
from metering.adapters.kong import KongBatch, kong_map, kong_parse
from metering.ingest import dumps, parse_time, validate_body
from metering.models import Aggregation, Meter

INGEST_CONTENT_TYPES = (
    "application/cloudevents+json",
    "application/cloudevents-batch+json",
    "application/json",
    "",
)


iso = core_iso


def meter_json(m: Meter) -> dict[str, Any]:
    return {
        "id": m.id,
        "slug": m.slug,
        "name": m.name,
        "description": m.description or None,
        "eventType": m.event_type,
        "aggregation": m.aggregation,
        "valueProperty": m.value_property or None,
        "groupBy": m.group_by or {},
        "eventFrom": iso(m.event_from),
        "createdAt": iso(m.created_at),
        "updatedAt": iso(m.updated_at),
        "deletedAt": iso(m.deleted_at),
    }


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


class IngestedEventOutput(serializers.Serializer):
    event = CloudEventField()
    ingestedAt = serializers.DateTimeField()
    storedAt = serializers.DateTimeField(allow_null=True)
    validationError = serializers.CharField(
        required=False, help_text="Why the event does not count (only on refused events)."
    )


# One media type in the schema: `application/json` takes an event or an array. The same bodies are taken as
# application/cloudevents+json and application/cloudevents-batch+json (the SDK sends those); listing them as
# separate media types makes generated clients pick the media type by isinstance on a list type, which fails.
INGEST_BODY = {
    "application/json": PolymorphicProxySerializer(
        component_name="CloudEventOrBatch",
        serializers=[CloudEventSerializer, CloudEventSerializer(many=True)],
        resource_type_field_name=None,
        many=False,
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


class MeterOutput(serializers.Serializer):
    id = serializers.CharField()
    slug = serializers.CharField()
    name = serializers.CharField(allow_blank=True)
    description = serializers.CharField(allow_null=True)
    eventType = serializers.CharField()
    aggregation = serializers.ChoiceField(choices=Aggregation.choices)
    valueProperty = serializers.CharField(allow_null=True, help_text="JSONPath into data, e.g. $.tokens.")
    groupBy = serializers.DictField(child=serializers.CharField(), help_text="Dimension -> JSONPath.")
    eventFrom = serializers.DateTimeField(allow_null=True)
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()
    deletedAt = serializers.DateTimeField(allow_null=True)


class MeterCreateInput(serializers.Serializer):
    slug = serializers.CharField(help_text="Unique key (OpenMeter's `key` is accepted too).")
    name = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    description = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    eventType = serializers.CharField()
    aggregation = serializers.ChoiceField(choices=Aggregation.choices)
    valueProperty = serializers.CharField(required=False, allow_null=True)
    groupBy = serializers.DictField(child=serializers.CharField(), required=False, allow_null=True)
    eventFrom = serializers.DateTimeField(required=False, allow_null=True)


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


WINDOW_SIZES = ["MINUTE", "HOUR", "DAY", "MONTH"]


class MeterQueryRowOutput(serializers.Serializer):
    value = serializers.FloatField()
    windowStart = serializers.DateTimeField()
    windowEnd = serializers.DateTimeField()
    subject = serializers.CharField(allow_null=True)
    customerId = serializers.CharField(allow_null=True)
    groupBy = serializers.DictField(child=serializers.CharField(allow_null=True))


class MeterQueryResultOutput(serializers.Serializer):
    # `from` is a keyword: the field is declared under another name and renamed on the wire below.
    from_ = serializers.DateTimeField(allow_null=True)
    to = serializers.DateTimeField(allow_null=True)
    windowSize = serializers.ChoiceField(choices=WINDOW_SIZES, allow_null=True)
    data = MeterQueryRowOutput(many=True)  # type: ignore[assignment]


MeterQueryResultOutput._declared_fields["from"] = MeterQueryResultOutput._declared_fields.pop("from_")


class MeterQueryInput(serializers.Serializer):
    from_ = serializers.DateTimeField(required=False, allow_null=True)
    to = serializers.DateTimeField(required=False, allow_null=True)
    windowSize = serializers.ChoiceField(choices=WINDOW_SIZES, required=False, allow_null=True)
    windowTimeZone = serializers.CharField(
        required=False, allow_null=True, help_text="IANA zone; default UTC."
    )
    subject = serializers.ListField(child=serializers.CharField(), required=False, allow_null=True)
    filterCustomerId = serializers.ListField(child=serializers.CharField(), required=False, allow_null=True)
    groupBy = serializers.ListField(child=serializers.CharField(), required=False, allow_null=True)
    filterGroupBy = serializers.DictField(child=serializers.CharField(), required=False, allow_null=True)
    advancedMeterGroupByFilters = serializers.DictField(
        child=serializers.JSONField(), required=False, allow_null=True, help_text='{"model": {"$in": [...]}}'
    )


MeterQueryInput._declared_fields["from"] = MeterQueryInput._declared_fields.pop("from_")

TIME_PARAMS = [
    OpenApiParameter("from", OpenApiTypes.DATETIME, description="RFC 3339, inclusive."),
    OpenApiParameter("to", OpenApiTypes.DATETIME, description="RFC 3339, exclusive."),
]
METER_QUERY_PARAMS = [
    *TIME_PARAMS,
    OpenApiParameter("windowSize", OpenApiTypes.STR, enum=WINDOW_SIZES),
    OpenApiParameter("windowTimeZone", OpenApiTypes.STR, description="IANA zone; default UTC."),
    OpenApiParameter("subject", OpenApiTypes.STR, many=True, explode=True),
    OpenApiParameter("filterCustomerId", OpenApiTypes.STR, many=True, explode=True),
    OpenApiParameter("groupBy", OpenApiTypes.STR, many=True, explode=True),
    OpenApiParameter(
        "filterGroupBy",
        OpenApiTypes.OBJECT,
        style="deepObject",
        explode=True,
        description="filterGroupBy[dimension]=value (deprecated by OpenMeter).",
    ),
    OpenApiParameter(
        "advancedMeterGroupByFilters",
        OpenApiTypes.STR,
        description='A JSON object: {"model": {"$in": ["gpt-4o"]}} ($eq and $in).',
    ),
]


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


class _IngestBase(TenantAPIView):
    abstract = True
    strict = False
    authentication_classes = [CachedBearerAuthentication]

    def ingest(self, request: Request) -> None:
        body, count = validate_body(read_ingest_body(request), strict=self.strict)
        services.events_accept(organization=self.organization, body=body, event_count=count)


class EventsView(_IngestBase):
    """POST: ingest (204, scope ingest). GET: recent events with why they did not count (scope read)."""

    required_scopes = {"POST": "ingest", "GET": "read"}

    @extend_schema(
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
    def post(self, request: Request) -> HttpResponse:
        self.ingest(request)
        return HttpResponse(status=204)

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
            from_=_param_time(q, "from"),
            to=_param_time(q, "to"),
            limit=limit,
            has_error=None if has_error is None else has_error.lower() in ("1", "true", "yes"),
            ingested_from=_param_time(q, "ingestedAtFrom"),
            ingested_to=_param_time(q, "ingestedAtTo"),
        )
        out = []
        for e in events:
            item = {
                "event": {**e.event, "time": iso(e.event["time"])},
                "ingestedAt": iso(e.ingested_at),
                "storedAt": iso(e.stored_at),
            }
            if e.validation_error:
                item["validationError"] = e.validation_error
            out.append(item)
        return Response(IngestedEventOutput(out, many=True).data)


class EventsV3View(_IngestBase):
    """The OpenMeter self-hosted path Kong's Metering & Billing plugin posts to: 202, strict properties."""

    required_scope = "ingest"
    strict = True

    @extend_schema(
        operation_id="ingestEventsV3",
        description="The path Kong's Metering & Billing plugin posts to: 202, unknown event properties "
        "refused.\n\n" + INGEST_MEDIA_TYPES,
        request=INGEST_BODY,
        responses={202: None, **INGEST_ERRORS},
    )
    def post(self, request: Request) -> HttpResponse:
        self.ingest(request)
        return HttpResponse(status=202)


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
        return Response(MeterOutput([meter_json(m) for m in meters], many=True).data)

    @extend_schema(operation_id="createMeter", request=MeterCreateInput, responses={201: MeterOutput})
    def post(self, request: Request) -> Response:
        d = _body_object(request)
        event_from = None
        if d.get("eventFrom") is not None:
            try:
                event_from = parse_time(d["eventFrom"])
            except ValueError as exc:
                raise ValidationFailed(f"eventFrom {exc}.", field="eventFrom") from None
            limits.check_time(event_from, field="eventFrom")
        meter = services.meter_create(
            organization=self.organization,
            slug=d.get("slug") or d.get("key") or "",
            event_type=d.get("eventType") or "",
            aggregation=d.get("aggregation") or "",
            value_property=d.get("valueProperty"),
            group_by=d.get("groupBy"),
            name=d.get("name") or "",
            description=d.get("description") or "",
            event_from=event_from,
            actor=self.actor,
        )
        return Response(MeterOutput(meter_json(meter)).data, status=status.HTTP_201_CREATED)


class MeterDetailView(TenantAPIView):
    required_scopes = {"GET": "read", "PUT": "admin", "DELETE": "admin"}

    @extend_schema(operation_id="getMeter", responses=MeterOutput)
    def get(self, request: Request, id_or_slug: str) -> Response:
        meter = selectors.meter_get(organization=self.organization, id_or_slug=id_or_slug)
        return Response(MeterOutput(meter_json(meter)).data)

    @extend_schema(operation_id="updateMeter", request=MeterUpdateInput, responses=MeterOutput)
    def put(self, request: Request, id_or_slug: str) -> Response:
        d = _body_object(request)
        meter = selectors.meter_get(organization=self.organization, id_or_slug=id_or_slug)
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
        meter = services.meter_update(
            organization=self.organization,
            id_or_slug=meter.id,
            name=d.get("name"),
            description=d.get("description"),
            group_by=d.get("groupBy"),
            actor=self.actor,
        )
        return Response(MeterOutput(meter_json(meter)).data)

    @extend_schema(operation_id="deleteMeter", responses={204: None})
    def delete(self, request: Request, id_or_slug: str) -> Response:
        services.meter_delete(organization=self.organization, id_or_slug=id_or_slug, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _body_object(request: Request) -> dict[str, Any]:
    data = request.data
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.", field="body")
    return data


def _param_time(q, name: str) -> datetime | None:
    value = q.get(name)
    if value in (None, ""):
        return None
    try:
        parsed = parse_time(value)
    except ValueError as exc:
        raise ValidationFailed(f"{name} {exc}.", field=name) from None
    return limits.check_time(parsed, field=name)


def _strings(d: dict[str, Any], name: str) -> list[str] | None:
    """A query body's `subject`, `filterCustomerId` or `groupBy`: a string or a list of strings."""
    value = d.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationFailed(f"{name} must be a string or an array of strings.", field=name)
    return value


def _string(d: dict[str, Any], name: str) -> str | None:
    value = d.get(name)
    if value is not None and not isinstance(value, str):
        raise ValidationFailed(f"{name} must be a string.", field=name)
    return value or None


class CSVRenderer(renderers.BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, str):
            return data.encode()
        return json.dumps(data, default=str).encode()


def _parse_filter_group_by(q) -> dict[str, list[str]]:
    """deepObject `filterGroupBy[model]=x`, the SDK's repr `filterGroupBy={'model': 'x'}`, JSON, and
    `advancedMeterGroupByFilters={"model": {"$in": [..]}}` / `{"$eq": ".."}`."""
    out: dict[str, list[str]] = {}
    for key in q:
        if key.startswith("filterGroupBy[") and key.endswith("]"):
            out.setdefault(key[14:-1], []).extend(q.getlist(key))
    for raw in q.getlist("filterGroupBy"):
        try:
            value = json.loads(raw)
        except ValueError:
            try:
                value = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                raise ValidationFailed(
                    "filterGroupBy must be filterGroupBy[dim]=value or an object.", field="filterGroupBy"
                ) from None
        _merge_filter(out, value, "filterGroupBy")
    for raw in q.getlist("advancedMeterGroupByFilters"):
        try:
            value = json.loads(raw)
        except ValueError:
            raise ValidationFailed(
                "advancedMeterGroupByFilters must be a JSON object.", field="advancedMeterGroupByFilters"
            ) from None
        _merge_filter(out, value, "advancedMeterGroupByFilters")
    return out


def _merge_filter(out: dict[str, list[str]], value: Any, field: str) -> None:
    if not isinstance(value, dict):
        raise ValidationFailed(f"{field} must be an object {{dimension: value}}.", field=field)
    for dim, cond in value.items():
        if isinstance(cond, dict):
            if set(cond) - {"$in", "$eq"}:
                raise ValidationFailed(
                    f"{field}.{dim}: only $eq and $in are supported.", field=f"{field}.{dim}"
                )
            listed = cond.get("$in") or []
            if not isinstance(listed, list):
                raise ValidationFailed(f"{field}.{dim}.$in must be an array.", field=f"{field}.{dim}")
            vals = listed + ([cond["$eq"]] if "$eq" in cond else [])
        elif isinstance(cond, list):
            vals = cond
        else:
            vals = [cond]
        if any(isinstance(v, (dict, list)) for v in vals):
            raise ValidationFailed(
                f"{field}.{dim}: values must be strings or numbers.", field=f"{field}.{dim}"
            )
        out.setdefault(str(dim), []).extend(str(v) for v in vals)


class MeterQueryView(TenantAPIView):
    required_scope = "read"
    renderer_classes = [renderers.JSONRenderer, CSVRenderer]

    @extend_schema(
        operation_id="queryMeter",
        examples=[
            OpenApiExample(
                "Tokens per hour by model",
                response_only=True,
                value={
                    "from": "2025-01-01T00:00:00Z",
                    "to": "2025-01-02T00:00:00Z",
                    "windowSize": "HOUR",
                    "data": [
                        {
                            "value": 100.0,
                            "windowStart": "2025-01-01T00:00:00Z",
                            "windowEnd": "2025-01-01T01:00:00Z",
                            "subject": "customer-1",
                            "customerId": None,
                            "groupBy": {"model": "gpt-4o"},
                        }
                    ],
                },
            )
        ],
        parameters=METER_QUERY_PARAMS,
        responses={
            (200, "application/json"): MeterQueryResultOutput,
            (200, "text/csv"): OpenApiTypes.STR,
        },
    )
    def get(self, request: Request, id_or_slug: str) -> Response:
        q = request.query_params
        return self.answer(
            request,
            id_or_slug,
            {
                "from": _param_time(q, "from"),
                "to": _param_time(q, "to"),
                "windowSize": q.get("windowSize") or None,
                "windowTimeZone": q.get("windowTimeZone") or "UTC",
                "subject": q.getlist("subject") or None,
                "filterCustomerId": q.getlist("filterCustomerId") or None,
                "groupBy": q.getlist("groupBy"),
                "filterGroupBy": _parse_filter_group_by(q),
            },
        )

    @extend_schema(
        operation_id="queryMeterPost",
        request=MeterQueryInput,
        responses={
            (200, "application/json"): MeterQueryResultOutput,
            (200, "text/csv"): OpenApiTypes.STR,
        },
    )
    def post(self, request: Request, id_or_slug: str) -> Response:
        d = _body_object(request)

        def body_time(name: str) -> datetime | None:
            if d.get(name) in (None, ""):
                return None
            try:
                parsed = parse_time(d[name])
            except ValueError as exc:
                raise ValidationFailed(f"{name} {exc}.", field=name) from None
            return limits.check_time(parsed, field=name)

        fgb: dict[str, list[str]] = {}
        if d.get("filterGroupBy") is not None:
            _merge_filter(fgb, d["filterGroupBy"], "filterGroupBy")
        if d.get("advancedMeterGroupByFilters") is not None:
            _merge_filter(fgb, d["advancedMeterGroupByFilters"], "advancedMeterGroupByFilters")
        return self.answer(
            request,
            id_or_slug,
            {
                "from": body_time("from"),
                "to": body_time("to"),
                "windowSize": _string(d, "windowSize"),
                "windowTimeZone": _string(d, "windowTimeZone") or "UTC",
                "subject": _strings(d, "subject"),
                "filterCustomerId": _strings(d, "filterCustomerId"),
                "groupBy": _strings(d, "groupBy") or [],
                "filterGroupBy": fgb,
            },
        )

    def answer(self, request: Request, id_or_slug: str, p: dict[str, Any]) -> Response:
        meter = selectors.meter_get(organization=self.organization, id_or_slug=id_or_slug)
        rows = selectors.meter_query(
            organization=self.organization,
            meter=meter,
            from_=p["from"],
            to=p["to"],
            window_size=p["windowSize"],
            window_tz=p["windowTimeZone"],
            subjects=p["subject"],
            customer_ids=p["filterCustomerId"],
            group_by=[g for g in p["groupBy"] if g not in ("subject", "customer_id")]
            + (["subject"] if "subject" in p["groupBy"] else []),
            filter_group_by=p["filterGroupBy"],
        )
        dims = [g for g in p["groupBy"] if g in meter.group_by]
        if request.accepted_renderer.format == "csv":
            buf = io.StringIO()
            w = csv.writer(buf)
            w.writerow(["window_start", "window_end", "subject", "customer_id", *dims, "value"])
            for r in rows:
                w.writerow(
                    [
                        iso(r.window_start),
                        iso(r.window_end),
                        r.subject or "",
                        r.customer_id or "",
                        *[r.group_by.get(k) or "" for k in dims],
                        str(r.value),
                    ]
                )
            return Response(buf.getvalue(), content_type="text/csv; charset=utf-8")
        return Response(
            MeterQueryResultOutput(
                {
                    "from": iso(p["from"]),
                    "to": iso(p["to"]),
                    "windowSize": p["windowSize"],
                    "data": [
                        {
                            "value": r.value,
                            "windowStart": iso(r.window_start),
                            "windowEnd": iso(r.window_end),
                            "subject": r.subject,
                            "customerId": r.customer_id,
                            "groupBy": r.group_by,
                        }
                        for r in rows
                    ],
                }
            ).data
        )


class MeterSubjectsView(TenantAPIView):
    required_scope = "read"

    @extend_schema(
        operation_id="listMeterSubjects",
        responses={200: {"type": "array", "items": {"type": "string"}}},
        parameters=TIME_PARAMS,
    )
    def get(self, request: Request, id_or_slug: str) -> Response:
        meter = selectors.meter_get(organization=self.organization, id_or_slug=id_or_slug)
        q = request.query_params
        return Response(
            selectors.meter_subjects(
                organization=self.organization,
                meter=meter,
                from_=_param_time(q, "from"),
                to=_param_time(q, "to"),
            )
        )


class MeterGroupValuesView(TenantAPIView):
    required_scope = "read"

    @extend_schema(
        operation_id="listMeterGroupByValues", responses={200: {"type": "array", "items": {"type": "string"}}}
    )
    def get(self, request: Request, id_or_slug: str, key: str) -> Response:
        meter = selectors.meter_get(organization=self.organization, id_or_slug=id_or_slug)
        return Response(selectors.meter_group_values(organization=self.organization, meter=meter, key=key))
