from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"

    def ready(self) -> None:
        # Imported once the app registry is ready: both modules import models.
        from core.demo import DEMO_LOADERS
        from portal.demo import demo_load

        if demo_load not in DEMO_LOADERS:
            DEMO_LOADERS.append(demo_load)
