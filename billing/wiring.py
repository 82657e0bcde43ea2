"""What billing plugs into the other apps, connected once the app registry is ready (BillingConfig.ready)."""

from __future__ import annotations

from billing import selectors
from billing.demo import demo_load
from billing.tasks import usage_landed_listener
from core import navigation
from core.demo import DEMO_LOADERS
from metering import hooks


def connect() -> None:
    # Meter queries gain filterCustomerId / customerId through billing's subject mapping.
    hooks.set_customer_resolver(selectors.customer_subject_map)
    # Usage landing drops stale snapshots and evaluates threshold rules right away (docs/billing.md).
    hooks.add_ingest_listener(usage_landed_listener)
    navigation.register("Customers", "billing_console_customers", order=40)
    navigation.register("Subscriptions", "billing_console_subscriptions", order=45)
    if demo_load not in DEMO_LOADERS:
        DEMO_LOADERS.append(demo_load)
