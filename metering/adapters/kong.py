"""Kong `http-log` JSON → CloudEvents 1.0 dicts. Pure: no database, no settings, no I/O.

`payload` is what Kong's http-log plugin POSTs, already parsed: one log object
(`queue.max_batch_size=1`) or a JSON array of them (batched). Field facts come from
../shared/reference/kong.md (Kong OSS 3.10 `kong.log.serialize()` and the AI analytics filter).

Per log entry we emit, in this order:

1. one `api_request` event, id = `request.id` (Kong's request id: the dedup key comes from the
   source, so Kong's whole-batch retries never mint new ids);
2. for every AI analytics block carrying token counts, an `llm_tokens` event per known count:
   `<request.id>:in` (input) and `<request.id>:out` (output). The block is `ai.proxy` (3.8+), or for
   older gateways the first of `ai.ai-proxy` / `ai.ai-proxy-advanced`; any other block (e.g. an
   older `ai.ai-request-transformer`, which makes its own LLM call) gets ids `<request.id>:<name>:in`
   / `:out`, so ids stay unique and deterministic.

Numbers are kept exact: integers stay `int`; an integral float/Decimal (or a digit string, as old
Kong versions send `size`) becomes `int`. `cost` is emitted as a **decimal string** (`"0.00037"`),
built from the shortest repr of a float or from a Decimal (when the caller parsed with
`parse_float=Decimal`), so it is JSON-safe and `Decimal(cost)` is exact.

Billing quantities (`request.id`, `started_at`, token counts, cost) are strict: a bad value raises
`ValidationFailed` naming the field, prefixed with the batch index (`[2].request.id`) when the
payload is an array. Descriptive fields (sizes, latencies, status, names) are lenient: an unusable
value becomes `None` rather than rejecting a batch of billable requests.

Streaming estimate (`estimated`): Kong estimates completion tokens as ceil(chars/4) when a streamed
provider response carried no usage, and the log does not say which happened. Our heuristic: an
entry is *streamed* when `meta.request_mode` is "stream"/"streaming" or the response `content-type`
is `text/event-stream`; a streamed entry is `estimated: true` unless its usage carries
provider-only detail blocks (`prompt_tokens_details`, `completion_tokens_details`,
`input_tokens_details`, `output_tokens_details`), which Kong copies only from a provider-reported
usage object. This errs towards flagging: a 3.10 gateway streaming with `include_usage` is still
flagged, because nothing in its log proves the counts are real.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from core.errors import ValidationFailed

SPECVERSION = "1.0"
TYPE_API_REQUEST = "api_request"
TYPE_LLM_TOKENS = "llm_tokens"
UNKNOWN_SUBJECT = "unknown"

# Kong's AI analytics namespace ("proxy" since the 3.8 LLM plugin refactor) and the per-plugin
# names older gateways used; the first one present is the "primary" block with short ids.
PRIMARY_AI_BLOCKS = ("proxy", "ai-proxy", "ai-proxy-advanced")
STREAM_REQUEST_MODES = frozenset({"stream", "streaming"})
SSE_CONTENT_TYPE = "text/event-stream"
PROVIDER_USAGE_DETAIL_KEYS = (
    "prompt_tokens_details",
    "completion_tokens_details",
    "input_tokens_details",
    "output_tokens_details",
)
# started_at below this is 1973-03-03 in ms: almost surely seconds sent by mistake.
MIN_STARTED_AT_MS = 100_000_000_000


class _Errors:
    """Collects `{name, reason}` pairs so one response names every bad field in the batch."""

    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, name: str, reason: str) -> None:
        self.items.append({"name": name, "reason": reason})


def kong_to_cloudevents(
    payload: Any, *, subject_header: str | None = None, source: str = "kong"
) -> list[dict[str, Any]]:
    """Map a Kong http-log body (object or array) to CloudEvents dicts; raise on bad billing fields."""
    if isinstance(payload, Mapping):
        entries: list[tuple[str, Any]] = [("", payload)]
    elif isinstance(payload, list):
        entries = [(f"[{index}].", entry) for index, entry in enumerate(payload)]
    else:
        raise ValidationFailed(
            "Body must be a Kong http-log object or an array of them.",
            field="body",
        )

    errors = _Errors()
    events: list[dict[str, Any]] = []
    for prefix, entry in entries:
        if not isinstance(entry, Mapping):
            errors.add(prefix.rstrip(".") or "body", "must be a Kong http-log object")
            continue
        events.extend(_entry_events(entry, prefix, errors, subject_header=subject_header, source=source))

    if errors.items:
        first = errors.items[0]
        detail = "; ".join(f"{e['name']}: {e['reason']}" for e in errors.items[:5])
        if len(errors.items) > 5:
            detail += f" (and {len(errors.items) - 5} more)"
        raise ValidationFailed(detail, field=first["name"], errors=errors.items)
    return events


# --- one log entry -------------------------------------------------------------------------------


def _entry_events(
    entry: Mapping[str, Any], prefix: str, errors: _Errors, *, subject_header: str | None, source: str
) -> list[dict[str, Any]]:
    before = len(errors.items)
    request = _obj(entry.get("request"))
    response = _obj(entry.get("response"))
    latencies = _obj(entry.get("latencies"))

    request_id = request.get("id")
    if not isinstance(request_id, str) or not request_id.strip():
        errors.add(f"{prefix}request.id", "required: Kong's request id (Kong >= 3.5) is the dedup key")
        request_id = ""

    time = _time_from_started_at(entry.get("started_at"), f"{prefix}started_at", errors)
    subject, unresolved = _subject(entry, request, subject_header)
    token_events = _token_events(entry, response, prefix, errors)

    if len(errors.items) > before:
        return []

    base_extra = {"subject_unresolved": True} if unresolved else {}
    consumer = _obj(entry.get("consumer"))
    consumer_id = _str(consumer.get("id")) or _str(_obj(entry.get("authenticated_entity")).get("consumer_id"))
    upstream_latency = _number(latencies.get("proxy"))
    api_data: dict[str, Any] = {
        "method": _str(request.get("method")),
        "path": _path(request),
        "status": _number(response.get("status")),
        "latency_ms": _number(latencies.get("request")),
        "kong_latency_ms": _number(latencies.get("kong")),
        "upstream_latency_ms": None if upstream_latency == -1 else upstream_latency,
        "route": _str(_obj(entry.get("route")).get("name")),
        "service": _str(_obj(entry.get("service")).get("name")),
        "request_bytes": _number(request.get("size")),
        "response_bytes": _number(response.get("size")),
        "consumer_id": consumer_id,
        "client_ip": _str(entry.get("client_ip")),
        **base_extra,
    }
    events = [_event(request_id, source, TYPE_API_REQUEST, subject, time, api_data)]
    for suffix, data in token_events:
        events.append(
            _event(f"{request_id}{suffix}", source, TYPE_LLM_TOKENS, subject, time, {**data, **base_extra})
        )
    return events


def _event(
    event_id: str, source: str, type_: str, subject: str, time: str, data: dict[str, Any]
) -> dict[str, Any]:
    return {
        "specversion": SPECVERSION,
        "id": event_id,
        "source": source,
        "type": type_,
        "subject": subject,
        "time": time,
        "data": data,
    }


def _time_from_started_at(value: Any, name: str, errors: _Errors) -> str:
    millis = _exact_int(value)
    if millis is None:
        errors.add(name, "required: request start as an integer of milliseconds since the epoch")
        return ""
    if millis < MIN_STARTED_AT_MS:
        errors.add(name, "too small for milliseconds since the epoch (seconds sent by mistake?)")
        return ""
    seconds, ms = divmod(millis, 1000)
    try:
        moment = datetime.fromtimestamp(seconds, tz=UTC) + timedelta(milliseconds=ms)
    except (OverflowError, OSError, ValueError):
        errors.add(name, "out of range")
        return ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms:03d}Z"


def _subject(
    entry: Mapping[str, Any], request: Mapping[str, Any], subject_header: str | None
) -> tuple[str, bool]:
    consumer = _obj(entry.get("consumer"))
    for key in ("custom_id", "username"):
        value = _str(consumer.get(key))
        if value:
            return value, False
    if subject_header:
        value = _header(_obj(request.get("headers")), subject_header)
        if value:
            return value, False
    return UNKNOWN_SUBJECT, True


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    wanted = name.strip().lower()
    for key, value in headers.items():
        if str(key).lower() != wanted:
            continue
        values = value if isinstance(value, list) else [value]  # repeated headers arrive as a list
        for item in values:
            text = _str(item)
            if text and text != "REDACTED":
                return text
    return None


def _path(request: Mapping[str, Any]) -> str | None:
    uri = _str(request.get("uri"))
    if uri is None:
        return None
    return uri.split("?", 1)[0]


# --- AI analytics --------------------------------------------------------------------------------


def _ai_blocks(entry: Mapping[str, Any]) -> tuple[str | None, list[tuple[str, Mapping[str, Any]]]]:
    """AI analytics blocks (those with a `usage` or `meta` object): the primary one first, then by name."""
    ai = _obj(entry.get("ai"))
    blocks = {
        str(name): block
        for name, block in ai.items()
        if isinstance(block, Mapping)
        and (isinstance(block.get("usage"), Mapping) or isinstance(block.get("meta"), Mapping))
    }
    primary = next((name for name in PRIMARY_AI_BLOCKS if name in blocks), None)
    ordered = sorted(blocks.items(), key=lambda item: (item[0] != primary, item[0]))
    return primary, ordered


def _token_events(
    entry: Mapping[str, Any], response: Mapping[str, Any], prefix: str, errors: _Errors
) -> list[tuple[str, dict[str, Any]]]:
    primary, blocks = _ai_blocks(entry)
    out: list[tuple[str, dict[str, Any]]] = []
    for name, block in blocks:
        usage = _obj(block.get("usage"))
        meta = _obj(block.get("meta"))
        path = f"{prefix}ai.{name}.usage"

        input_tokens = _first_count(usage, ("prompt_tokens", "prompt_token", "input_tokens"), path, errors)
        output_tokens = _first_count(
            usage, ("completion_tokens", "completion_token", "output_tokens"), path, errors
        )
        total_tokens = _first_count(usage, ("total_tokens",), path, errors)
        if total_tokens is None and input_tokens is not None and output_tokens is not None:
            total_tokens = input_tokens + output_tokens
        cached_tokens = _detail_count(
            usage,
            (("prompt_tokens_details", "cached_tokens"), ("input_tokens_details", "cached_tokens")),
            path,
            errors,
        )
        if cached_tokens is None:
            cached_tokens = _first_count(usage, ("cached_tokens",), path, errors)
        reasoning_tokens = _detail_count(
            usage,
            (
                ("completion_tokens_details", "reasoning_tokens"),
                ("output_tokens_details", "reasoning_tokens"),
            ),
            path,
            errors,
        )
        cost = _cost(usage.get("cost"), f"{path}.cost", errors)

        if input_tokens is None and output_tokens is None:
            continue  # meta without counts (e.g. a failed call): nothing to meter

        common: dict[str, Any] = {
            "model": _str(meta.get("response_model")) or _str(meta.get("request_model")),
            "provider": _str(meta.get("provider_name")),
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": total_tokens,
            "request_cost": cost,
        }
        if cached_tokens is not None:
            common["cached_tokens"] = cached_tokens
        if reasoning_tokens is not None:
            common["reasoning_tokens"] = reasoning_tokens
        common["estimated"] = _is_estimated(meta, usage, response)

        id_base = "" if name == primary else f":{name}"
        # `cost` is attributed once per request (to the output event, else the input one) so that
        # SUM($.cost) over all token events equals Kong's cost; `request_cost` repeats it for reference.
        if input_tokens is not None:
            in_cost = cost if output_tokens is None or cost is None else "0"
            out.append(
                (f"{id_base}:in", {"tokens": input_tokens, "type": "input", **common, "cost": in_cost})
            )
        if output_tokens is not None:
            out.append(
                (f"{id_base}:out", {"tokens": output_tokens, "type": "output", **common, "cost": cost})
            )
    return out


def _is_streamed(meta: Mapping[str, Any], response: Mapping[str, Any]) -> bool:
    mode = _str(meta.get("request_mode"))
    if mode and mode.lower() in STREAM_REQUEST_MODES:
        return True
    content_type = _header(_obj(response.get("headers")), "content-type") or ""
    return content_type.split(";", 1)[0].strip().lower() == SSE_CONTENT_TYPE


def _is_estimated(meta: Mapping[str, Any], usage: Mapping[str, Any], response: Mapping[str, Any]) -> bool:
    if not _is_streamed(meta, response):
        return False
    provider_reported = any(isinstance(usage.get(key), Mapping) for key in PROVIDER_USAGE_DETAIL_KEYS)
    return not provider_reported


def _first_count(usage: Mapping[str, Any], keys: tuple[str, ...], path: str, errors: _Errors) -> int | None:
    for key in keys:
        if usage.get(key) is not None:
            return _count(usage[key], f"{path}.{key}", errors)
    return None


def _detail_count(
    usage: Mapping[str, Any], pairs: tuple[tuple[str, str], ...], path: str, errors: _Errors
) -> int | None:
    for block_key, key in pairs:
        block = usage.get(block_key)
        if isinstance(block, Mapping) and block.get(key) is not None:
            return _count(block[key], f"{path}.{block_key}.{key}", errors)
    return None


def _count(value: Any, name: str, errors: _Errors) -> int | None:
    number = _exact_int(value)
    if number is None or number < 0:
        errors.add(name, "must be a non-negative integer token count")
        return None
    return number


def _cost(value: Any, name: str, errors: _Errors) -> str | None:
    """Kong's cost as an exact decimal string; floats go through their shortest repr."""
    if value is None:
        return None
    if isinstance(value, bool):
        errors.add(name, "must be a number")
        return None
    try:
        if isinstance(value, float):
            amount = Decimal(repr(value))
        elif isinstance(value, int | Decimal):
            amount = Decimal(value)
        elif isinstance(value, str):
            amount = Decimal(value.strip())
        else:
            raise InvalidOperation
    except (InvalidOperation, ValueError):
        errors.add(name, "must be a number")
        return None
    if not amount.is_finite():
        errors.add(name, "must be a finite number")
        return None
    return format(amount, "f")


# --- small coercions -----------------------------------------------------------------------------


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _str(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value
    return None


def _exact_int(value: Any) -> int | None:
    """int for ints, integral floats/Decimals and digit strings; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, Decimal):
        return int(value) if value.is_finite() and value == value.to_integral_value() else None
    if isinstance(value, str):
        text = value.strip()
        return int(text) if text.isascii() and text.lstrip("-").isdigit() else None
    return None


def _number(value: Any) -> int | float | Decimal | None:
    """Descriptive numbers: exact int when integral, the number itself when not, else None."""
    number = _exact_int(value)
    if number is not None:
        return number
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, Decimal) and value.is_finite():
        return value
    return None
