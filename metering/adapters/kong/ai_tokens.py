"""Kong's AI analytics → the `llm_tokens` events of one log entry (`token_events`).

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

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from core.errors import ErrorList
from metering.adapters.kong.values import as_mapping, as_text, exact_int, header_value

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
MAX_COUNT = 10**15  # no single request uses more tokens; larger values are corrupt


def _ai_blocks(entry: Mapping[str, Any]) -> tuple[str | None, list[tuple[str, Mapping[str, Any]]]]:
    """AI analytics blocks (with a `usage` or `meta` object): the primary one first, then by name.

    Kong 3.6's flat layout (`ai.usage`, `ai.meta`) is the block named FLAT_BLOCK."""
    ai = as_mapping(entry.get("ai"))
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


def token_events(
    entry: Mapping[str, Any], response: Mapping[str, Any], errors: ErrorList
) -> list[tuple[str, dict[str, Any]]]:
    primary, blocks = _ai_blocks(entry)
    status = exact_int(response.get("status"))
    out: list[tuple[str, dict[str, Any]]] = []
    for name, block in blocks:
        usage = as_mapping(block.get("usage"))
        meta = as_mapping(block.get("meta"))
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
        cache = as_mapping(block.get("cache"))
        cache_status = as_text(cache.get("cache_status"))
        common: dict[str, Any] = {
            "model": as_text(meta.get("response_model")) or as_text(meta.get("request_model")),
            "provider": as_text(meta.get("provider_name")),
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
        request_mode = as_text(meta.get("request_mode"))
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
    errors: ErrorList,
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
    mode = as_text(meta.get("request_mode"))
    if mode:
        return mode.lower() in STREAM_REQUEST_MODES
    content_type = header_value(as_mapping(response.get("headers")), "content-type") or ""
    return content_type.split(";", 1)[0].strip().lower() == SSE_CONTENT_TYPE


def _is_estimated(meta: Mapping[str, Any], usage: Mapping[str, Any], response: Mapping[str, Any]) -> bool:
    if not _is_streamed(meta, response):
        return False
    if usage.get("prompt_token") is not None or usage.get("completion_token") is not None:
        return True  # 3.7 adds a word-count estimate to every streamed prompt
    provider = (as_text(meta.get("provider_name")) or "").lower()
    if provider in STREAM_COUNTING_PROVIDERS:
        return False
    return not any(
        isinstance(usage.get(key), Mapping) and len(usage[key]) > 0 for key in PROVIDER_USAGE_DETAIL_KEYS
    )


def _count(value: Any, name: str, errors: ErrorList) -> int | None:
    if isinstance(value, str):
        errors.add(name, "must be a JSON number (a non-negative integer token count), not a string")
        return None
    number = exact_int(value)
    if number is None or number < 0 or number > MAX_COUNT:
        errors.add(name, "must be a non-negative integer token count")
        return None
    return number


def _cost(value: Any, name: str, errors: ErrorList) -> str | None:
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
