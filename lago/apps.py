from django.apps import AppConfig


class LagoConfig(AppConfig):
    """A Lago-compatible API (`/lago/api/v1/`) over our metering, catalog, billing and invoicing."""

    name = "lago"
