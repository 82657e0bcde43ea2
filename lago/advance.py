"""Lago charges paid in advance: billed as their events arrive.

After metering stores new events (its ingest listeners), the events' subjects (Lago subscriptions) whose
live plan version has a charge with `pay_in_advance` get an invoice at once for those charges' usage not
billed yet (`invoicing.advance.invoice_usage_in_advance`): the increment the new events add to the
period's running total. A resent event is stored once, and a second call bills nothing (the ledger); the
period invoice bills only what no such invoice has."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from billing.models import CustomerSubject, Subscription
from catalog import selectors as catalog_selectors
from catalog.models import PlanVersion
from core.enqueue import enqueue
from core.models import Organization
from invoicing.advance import invoice_usage_in_advance
from invoicing.models import Invoice
from lago import filters, plans

CACHE_SECONDS = 60  # how long a process remembers which event types an organization bills in advance
TASK = "lago.tasks.usage_in_advance"


def _cache_key(organization_id: str) -> str:
    return f"lago:in-advance:{organization_id}"


def advance_codes(organization_id: str) -> frozenset[str]:
    """The metric codes (event types) of the charges paid in advance in any version of the organization's
    plans (one query, then cached for `CACHE_SECONDS`)."""
    codes = cache.get(_cache_key(organization_id))
    if codes is None:
        versions = PlanVersion.objects.filter(
            organization_id=organization_id, phases__icontains="lagoPayInAdvance"
        ).values_list("phases", flat=True)
        codes = frozenset(
            filters.metric_of(card)
            for phases in versions
            for phase in phases
            for card in phase.get("rateCards", [])
            if plans.in_advance(card)
        )
        cache.set(_cache_key(organization_id), codes, CACHE_SECONDS)
    return codes


def advance_forget(organization: Organization) -> None:
    """After a plan is made or changed (this process sees it at once, others within `CACHE_SECONDS`)."""
    cache.delete(_cache_key(organization.id))


def ingest_listener(*, organization: Any, subjects: list[str], event_types: list[str], **_: object) -> None:
    """Metering's ingest listener: queue the billing of the subjects' charges paid in advance, only when
    the new events are of a type one of them prices (other ingests cost a cached lookup)."""
    if set(event_types) & advance_codes(organization.id):
        enqueue(TASK, organization.id, sorted(subjects))


def usage_in_advance_bill(
    *, organization: Organization, subjects: list[str], now: datetime | None = None
) -> list[Invoice]:
    """Invoice now the usage not billed yet of the charges paid in advance of these subjects' live
    subscriptions."""
    now = now or timezone.now()
    customer_ids = set(
        CustomerSubject.objects.filter(organization=organization, subject_key__in=subjects).values_list(
            "customer_id", flat=True
        )
    )
    subscriptions = (
        Subscription.objects.filter(
            organization=organization, customer_id__in=customer_ids, active_from__lte=now
        )
        .filter(Q(active_to__isnull=True) | Q(active_to__gt=now))
        .select_related("customer")
    )
    out: list[Invoice] = []
    advance_keys: dict[tuple[str, int], set[str]] = {}  # per plan version: read once for all its subscribers
    for sub in subscriptions:
        plan = (sub.plan_key, sub.plan_version)
        if plan not in advance_keys:
            version = catalog_selectors.plan_version_get(
                organization=organization, plan_key=sub.plan_key, version=sub.plan_version
            )
            advance_keys[plan] = {
                card["key"]
                for phase in version.phases
                for card in phase.get("rateCards", [])
                if plans.in_advance(card)
            }
        cards = {(sub.id, key) for key in advance_keys[plan]}
        if cards:
            out += invoice_usage_in_advance(
                organization=organization, customer=sub.customer, cards=cards, now=now
            )
    return out
