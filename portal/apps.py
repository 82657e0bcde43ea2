from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"

    def ready(self) -> None:
        from core.navigation import register

        register("Dashboards", "portal_dashboard_revenue", order=5)
        register("Simulations", "portal_simulation_list", order=6, min_role="pricing_editor")

        from core.demo import DEMO_LOADERS
        from portal.demo import demo_load

        if demo_load not in DEMO_LOADERS:
            DEMO_LOADERS.append(demo_load)
