"""What the portal plugs into the other apps, connected once the app registry is ready (PortalConfig.ready)."""

from __future__ import annotations

from core import demo, models, navigation
from portal.demo import demo_load


def connect() -> None:
    navigation.register(
        "Customer portal",
        "portal_console_settings",
        order=905,
        min_role=models.Role.ADMIN,
        section="settings",
    )

    if demo_load not in demo.DEMO_LOADERS:
        demo.DEMO_LOADERS.append(demo_load)
