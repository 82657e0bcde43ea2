from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        # Imported here, not above: they import models, which exist only once the app registry is ready.
        from billing import selectors
        from core import navigation
        from core.demo import DEMO_LOADERS
        from metering import hooks

        # Meter queries gain filterCustomerId / customerId through billing's subject mapping.
        hooks.set_customer_resolver(selectors.customer_subject_map)
        # When metering offers an ingest listener (see docs/billing.md), usage landing drops stale
        # snapshots and evaluates threshold rules right away.
        add_listener = getattr(hooks, "add_ingest_listener", None)
        if add_listener is not None:
            from billing.tasks import usage_landed_listener  # models too, as above

            add_listener(usage_landed_listener)
        navigation.register("Customers", "billing_console_customers", order=40)
        navigation.register("Subscriptions", "billing_console_subscriptions", order=45)
        from billing.demo import demo_load  # models too, as above

        if demo_load not in DEMO_LOADERS:
            DEMO_LOADERS.append(demo_load)
