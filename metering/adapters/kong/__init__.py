"""Kong `http-log` JSON → CloudEvents 1.0 dicts, entry by entry. Pure: no database, no settings, no I/O.

- `http_log.py`: the body (`kong_parse`), the batch entry by entry (`kong_map`: events or a rejection per
  entry), the `api_request` event of each entry and what the event log keeps of a refused one;
- `ai_tokens.py`: the `llm_tokens` events read from Kong's AI analytics, by Kong version;
- `values.py`: the small coercions both use (lenient for descriptive fields, exact for counted ones).
"""

from metering.adapters.kong.http_log import (
    REJECTED_REASON,
    TYPE_API_REQUEST,
    TYPE_LLM_TOKENS,
    UNKNOWN_SUBJECT,
    KongBatch,
    KongEntry,
    KongRejection,
    kong_map,
    kong_parse,
)

__all__ = [
    "REJECTED_REASON",
    "TYPE_API_REQUEST",
    "TYPE_LLM_TOKENS",
    "UNKNOWN_SUBJECT",
    "KongBatch",
    "KongEntry",
    "KongRejection",
    "kong_map",
    "kong_parse",
]
