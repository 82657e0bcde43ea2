from django.apps import AppConfig


class MeteringConfig(AppConfig):
    name = "metering"

    def ready(self) -> None:
        # Imported here, not above: they import models, which exist only once the app registry is ready.
        # The ClickHouse store registers itself with metering.store (which never imports it); its client
        # libraries are loaded only when a connection is made.
        import metering.clickhouse  # noqa: F401
        from core import demo
        from core.navigation import register
        from metering.demo import demo_load

        register("Meters", "metering_console_meters", order=10)
        register("Events", "metering_console_events", order=20)
        if demo_load not in demo.DEMO_LOADERS:
            demo.DEMO_LOADERS.append(demo_load)
