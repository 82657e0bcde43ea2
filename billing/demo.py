"""Demo data for billing (idempotent): the customer `acme` (subject `customer-1`) subscribed to catalog's
published `ai_pro` plan since the start of the previous month, with a few days of `llm_tokens` and
`api_request` events for its subject (the event types of metering's demo meters `llm_tokens` and
`api_requests`). Events have fixed ids per hour, so loading again the same day stores nothing new."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from django.utils import timezone

from billing import services, sources
from billing.models import Customer, Subscription
from core.errors import DomainError
from core.models import Organization
from metering.services import events_ingest

if TYPE_CHECKING:
    from metering.store import EventTuple

SUBJECT = "customer-1"
EVENT_SOURCE = "demo-billing"
USAGE_DAYS = 4
USAGE_EVERY_HOURS = 3


def _previous_month_start(org: Organization, now: datetime) -> datetime:
    local = now.astimezone(ZoneInfo(org.timezone or "UTC"))
    first = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    prev = (first - timedelta(days=1)).replace(day=1)
    return prev.astimezone(UTC)


def _usage_events(now: datetime) -> list[EventTuple]:
    """(source, id, type, subject, time, data): every USAGE_EVERY_HOURS hours over the last USAGE_DAYS days,
    anchored on today's UTC date so the ids are stable for the whole day."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=USAGE_DAYS - 1)
    out: list[EventTuple] = []
    for step in range(USAGE_DAYS * 24 // USAGE_EVERY_HOURS):
        t = start + timedelta(hours=step * USAGE_EVERY_HOURS)
        if t > now:
            break
        stamp = t.strftime("%Y%m%d%H")
        for kind, tokens in (("input", 2000 + (step * 397) % 3000), ("output", 500 + (step * 211) % 900)):
            data = {"tokens": tokens, "model": "gpt-4o", "type": kind}
            out.append((EVENT_SOURCE, f"acme-{stamp}-{kind}", "llm_tokens", SUBJECT, t, json.dumps(data)))
        for n in range(3):
            data = {"path": "/v1/chat/completions", "status": 200}
            out.append((EVENT_SOURCE, f"acme-{stamp}-req{n}", "api_request", SUBJECT, t, json.dumps(data)))
    return out


def demo_load(org: Organization) -> None:
    customer = Customer.objects.filter(organization=org, key="acme", deleted_at__isnull=True).first()
    if customer is None:
        customer = services.customer_create(
            organization=org,
            name="ACME Corp",
            key="acme",
            primary_email="billing@acme.test",
            currency=org.default_currency,
            subject_keys=[SUBJECT],
            actor="demo_load",
        )
    now = timezone.now()
    if not Subscription.objects.filter(organization=org, customer=customer).exists():
        try:
            sources.plan_spec_get(organization=org, key="ai_pro")
        except (DomainError, LookupError):
            pass  # catalog's demo plan is missing: the customer stays without a subscription
        else:
            start = _previous_month_start(org, now)
            services.subscription_create(
                organization=org,
                customer=customer,
                plan_key="ai_pro",
                active_from=start,
                billing_anchor=start,
                actor="demo_load",
            )
    events_ingest(organization=org, events=_usage_events(now))
