from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        # wiring.py imports models, which exist only once the app registry is ready.
        from billing import wiring

        wiring.connect()
