"""The API's JSON parser, held to `core.limits` (DEFAULT_PARSER_CLASSES in config/settings.py)."""

from __future__ import annotations

import json

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from core import limits
from core.errors import PayloadTooLarge, ValidationFailed


class LimitedJSONParser(JSONParser):
    """DRF's JSON parser held to `core.limits`: a body above MAX_BODY_BYTES is 413; nesting deeper than
    MAX_JSON_DEPTH is refused on the bytes (before a recursive parser could overflow), and NUL characters,
    over-long strings, non-finite or out-of-range numbers are refused by field path (`metadata.note`), all
    as 400 problem+json. (Ingest reads its own body, with its own limits: metering/ingest.py.)"""

    def parse(self, stream, media_type=None, parser_context=None):  # type: ignore[no-untyped-def]
        raw = stream.read(limits.MAX_BODY_BYTES + 1) if stream is not None else b""
        if len(raw) > limits.MAX_BODY_BYTES:
            raise PayloadTooLarge(
                f"The body exceeds {limits.MAX_BODY_BYTES} bytes.", extra={"limit": limits.MAX_BODY_BYTES}
            )
        if limits.json_depth_exceeds(raw):
            raise ValidationFailed(
                f"The body nests more than {limits.MAX_JSON_DEPTH} levels deep.", field="body"
            )
        try:
            data = json.loads(raw or b"null", parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        limits.check_json(data)
        return data


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")
