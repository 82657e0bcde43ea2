from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"

    def ready(self) -> None:
        # wiring.py imports models, which exist only once the app registry is ready.
        from catalog import wiring

        wiring.connect()
