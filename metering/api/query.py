"""Meter queries (GET with query parameters, POST with a body; JSON or CSV), subjects, group-by values."""

from __future__ import annotations

import ast
import csv
import io
import json
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
)
from rest_framework import renderers, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from core.api_base import IsoDateTimeField, TenantAPIView, iso
from core.errors import ValidationFailed
from metering import selectors
from metering.api.params import TIME_PARAMS, body_object, body_string, body_strings, body_time, param_time

WINDOW_SIZES = ["MINUTE", "HOUR", "DAY", "MONTH"]


# One row of metering.selectors.meter_query (a UsageRow; a comment, so the schema does not show it).
class MeterQueryRowOutput(serializers.Serializer):
    value = serializers.FloatField()
    windowStart = IsoDateTimeField(source="window_start")
    windowEnd = IsoDateTimeField(source="window_end")
    subject = serializers.CharField(allow_null=True)
    customerId = serializers.CharField(source="customer_id", allow_null=True)
    groupBy = serializers.DictField(source="group_by", child=serializers.CharField(allow_null=True))


class MeterQueryResultOutput(serializers.Serializer):
    # `from` is a keyword: the field is declared under another name and renamed on the wire below.
    from_ = IsoDateTimeField(allow_null=True)
    to = IsoDateTimeField(allow_null=True)
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

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        """The query's parameters (the same the GET reads from the query string); OpenMeter accepts a
        string where a list is declared, so the checks are ours and name each field."""
        d = body_object(data)
        fgb: dict[str, list[str]] = {}
        for name in ("filterGroupBy", "advancedMeterGroupByFilters"):
            if d.get(name) is not None:
                merge_filter(fgb, d[name], name)
        return {
            "from": body_time(d, "from"),
            "to": body_time(d, "to"),
            "windowSize": body_string(d, "windowSize"),
            "windowTimeZone": body_string(d, "windowTimeZone") or "UTC",
            "subject": body_strings(d, "subject"),
            "filterCustomerId": body_strings(d, "filterCustomerId"),
            "groupBy": body_strings(d, "groupBy") or [],
            "filterGroupBy": fgb,
        }


MeterQueryInput._declared_fields["from"] = MeterQueryInput._declared_fields.pop("from_")

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


class CSVRenderer(renderers.BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, str):
            return data.encode()
        return json.dumps(data, default=str).encode()


def parse_filter_group_by(q) -> dict[str, list[str]]:
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
        merge_filter(out, value, "filterGroupBy")
    for raw in q.getlist("advancedMeterGroupByFilters"):
        try:
            value = json.loads(raw)
        except ValueError:
            raise ValidationFailed(
                "advancedMeterGroupByFilters must be a JSON object.", field="advancedMeterGroupByFilters"
            ) from None
        merge_filter(out, value, "advancedMeterGroupByFilters")
    return out


def merge_filter(out: dict[str, list[str]], value: Any, field: str) -> None:
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
                "from": param_time(q, "from"),
                "to": param_time(q, "to"),
                "windowSize": q.get("windowSize") or None,
                "windowTimeZone": q.get("windowTimeZone") or "UTC",
                "subject": q.getlist("subject") or None,
                "filterCustomerId": q.getlist("filterCustomerId") or None,
                "groupBy": q.getlist("groupBy"),
                "filterGroupBy": parse_filter_group_by(q),
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
        body = MeterQueryInput(data=request.data)
        body.is_valid(raise_exception=True)
        return self.answer(request, id_or_slug, body.validated_data)

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
                {"from": p["from"], "to": p["to"], "windowSize": p["windowSize"], "data": rows}
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
                from_=param_time(q, "from"),
                to=param_time(q, "to"),
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
