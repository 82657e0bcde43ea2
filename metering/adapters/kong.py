"""Kong `http-log` JSON → CloudEvents 1.0 dicts, entry by entry. Pure: no database, no settings, no I/O.

`kong_parse(body)` reads what Kong's http-log plugin POSTs: one log object (`queue.max_batch_size=1`) or a
JSON array of them. It is lenient where a client of the gateway controls the bytes: invalid UTF-8 (a raw
`%FF` in a query string, which Kong's JSON encoder copies as is) is replaced by U+FFFD, and `\\u0000` is
parsed (it is replaced when an emitted string carries it). Numbers are parsed exactly (`Decimal`).

`kong_map(payload)` maps every entry on its own. An entry whose billing fields are unusable is *rejected*
(`KongRejection`: its position in Kong's batch, every bad field, what could be read of it) and the other
entries are still mapped: Kong retries a whole batch on a non-2xx answer and then drops it, so one bad entry
must never cost the good ones. Per accepted entry we emit, in this order:

1. one `api_request` event, id = `request.id` (Kong's request id: the dedup key comes from the source, so
   Kong's whole-batch retries never mint new ids);
2. for every AI analytics block with token counts, an `llm_tokens` event per side with a positive count:
   `<request.id>:in` and `<request.id>:out`. The primary block gets these short ids; any other block (an
   older per-plugin `ai.ai-request-transformer`, which makes its own LLM call) gets
   `<request.id>:<name>:in` / `:out`.

Where each Kong version puts its analytics (read from Kong's sources and developer docs, see docs/kong.md):

- 3.6: flat `ai.usage.{prompt_tokens,completion_tokens,total_tokens}` and `ai.meta.*`
  (kong/llm/drivers/shared.lua at 3.6.0), written only for 200 answers, never streamed;
- 3.7: `ai.<plugin>.usage.{prompt_token,completion_token,total_tokens}` (singular keys) and `ai.<plugin>.meta`,
  plugin = `ai-proxy` / `ai-proxy-advanced` / ... (kong/llm/drivers/shared.lua at 3.7.0);
- 3.8: the same blocks with plural `prompt_tokens`/`completion_tokens`, `cost`, `time_per_token`,
  `meta.llm_latency` and a `cache` object (kong/llm/drivers/shared.lua at 3.8.0);
- 3.9+: one `ai.proxy.{meta,usage}` (namespace "proxy", kong/llm/plugin/observability.lua and
  shared-filters/serialize-analytics.lua at 3.9.0); `cost` always present, unset counts logged as 0;
- 3.11+: `input_tokens`/`output_tokens` (image, audio and realtime calls, with `prompt_tokens`/
  `completion_tokens` 0) and `*_tokens_details`; 3.12+: `meta.request_mode` (oneshot, stream, realtime);
  the AI Semantic Cache plugin adds `ai.proxy.cache.cache_status` (Hit, Miss, Bypass, Refresh).

Estimates (`estimated`): only streamed answers are ever estimated, and not all of them. 3.7 estimates the
streamed prompt from the request for every provider; 3.8+ estimate streamed prompt and completion counts
only for providers outside Kong's `streaming_has_token_counts` (anthropic, bedrock, cohere, gemini, llama2
report their own). A 3.11+ log whose usage carries a non-empty `*_tokens_details` block copied the
provider's usage object, so it is not an estimate either.

Numbers are kept exact: token counts are JSON numbers with an integral value (a digit string is refused),
`cost` is emitted as a decimal string (`"0.00037"`) and must not be negative. Descriptive fields (sizes,
latencies, status, names) are lenient: an unusable value becomes `None`. Text we copy (subject, path,
names) has NUL replaced by U+FFFD.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from core.errors import ValidationFailed
from metering.ingest import MAX_ATTR_LEN

SPECVERSION = "1.0"
TYPE_API_REQUEST = "api_request"
TYPE_LLM_TOKENS = "llm_tokens"
UNKNOWN_SUBJECT = "unknown"
REJECTED_REASON = "kong_entry_rejected"

# The block with the short `:in`/`:out` ids: `proxy` (3.9+), else the first per-plugin block (3.7-3.8).
PRIMARY_AI_BLOCKS = ("proxy", "ai-proxy", "ai-proxy-advanced")
FLAT_BLOCK = ""  # Kong 3.6 writes `ai.usage` / `ai.meta` with no plugin level
# kong/llm/drivers/shared.lua `streaming_has_token_counts` (3.8+): providers whose streams carry usage.
STREAM_COUNTING_PROVIDERS = frozenset({"anthropic", "bedrock", "cohere", "gemini", "llama2"})
STREAM_REQUEST_MODES = frozenset({"stream", "streaming"})
SSE_CONTENT_TYPE = "text/event-stream"
PROVIDER_USAGE_DETAIL_KEYS = (
    "prompt_tokens_details",
    "completion_tokens_details",
    "input_tokens_details",
    "output_tokens_details",
)
# Per side: (count keys in order: text pair first, then the 3.11+ modality pair), detail blocks, detail keys.
INPUT_KEYS = ("prompt_tokens", "prompt_token", "input_tokens")
OUTPUT_KEYS = ("completion_tokens", "completion_token", "output_tokens")
INPUT_DETAILS = ("prompt_tokens_details", "input_tokens_details")
OUTPUT_DETAILS = ("completion_tokens_details", "output_tokens_details")
INPUT_DETAIL_FIELDS = {
    "cached_tokens": ("cached_tokens",),
    "text_tokens": ("text_tokens",),
    "image_tokens": ("image_tokens", "image_tokens_count"),
    "audio_tokens": ("audio_tokens", "audio_tokens_count"),
}
OUTPUT_DETAIL_FIELDS = {
    "reasoning_tokens": ("reasoning_tokens",),
    "text_tokens": ("text_tokens",),
    "image_tokens": ("image_tokens", "image_tokens_count"),
    "audio_tokens": ("audio_tokens", "audio_tokens_count"),
}
# started_at below this is 1973-03-03 in ms: almost surely seconds sent by mistake.
MIN_STARTED_AT_MS = 100_000_000_000
MAX_COUNT = 10**15  # no single request uses more tokens; larger values are corrupt
DESCRIPTIVE_MAX = 10**18  # sizes, latencies, statuses beyond this are unusable (None)
LONGEST_ID_SUFFIX = 64  # room left in the 255-character id for `:<plugin>:out`
EXCERPT_MAX_CHARS = 1024  # strings kept of a rejected entry for the event log


# --- parsing -------------------------------------------------------------------------------------

_decoder = msgspec.json.Decoder(float_hook=Decimal)
_LONE_SURROGATE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def kong_parse(body: bytes) -> Any:
    """The http-log payload; invalid UTF-8 and lone surrogate escapes are replaced, never refused."""
    try:
        return _decoder.decode(body)
    except msgspec.DecodeError:
        pass
    text = _LONE_SURROGATE.sub(r"\\ufffd", body.decode("utf-8", errors="replace"))
    try:
        return _decoder.decode(text)
    except msgspec.DecodeError as exc:
        message = str(exc).replace("JSON is malformed: ", "")
        raise ValidationFailed(f"The body is not valid JSON: {message}.", field="body") from None


# --- results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KongEntry:
    """One accepted log entry and its events."""

    index: int | None  # position in Kong's batch; None for a single-object body
    events: list[dict[str, Any]]
    subject_unresolved: bool


@dataclass(frozen=True)
class KongRejection:
    """One refused log entry: every bad field, and what could be read of it (for the event log)."""

    index: int | None
    errors: list[dict[str, str]]
    request_id: str
    subject: str
    time: str | None
    excerpt: dict[str, Any]

    @property
    def where(self) -> str:
        return "the Kong log entry" if self.index is None else f"Kong batch entry {self.index}"

    @property
    def detail(self) -> str:
        problems = "; ".join(f"{e['name']}: {e['reason']}" for e in self.errors)
        return f"{self.where} was not counted: {problems}."

    def rejected_event(self, *, source: str) -> dict[str, Any]:
        """The row the event log keeps for this entry (`metering.models.RejectedEvent` fields)."""
        return {
            "source": source,
            "event_id": self.request_id,
            "type": TYPE_API_REQUEST,
            "subject": self.subject,
            "time": datetime.fromisoformat(self.time) if self.time else None,
            "data": {"kong_index": self.index, "errors": self.errors, "entry": self.excerpt},
            "reason": REJECTED_REASON,
            "detail": self.detail,
        }


@dataclass
class KongBatch:
    entries: list[KongEntry] = field(default_factory=list)
    rejections: list[KongRejection] = field(default_factory=list)

    @property
    def events(self) -> list[dict[str, Any]]:
        return [event for entry in self.entries for event in entry.events]

    def reject(self, entry: KongEntry, errors: list[dict[str, str]]) -> None:
        """Move an accepted entry to the rejections (its events broke a rule checked after mapping);
        `errors` name CloudEvent fields of its events, renamed here to the entry's position."""
        prefix = "" if entry.index is None else f"[{entry.index}]."
        where = "" if entry.index is None else f" (Kong batch entry {entry.index})"
        first = entry.events[0]
        renamed: list[dict[str, str]] = []
        for error in errors:  # the entry's events share fields (time, subject): name each problem once
            item = {
                "name": prefix + _kong_field(error.get("name") or ""),
                "reason": f"{error.get('reason', '')}{where}",
            }
            if item not in renamed:
                renamed.append(item)
        self.entries.remove(entry)
        self.rejections.append(
            KongRejection(
                index=entry.index,
                errors=renamed,
                request_id=first["id"],
                subject=first["subject"],
                time=first["time"],
                excerpt=_clean_tree({"events": entry.events}),
            )
        )
        self.rejections.sort(key=lambda r: -1 if r.index is None else r.index)


