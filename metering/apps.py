from django.apps import AppConfig


class MeteringConfig(AppConfig):
    name = "metering"

    def ready(self) -> None:
        # wiring.py imports models, which exist only once the app registry is ready.
        from metering import wiring

        wiring.connect()
