from django.apps import AppConfig

from metering import hooks


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        # Imported here, not above: they import models, which exist only once the app registry is ready.
        from billing import selectors
        from billing.demo import demo_load
        from billing.tasks import usage_landed_listener
        from core import navigation
        from core.demo import DEMO_LOADERS

        # Meter queries gain filterCustomerId / customerId through billing's subject mapping.
        hooks.set_customer_resolver(selectors.customer_subject_map)
        # Usage landing drops stale snapshots and evaluates threshold rules right away (docs/billing.md).
        hooks.add_ingest_listener(usage_landed_listener)
        navigation.register("Customers", "billing_console_customers", order=40)
        navigation.register("Subscriptions", "billing_console_subscriptions", order=45)
        if demo_load not in DEMO_LOADERS:
            DEMO_LOADERS.append(demo_load)