# CloudEvent attributes → the http-log fields they come from, to name a problem found after mapping.
_KONG_FIELDS = {"id": "request.id", "time": "started_at", "subject": "subject", "source": "source"}


def _kong_field(name: str) -> str:
    """`events[2].time` → `started_at`; a data field keeps its CloudEvent name (`data.tokens`)."""
    attribute = name.split("].", 1)[-1] if "]." in name else name
    return _KONG_FIELDS.get(attribute, attribute)


class _Errors:
    def __init__(self, prefix: str, index: int | None) -> None:
        self.prefix = prefix
        self.index = index
        self.items: list[dict[str, str]] = []

    def add(self, name: str, reason: str) -> None:
        where = "" if self.index is None else f" (Kong batch entry {self.index})"
        self.items.append({"name": f"{self.prefix}{name}", "reason": f"{reason}{where}"})


def kong_map(payload: Any, *, subject_header: str | None = None, source: str = "kong") -> KongBatch:
    """Map a Kong http-log body (object or array) entry by entry; bad entries become rejections."""
    if isinstance(payload, Mapping):
        items: list[tuple[int | None, Any]] = [(None, payload)]
    elif isinstance(payload, list):
        items = list(enumerate(payload))
    else:
        raise ValidationFailed("Body must be a Kong http-log object or an array of them.", field="body")

    batch = KongBatch()
    for index, entry in items:
        prefix = "" if index is None else f"[{index}]."
        errors = _Errors(prefix, index)
        if not isinstance(entry, Mapping):
            errors.items.append(
                {
                    "name": prefix.rstrip(".") or "body",
                    "reason": "must be a Kong http-log object"
                    + ("" if index is None else f" (Kong batch entry {index})"),
                }
            )
            batch.rejections.append(KongRejection(index, errors.items, "", UNKNOWN_SUBJECT, None, {}))
            continue
        mapped = _entry(entry, errors, subject_header=subject_header, source=source)
        if errors.items:
            batch.rejections.append(_rejection(entry, index, errors.items, subject_header))
        else:
            events, unresolved = mapped
            batch.entries.append(KongEntry(index, events, unresolved))
    return batch


