from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"

    def ready(self) -> None:
        # Imported once the app registry is ready: these modules import models.
        from core.demo import DEMO_LOADERS
        from core.models import Role
        from core.navigation import register
        from portal.demo import demo_load

        register(
            "Customer portal", "portal_console_settings", order=905, min_role=Role.ADMIN, section="settings"
        )

        if demo_load not in DEMO_LOADERS:
            DEMO_LOADERS.append(demo_load)
