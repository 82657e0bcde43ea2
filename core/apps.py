from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core: tenancy, keys, audit"

    def ready(self) -> None:
        # wiring.py imports models, which exist only once the app registry is ready.
        from core import wiring

        wiring.connect(self)
