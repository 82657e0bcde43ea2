"""What metering plugs into the other apps, connected once the app registry is ready (MeteringConfig.ready)."""

from __future__ import annotations

# The ClickHouse store registers itself with metering.store (which never imports it); its client libraries
# are loaded only when a connection is made.
import metering.clickhouse  # noqa: F401
from core import demo
from core.navigation import register
from metering.demo import demo_load


def connect() -> None:
    register("Meters", "metering_console_meters", order=10)
    register("Events", "metering_console_events", order=20)
    if demo_load not in demo.DEMO_LOADERS:
        demo.DEMO_LOADERS.append(demo_load)
