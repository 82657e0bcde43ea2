from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core: tenancy, keys, audit"

    def ready(self) -> None:
        from core import navigation
        from core.models import Role

        navigation.register("Overview", "console_home", order=0)
        navigation.register(
            "Organization", "console_org_settings", order=890, min_role=Role.ADMIN, section="settings"
        )
        navigation.register(
            "API keys", "console_api_keys", order=900, min_role=Role.ADMIN, section="settings"
        )
        navigation.register("Members", "console_members", order=910, min_role=Role.ADMIN, section="settings")
        navigation.register("Audit log", "console_audit", order=920, min_role=Role.ADMIN, section="settings")