# --- one log entry -------------------------------------------------------------------------------


def _entry(
    entry: Mapping[str, Any], errors: _Errors, *, subject_header: str | None, source: str
) -> tuple[list[dict[str, Any]], bool]:
    request = _obj(entry.get("request"))
    response = _obj(entry.get("response"))
    latencies = _obj(entry.get("latencies"))

    request_id = _str(request.get("id"))
    if request_id is None or not request_id.strip():
        errors.add("request.id", "required: Kong's request id (Kong >= 3.5) is the dedup key")
        request_id = ""
    elif len(request_id) > MAX_ATTR_LEN - LONGEST_ID_SUFFIX:
        errors.add("request.id", f"at most {MAX_ATTR_LEN - LONGEST_ID_SUFFIX} characters")

    time = _time_from_started_at(entry.get("started_at"), "started_at", errors)
    subject, subject_field, unresolved = _subject(entry, request, subject_header)
    if len(subject) > MAX_ATTR_LEN:
        errors.add(
            subject_field,
            f"the subject taken from it is {len(subject)} characters, at most {MAX_ATTR_LEN}",
        )
    token_events = _token_events(entry, response, errors)
    if errors.items:
        return [], unresolved

    extra = {"subject_unresolved": True} if unresolved else {}
    consumer = _obj(entry.get("consumer"))
    consumer_id = _str(consumer.get("id")) or _str(_obj(entry.get("authenticated_entity")).get("consumer_id"))
    upstream_latency = _number(latencies.get("proxy"))
    tries = entry.get("tries")
    api_data: dict[str, Any] = {
        "method": _str(request.get("method")),
        "path": _path(request),
        "status": _number(response.get("status")),
        "upstream_status": _upstream_status(entry.get("upstream_status")),
        "response_source": _str(entry.get("source")),
        "tries": len(tries) if isinstance(tries, list) else None,
        "latency_ms": _number(latencies.get("request")),
        "kong_latency_ms": _number(latencies.get("kong")),
        "upstream_latency_ms": None if upstream_latency == -1 else upstream_latency,
        "route": _str(_obj(entry.get("route")).get("name")),
        "service": _str(_obj(entry.get("service")).get("name")),
        "request_bytes": _number(request.get("size")),
        "response_bytes": _number(response.get("size")),
        "consumer_id": consumer_id,
        "client_ip": _str(entry.get("client_ip")),
        **extra,
    }
    events = [_event(request_id, source, TYPE_API_REQUEST, subject, time, api_data)]
    for suffix, data in token_events:
        events.append(
            _event(f"{request_id}{suffix}", source, TYPE_LLM_TOKENS, subject, time, {**data, **extra})
        )
    return events, unresolved


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
) -> tuple[str, str, bool]:
    """(subject, the field it came from, unresolved): custom_id, then username, then the header."""
    consumer = _obj(entry.get("consumer"))
    for key in ("custom_id", "username"):
        value = _str(consumer.get(key))
        if value and value.strip():
            return value, f"consumer.{key}", False
    if subject_header:
        value = _header(_obj(request.get("headers")), subject_header)
        if value:
            return value, f"request.headers.{subject_header.strip().lower()}", False
    return UNKNOWN_SUBJECT, "subject", True


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    wanted = name.strip().lower()
    for key, value in headers.items():
        if str(key).lower() != wanted:
            continue
        values = value if isinstance(value, list) else [value]  # repeated headers arrive as a list
        for item in values:
            text = _str(item)
            if text and text.strip() and text != "REDACTED":
                return text
    return None


