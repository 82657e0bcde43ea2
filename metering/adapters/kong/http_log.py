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

The AI analytics blocks, by Kong version, are read by `ai_tokens.py`; value coercions are in `values.py`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec

from core.errors import ErrorList, ValidationFailed
from metering.adapters.kong.ai_tokens import token_events
from metering.adapters.kong.values import (
    as_mapping,
    as_text,
    clean_tree,
    descriptive_number,
    exact_int,
    header_value,
)
from metering.ingest import MAX_ATTR_LEN

SPECVERSION = "1.0"
TYPE_API_REQUEST = "api_request"
TYPE_LLM_TOKENS = "llm_tokens"
UNKNOWN_SUBJECT = "unknown"
REJECTED_REASON = "kong_entry_rejected"

# started_at below this is 1973-03-03 in ms: almost surely seconds sent by mistake.
MIN_STARTED_AT_MS = 100_000_000_000
LONGEST_ID_SUFFIX = 64  # room left in the 255-character id for `:<plugin>:out`

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
                excerpt=clean_tree({"events": entry.events}),
            )
        )
        self.rejections.sort(key=lambda r: -1 if r.index is None else r.index)


# CloudEvent attributes → the http-log fields they come from, to name a problem found after mapping.
_KONG_FIELDS = {"id": "request.id", "time": "started_at", "subject": "subject", "source": "source"}


def _kong_field(name: str) -> str:
    """`events[2].time` → `started_at`; a data field keeps its CloudEvent name (`data.tokens`)."""
    attribute = name.split("].", 1)[-1] if "]." in name else name
    return _KONG_FIELDS.get(attribute, attribute)


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
        errors = ErrorList(prefix, suffix="" if index is None else f" (Kong batch entry {index})")
        if not isinstance(entry, Mapping):
            errors.items.append(
                {
                    "name": prefix.rstrip(".") or "body",
                    "reason": f"must be a Kong http-log object{errors.suffix}",
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
    entry: Mapping[str, Any], errors: ErrorList, *, subject_header: str | None, source: str
) -> tuple[list[dict[str, Any]], bool]:
    request = as_mapping(entry.get("request"))
    response = as_mapping(entry.get("response"))
    latencies = as_mapping(entry.get("latencies"))

    request_id = as_text(request.get("id"))
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
    tokens = token_events(entry, response, errors)
    if errors.items:
        return [], unresolved

    extra = {"subject_unresolved": True} if unresolved else {}
    consumer = as_mapping(entry.get("consumer"))
    consumer_id = as_text(consumer.get("id")) or as_text(
        as_mapping(entry.get("authenticated_entity")).get("consumer_id")
    )
    upstream_latency = descriptive_number(latencies.get("proxy"))
    tries = entry.get("tries")
    api_data: dict[str, Any] = {
        "method": as_text(request.get("method")),
        "path": _path(request),
        "status": descriptive_number(response.get("status")),
        "upstream_status": _upstream_status(entry.get("upstream_status")),
        "response_source": as_text(entry.get("source")),
        "tries": len(tries) if isinstance(tries, list) else None,
        "latency_ms": descriptive_number(latencies.get("request")),
        "kong_latency_ms": descriptive_number(latencies.get("kong")),
        "upstream_latency_ms": None if upstream_latency == -1 else upstream_latency,
        "route": as_text(as_mapping(entry.get("route")).get("name")),
        "service": as_text(as_mapping(entry.get("service")).get("name")),
        "request_bytes": descriptive_number(request.get("size")),
        "response_bytes": descriptive_number(response.get("size")),
        "consumer_id": consumer_id,
        "client_ip": as_text(entry.get("client_ip")),
        **extra,
    }
    events = [_event(request_id, source, TYPE_API_REQUEST, subject, time, api_data)]
    for suffix, data in tokens:
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


def _time_from_started_at(value: Any, name: str, errors: ErrorList) -> str:
    millis = exact_int(value)
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
    consumer = as_mapping(entry.get("consumer"))
    for key in ("custom_id", "username"):
        value = as_text(consumer.get(key))
        if value and value.strip():
            return value, f"consumer.{key}", False
    if subject_header:
        value = header_value(as_mapping(request.get("headers")), subject_header)
        if value:
            return value, f"request.headers.{subject_header.strip().lower()}", False
    return UNKNOWN_SUBJECT, "subject", True


def _path(request: Mapping[str, Any]) -> str | None:
    uri = as_text(request.get("uri"))
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


# --- rejected entries ----------------------------------------------------------------------------


def _rejection(
    entry: Mapping[str, Any], index: int | None, errors: list[dict[str, str]], subject_header: str | None
) -> KongRejection:
    """What the event log shows of a refused entry: ids and times as far as readable, and an excerpt
    (billing fields; no headers, query strings or payloads), strings cleaned and shortened."""
    request = as_mapping(entry.get("request"))
    request_id = (as_text(request.get("id")) or "")[:MAX_ATTR_LEN]
    subject, _, _ = _subject(entry, request, subject_header)
    time_errors = ErrorList()
    time = _time_from_started_at(entry.get("started_at"), "started_at", time_errors) or None
    excerpt: dict[str, Any] = {
        "request": {k: request.get(k) for k in ("id", "method", "uri") if k in request},
        "response": {"status": as_mapping(entry.get("response")).get("status")},
        "started_at": entry.get("started_at"),
        "consumer": {
            k: v for k, v in as_mapping(entry.get("consumer")).items() if k in ("id", "username", "custom_id")
        },
    }
    ai = as_mapping(entry.get("ai"))
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
        excerpt=clean_tree(excerpt),
    )
