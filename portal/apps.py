from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"

    def ready(self) -> None:
        # Imported once the app registry is ready: these modules import models.
        from core import demo, models, navigation
        from portal.demo import demo_load

        navigation.register(
            "Customer portal",
            "portal_console_settings",
            order=905,
            min_role=models.Role.ADMIN,
            section="settings",
        )

        if demo_load not in demo.DEMO_LOADERS:
            demo.DEMO_LOADERS.append(demo_load)
