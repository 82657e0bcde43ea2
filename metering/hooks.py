"""Extension points other apps plug into, so metering never imports them.

Customer mapping (owned by billing): metering's usage queries accept `customers`, a mapping
`{customer_id: [subject, ...]}`. The API needs to build it from `filterCustomerId`, and to label
rows with `customerId`; it asks the registered resolver:

    from metering import hooks
    hooks.set_customer_resolver(my_resolver)   # e.g. in billing's AppConfig.ready()

    def my_resolver(*, organization, customer_ids: list[str] | None, subjects: list[str] | None
                    ) -> dict[str, list[str]]:
        '''{customer_id: [subject keys]} for the given customer ids (or ids/keys),
        or, when customer_ids is None, for the customers owning `subjects`.'''

Without a resolver, `filterCustomerId` answers 400 and rows carry `customerId: null`.

Ingest listeners (billing registers one): called once per accepted ingest request that stored at least
one new event, after the ingest transaction commits (`transaction.on_commit`; immediately in autocommit):

    hooks.add_ingest_listener(my_listener)

    def my_listener(*, organization, subjects: list[str], earliest_event_time: datetime,
                    event_types: list[str], **_) -> None:
        '''organization: the Organization; subjects / event_types: the distinct values of the request
        (sorted); earliest_event_time: the smallest event `time` of the request.'''

Listeners run in the request thread, so they must be cheap (enqueue a Celery task, do nothing inline).
An exception in a listener is logged (`metering.hooks`) and swallowed: it never fails or undoes ingest.
Accept `**_` so that metering can add keyword arguments later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

logger = logging.getLogger(__name__)

CustomerResolver = Callable[..., dict[str, list[str]]]
_customer_resolver: CustomerResolver | None = None


def set_customer_resolver(fn: CustomerResolver | None) -> None:
    global _customer_resolver
    _customer_resolver = fn


def customer_resolver() -> CustomerResolver | None:
    return _customer_resolver


def resolve_customers(
    *, organization: Any, customer_ids: list[str] | None = None, subjects: list[str] | None = None
) -> dict[str, list[str]] | None:
    if _customer_resolver is None:
        return None
    return _customer_resolver(organization=organization, customer_ids=customer_ids, subjects=subjects)


IngestListener = Callable[..., Any]
_ingest_listeners: list[IngestListener] = []


def add_ingest_listener(fn: IngestListener) -> None:
    """Register `fn` (idempotent: the same function is registered once)."""
    if fn not in _ingest_listeners:
        _ingest_listeners.append(fn)


def remove_ingest_listener(fn: IngestListener) -> None:
    if fn in _ingest_listeners:
        _ingest_listeners.remove(fn)


def ingest_listeners() -> list[IngestListener]:
    return list(_ingest_listeners)


def ingest_landed(
    *,
    organization: Any,
    subjects: Iterable[str],
    earliest_event_time: datetime,
    event_types: Iterable[str],
) -> None:
    """Call every ingest listener; exceptions are logged and swallowed (ingest never fails here)."""
    subject_list, type_list = sorted(set(subjects)), sorted(set(event_types))
    for fn in list(_ingest_listeners):
        try:
            fn(
                organization=organization,
                subjects=subject_list,
                earliest_event_time=earliest_event_time,
                event_types=type_list,
            )
        except Exception:
            logger.exception("ingest listener %r failed (ingest is not affected)", fn)
