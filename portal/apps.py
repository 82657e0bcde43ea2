from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"

    def ready(self) -> None:
        # wiring.py imports models, which exist only once the app registry is ready.
        from portal import wiring

        wiring.connect()
