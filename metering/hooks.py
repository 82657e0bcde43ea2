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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
