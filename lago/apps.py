from django.apps import AppConfig


class LagoConfig(AppConfig):
    """A Lago-compatible API (`/lago/api/v1/`) over our metering, catalog, billing and invoicing."""

    name = "lago"

    def ready(self) -> None:
        # wiring.py imports models, which exist only once the app registry is ready.
        from lago import wiring

        wiring.connect()
