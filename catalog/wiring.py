"""What the catalog plugs into the other apps, connected once the app registry is ready (CatalogConfig.ready)."""

from __future__ import annotations

from catalog.demo import demo_load
from core import navigation
from core.demo import DEMO_LOADERS


def connect() -> None:
    navigation.register("Features", "catalog_console_features", order=25)
    navigation.register("Plans", "catalog_console_plans", order=30)
    navigation.register("Add-ons", "catalog_console_addons", order=32)
    if demo_load not in DEMO_LOADERS:
        DEMO_LOADERS.append(demo_load)
