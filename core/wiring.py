"""What core plugs into Django and the console, connected once the app registry is ready (CoreConfig.ready)."""

from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate

from core import models, navigation, rls


def connect(config: AppConfig) -> None:
    # After every migrate (all apps' tables exist by then): the row-level security wall (core/rls.py).
    post_migrate.connect(rls.post_migrate, sender=config, dispatch_uid="core.rls.install")

    navigation.register("Overview", "console_home", order=0)
    admin_settings = {"min_role": models.Role.ADMIN, "section": "settings"}
    navigation.register("Organization", "console_org_settings", order=890, **admin_settings)
    navigation.register("API keys", "console_api_keys", order=900, **admin_settings)
    navigation.register("Members", "console_members", order=910, **admin_settings)
    navigation.register("Audit log", "console_audit", order=920, **admin_settings)
