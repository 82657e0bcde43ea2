from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core: tenancy, keys, audit"

    def ready(self) -> None:
        # Imported here, not above: they import models, which exist only once the app registry is ready.
        from core import models, navigation, rls

        # After every migrate (all apps' tables exist by then): the row-level security wall (core/rls.py).
        post_migrate.connect(rls.post_migrate, sender=self, dispatch_uid="core.rls.install")

        navigation.register("Overview", "console_home", order=0)
        admin_settings = {"min_role": models.Role.ADMIN, "section": "settings"}
        navigation.register("Organization", "console_org_settings", order=890, **admin_settings)
        navigation.register("API keys", "console_api_keys", order=900, **admin_settings)
        navigation.register("Members", "console_members", order=910, **admin_settings)
        navigation.register("Audit log", "console_audit", order=920, **admin_settings)
