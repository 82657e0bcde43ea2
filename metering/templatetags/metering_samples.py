"""Template tags of the metering app for pages of other apps (the console home's "first event" card).

Loaded by name from templates, so `core` renders a metering sample without importing metering."""

from __future__ import annotations

import json
import re

from django import template

from core.models import Organization
from metering.models import Meter
from metering.selectors import meter_list

register = template.Library()

_SIMPLE_PATH = re.compile(r"^\$((?:\.[A-Za-z_][A-Za-z0-9_]*)+)$")


def _put(data: dict, path: str, value: object) -> None:
    """Sets `value` at a `$.a.b` path inside `data`; other path shapes are left out of the sample."""
    match = _SIMPLE_PATH.match(path)
    if not match:
        return
    keys = match.group(1)[1:].split(".")
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            return
    node.setdefault(keys[-1], value)


def sample_event(meter: Meter | None) -> dict:
    """A CloudEvent the meter counts: its event type, its value at its value path, a value per group-by."""
    if meter is None:
        return {
            "specversion": "1.0",
            "id": "evt-1",
            "source": "my-app",
            "type": "request",
            "subject": "customer-1",
        }
    data: dict = {}
    if meter.value_property:
        _put(data, meter.value_property, 100)
    for key, path in sorted((meter.group_by or {}).items()):
        _put(data, path, f"example-{key}")
    event: dict[str, object] = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "my-app",
        "type": meter.event_type,
        "subject": "customer-1",
    }
    if data:
        event["data"] = data
    return event


@register.simple_tag
def first_event_sample(organization: Organization) -> str:
    """The sample event as compact JSON, for the organization's first live meter (one query)."""
    meter = meter_list(organization=organization).order_by("created_at", "id").first()
    return json.dumps(sample_event(meter), separators=(",", ":"))
