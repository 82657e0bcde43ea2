"""Demo content for metering: two meters and a few days of events. Idempotent (meters are looked up
by slug; events have fixed ids, so the database drops them the second time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone

from core.models import Organization
from metering import services
from metering.models import Meter
from metering.store import EventTuple

MODELS = ("gpt-4o", "gpt-4o-mini")


# each meter as `services.meter_create`'s fields
METERS: list[dict[str, Any]] = [
    {
        "slug": "llm_tokens",
        "name": "LLM tokens",
        "event_type": "llm_tokens",
        "aggregation": "SUM",
        "value_property": "$.tokens",
        "group_by": {"model": "$.model", "type": "$.type"},
    },
    {"slug": "api_requests", "name": "API requests", "event_type": "api_request", "aggregation": "COUNT"},
]


def demo_load(org: Organization) -> None:
    live = Meter.objects.filter(organization=org, deleted_at__isnull=True)
    for fields in METERS:
        if not live.filter(slug=fields["slug"]).exists():
            services.meter_create(organization=org, actor="demo_load", **fields)
    # 3 days of hourly usage for two subjects, anchored to today's date so the ids stay stable all day
    today = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=2)
    events: list[EventTuple] = []
    for h in range(72):
        t = start + timedelta(hours=h)
        if t > timezone.now():
            break
        for n, subject in enumerate(("customer-1", "customer-2")):
            model = MODELS[(h + n) % 2]
            stamp = t.strftime("%Y%m%d%H")
            events.append(
                (
                    "demo",
                    f"{subject}-{stamp}-in",
                    "llm_tokens",
                    subject,
                    t,
                    f'{{"tokens": {100 + (h * 37 + n * 11) % 400}, "model": "{model}", "type": "input"}}',
                )
            )
            events.append(
                (
                    "demo",
                    f"{subject}-{stamp}-out",
                    "llm_tokens",
                    subject,
                    t,
                    f'{{"tokens": {40 + (h * 13 + n * 7) % 200}, "model": "{model}", "type": "output"}}',
                )
            )
            events.append(
                (
                    "demo",
                    f"{subject}-{stamp}-req",
                    "api_request",
                    subject,
                    t,
                    '{"method": "POST", "path": "/v1/chat/completions", "status": 200}',
                )
            )
    services.events_ingest(organization=org, events=events, received_at=datetime.now(UTC))