def _path(request: Mapping[str, Any]) -> str | None:
    uri = _str(request.get("uri"))
    if uri is None:
        return None
    return uri.split("?", 1)[0]


def _upstream_status(value: Any) -> int | None:
    """nginx's $upstream_status: "200", or "502, 200" / "502 : 200" after retries; the last code counts."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        return None
    codes = re.findall(r"\d{3}", value)
    return int(codes[-1]) if codes else None


# --- AI analytics --------------------------------------------------------------------------------


def _ai_blocks(entry: Mapping[str, Any]) -> tuple[str | None, list[tuple[str, Mapping[str, Any]]]]:
    """AI analytics blocks (with a `usage` or `meta` object): the primary one first, then by name.

    Kong 3.6's flat layout (`ai.usage`, `ai.meta`) is the block named FLAT_BLOCK."""
    ai = _obj(entry.get("ai"))
    blocks: dict[str, Mapping[str, Any]] = {}
    if isinstance(ai.get("usage"), Mapping) or isinstance(ai.get("meta"), Mapping):
        blocks[FLAT_BLOCK] = ai
    for name, block in ai.items():
        if name in ("usage", "meta", "payload", "cache"):
            continue
        if isinstance(block, Mapping) and (
            isinstance(block.get("usage"), Mapping) or isinstance(block.get("meta"), Mapping)
        ):
            blocks[str(name)] = block
    primary = next((name for name in (FLAT_BLOCK, *PRIMARY_AI_BLOCKS) if name in blocks), None)
    ordered = sorted(blocks.items(), key=lambda item: (item[0] != primary, item[0]))
    return primary, ordered


