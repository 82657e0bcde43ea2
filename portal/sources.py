"""The portal's one door to the other apps: every read of metering, catalog, billing and invoicing data
goes through these thin adapters over those apps' selectors.

Keeping the imports here (lazy, inside functions) means the portal has a single place that knows the
other apps' interfaces, and that a section of the portal degrades to "not available yet" when a
dependency is missing instead of breaking the page.
"""

from __future__ import annotations

import importlib
from typing import Any

from core.errors import NotFound
from core.models import Organization


def _selector(module: str, name: str) -> Any | None:
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    return getattr(mod, name, None)


# --- billing: customers ----------------------------------------------------------------------------
def customer_get(*, organization: Organization, id_or_key: str):
    from billing.selectors import customer_get as _get

    return _get(organization=organization, id_or_key=id_or_key)


def customer_by_id(*, organization: Organization, customer_id: str):
    """The live customer with exactly this id in this organization, or None (never another org's)."""
    try:
        customer = customer_get(organization=organization, id_or_key=customer_id)
    except NotFound:
        return None
    return customer if customer.id == customer_id else None


def customer_id_for_subject(*, organization: Organization, subject_key: str) -> str | None:
    from billing.selectors import customers_for_subjects

    return customers_for_subjects(organization=organization, subject_keys=[subject_key]).get(subject_key)


def customer_list(*, organization: Organization):
    from billing.selectors import customer_list as _list

    return _list(organization=organization)


# --- metering --------------------------------------------------------------------------------------
def meter_list(*, organization: Organization) -> list:
    fn = _selector("metering.selectors", "meter_list")
    if fn is not None:
        return list(fn(organization=organization))
    try:
        from metering.models import Meter
    except ImportError:
        return []
    return list(Meter.objects.filter(organization=organization, deleted_at__isnull=True).order_by("slug"))


def unknown_meter_slugs(*, organization: Organization, slugs: list[str]) -> list[str]:
    if not slugs:
        return []
    known = {m.slug for m in meter_list(organization=organization)}
    return [s for s in slugs if s not in known]


def meter_get(*, organization: Organization, slug: str):
    for meter in meter_list(organization=organization):
        if meter.slug == slug or meter.id == slug:
            return meter
    return None


def meter_query(
    *,
    organization: Organization,
    meter,
    start,
    end,
    window_size: str | None,
    window_time_zone: str = "UTC",
    subjects: list[str],
    group_by: list[str] | None = None,
    force_empty: bool = False,
) -> dict:
    """The meter query's JSON answer ({from, to, windowSize, data: [...]}) restricted to `subjects`.

    `force_empty` (a scope with no subjects) answers no rows rather than "all subjects"."""
    body: dict[str, Any] = {
        "from": start.isoformat().replace("+00:00", "Z") if start else None,
        "to": end.isoformat().replace("+00:00", "Z") if end else None,
        "windowSize": window_size,
        "data": [],
    }
    if force_empty or not subjects:
        return body
    fn = _selector("metering.selectors", "meter_query")
    if fn is None:
        return body
    return _metering_query(
        fn,
        organization=organization,
        meter=meter,
        start=start,
        end=end,
        window_size=window_size,
        window_time_zone=window_time_zone,
        subjects=subjects,
        group_by=group_by or [],
    )


def _metering_query(fn, **kwargs) -> dict:  # adapted to metering.selectors.meter_query once it lands
    return fn(**kwargs)