def _token_events(
    entry: Mapping[str, Any], response: Mapping[str, Any], errors: _Errors
) -> list[tuple[str, dict[str, Any]]]:
    primary, blocks = _ai_blocks(entry)
    status = _exact_int(response.get("status"))
    out: list[tuple[str, dict[str, Any]]] = []
    for name, block in blocks:
        usage = _obj(block.get("usage"))
        meta = _obj(block.get("meta"))
        path = "ai.usage" if name == FLAT_BLOCK else f"ai.{name}.usage"

        counts = {
            key: _count(usage[key], f"{path}.{key}", errors)
            for key in (*INPUT_KEYS, *OUTPUT_KEYS)
            if usage.get(key) is not None
        }
        input_tokens = _side(counts, INPUT_KEYS)
        output_tokens = _side(counts, OUTPUT_KEYS)
        total = (
            _count(usage["total_tokens"], f"{path}.total_tokens", errors)
            if usage.get("total_tokens") is not None
            else None
        )
        input_details = _details(usage, INPUT_DETAILS, INPUT_DETAIL_FIELDS, path, errors)
        output_details = _details(usage, OUTPUT_DETAILS, OUTPUT_DETAIL_FIELDS, path, errors)
        cost = _cost(usage.get("cost"), f"{path}.cost", errors)
        if errors.items:
            continue

        emit_in = bool(input_tokens)
        emit_out = bool(output_tokens)
        if status is not None and status >= 400 and not output_tokens:
            # A failed call: no completion, and any prompt count is Kong's own pre-request estimate
            # (kong/llm/plugin/shared-filters/normalize-request.lua) or 0; nothing was used.
            emit_in = emit_out = False
        if not (emit_in or emit_out):
            continue

        if not total:
            total = (input_tokens or 0) + (output_tokens or 0)
        cache = _obj(block.get("cache"))
        cache_status = _str(cache.get("cache_status"))
        common: dict[str, Any] = {
            "model": _str(meta.get("response_model")) or _str(meta.get("request_model")),
            "provider": _str(meta.get("provider_name")),
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": total,
            "request_cost": cost,
        }
        flags: dict[str, Any] = {
            "estimated": _is_estimated(meta, usage, response),
            "cache_status": cache_status,
            "cache_hit": (cache_status or "").strip().lower() == "hit",
        }
        request_mode = _str(meta.get("request_mode"))
        if request_mode:
            flags["request_mode"] = request_mode

        id_base = "" if name == primary else f":{name}"
        # `cost` is attributed once per request (to the output event, else the input one) so that
        # SUM($.cost) over all token events equals Kong's cost; `request_cost` repeats it for reference.
        if emit_in:
            in_cost = "0" if emit_out and cost is not None else cost
            data = {"tokens": input_tokens, "type": "input", **common, "cost": in_cost, **input_details}
            out.append((f"{id_base}:in", {**data, **flags}))
        if emit_out:
            data = {"tokens": output_tokens, "type": "output", **common, "cost": cost, **output_details}
            out.append((f"{id_base}:out", {**data, **flags}))
    return out


def _side(counts: Mapping[str, int | None], keys: tuple[str, ...]) -> int | None:
    """The first positive count of the side (text keys before the 3.11+ input/output keys), else 0 when
    Kong logged a zero, else None (not logged)."""
    present = [counts[key] for key in keys if key in counts and counts[key] is not None]
    positive = [value for value in present if value]
    if positive:
        return positive[0]
    return 0 if present else None


def _details(
    usage: Mapping[str, Any],
    blocks: tuple[str, ...],
    fields: Mapping[str, tuple[str, ...]],
    path: str,
    errors: _Errors,
) -> dict[str, int]:
    """This side's breakdown (cached/reasoning/text/image/audio tokens), from the first block holding each."""
    out: dict[str, int] = {}
    for out_key, keys in fields.items():
        for block_key in blocks:
            block = usage.get(block_key)
            if not isinstance(block, Mapping):
                continue
            key = next((k for k in keys if block.get(k) is not None), None)
            if key is not None:
                value = _count(block[key], f"{path}.{block_key}.{key}", errors)
                if value is not None:
                    out[out_key] = value
                break
    return out


def _is_streamed(meta: Mapping[str, Any], response: Mapping[str, Any]) -> bool:
    mode = _str(meta.get("request_mode"))
    if mode:
        return mode.lower() in STREAM_REQUEST_MODES
    content_type = _header(_obj(response.get("headers")), "content-type") or ""
    return content_type.split(";", 1)[0].strip().lower() == SSE_CONTENT_TYPE


def _is_estimated(meta: Mapping[str, Any], usage: Mapping[str, Any], response: Mapping[str, Any]) -> bool:
    if not _is_streamed(meta, response):
        return False
    if usage.get("prompt_token") is not None or usage.get("completion_token") is not None:
        return True  # 3.7 adds a word-count estimate to every streamed prompt
    provider = (_str(meta.get("provider_name")) or "").lower()
    if provider in STREAM_COUNTING_PROVIDERS:
        return False
    return not any(
        isinstance(usage.get(key), Mapping) and len(usage[key]) > 0 for key in PROVIDER_USAGE_DETAIL_KEYS
    )


def _count(value: Any, name: str, errors: _Errors) -> int | None:
    if isinstance(value, str):
        errors.add(name, "must be a JSON number (a non-negative integer token count), not a string")
        return None
    number = _exact_int(value)
    if number is None or number < 0 or number > MAX_COUNT:
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
    if amount < 0:
        errors.add(name, "must not be negative")
        return None
    if amount and not -30 <= amount.adjusted() <= 15:
        errors.add(name, "out of range for a request's cost")
        return None
    return format(amount, "f")


# --- rejected entries ----------------------------------------------------------------------------


def _rejection(
    entry: Mapping[str, Any], index: int | None, errors: list[dict[str, str]], subject_header: str | None
) -> KongRejection:
    """What the event log shows of a refused entry: ids and times as far as readable, and an excerpt
    (billing fields; no headers, query strings or payloads), strings cleaned and shortened."""
    request = _obj(entry.get("request"))
    request_id = (_str(request.get("id")) or "")[:MAX_ATTR_LEN]
    subject, _, _ = _subject(entry, request, subject_header)
    time_errors = _Errors("", None)
    time = _time_from_started_at(entry.get("started_at"), "started_at", time_errors) or None
    excerpt: dict[str, Any] = {
        "request": {k: request.get(k) for k in ("id", "method", "uri") if k in request},
        "response": {"status": _obj(entry.get("response")).get("status")},
        "started_at": entry.get("started_at"),
        "consumer": {
            k: v for k, v in _obj(entry.get("consumer")).items() if k in ("id", "username", "custom_id")
        },
    }
    ai = _obj(entry.get("ai"))
    ai_excerpt = {
        name: {k: v for k, v in block.items() if k in ("meta", "usage", "cache")}
        for name, block in ai.items()
        if isinstance(block, Mapping) and name not in ("payload",)
    }
    if isinstance(ai.get("usage"), Mapping) or isinstance(ai.get("meta"), Mapping):  # 3.6 flat
        ai_excerpt = {k: v for k, v in ai.items() if k in ("meta", "usage")}
    if ai_excerpt:
        excerpt["ai"] = ai_excerpt
    return KongRejection(
        index=index,
        errors=errors,
        request_id=request_id,
        subject=subject[:MAX_ATTR_LEN],
        time=time,
        excerpt=_clean_tree(excerpt),
    )


def _clean_tree(value: Any, depth: int = 0) -> Any:
    """JSON-safe copy for the event log: strings cleaned and shortened; a number that is not a plain int
    or float is kept exactly as text."""
    if depth > 8:
        return None
    if isinstance(value, Mapping):
        return {_clean(str(k))[:EXCERPT_MAX_CHARS]: _clean_tree(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_tree(v, depth + 1) for v in value[:100]]
    if isinstance(value, str):
        return _clean(value)[:EXCERPT_MAX_CHARS]
    if isinstance(value, bool) or value is None:
        return value
    number = _number(value) if isinstance(value, int | float | Decimal) else None
    if isinstance(number, int | float):
        return number
    if isinstance(value, int | float | Decimal):
        return str(value)[:EXCERPT_MAX_CHARS]  # exact, as text (a JSON column holds no Decimal)
    return None


# --- small coercions -----------------------------------------------------------------------------


def _clean(text: str) -> str:
    """Text safe to store: NUL (which PostgreSQL's jsonb cannot hold) and a literal `\\u0000`
    (which ingest's NUL guard would read as one) become U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if "\\u0000" in text:
        text = text.replace("\\u0000", "\ufffdu0000")
    return text


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _str(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return _clean(value)
    return None


def _exact_int(value: Any) -> int | None:
    """int for ints, integral floats/Decimals of sane size and digit strings; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, Decimal):
        if not value.is_finite() or value.adjusted() > 30:
            return None
        return int(value) if value == value.to_integral_value() else None
    if isinstance(value, str):
        text = value.strip()
        return int(text) if text.isascii() and text.lstrip("-").isdigit() and len(text) < 30 else None
    return None


def _number(value: Any) -> int | float | Decimal | None:
    """Descriptive numbers: exact int when integral, the number itself when not, else None."""
    number = _exact_int(value)
    if number is not None:
        return number if abs(number) < DESCRIPTIVE_MAX else None
    if isinstance(value, float) and math.isfinite(value) and abs(value) < DESCRIPTIVE_MAX:
        return value
    if isinstance(value, Decimal) and value.is_finite() and -30 <= value.adjusted() < 18:
        return value
    return None
