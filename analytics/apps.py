from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"

    def ready(self) -> None:
        from core.navigation import register  # app registry ready: navigation is registered here, once

        register("Dashboards", "analytics_dashboard_revenue", order=5)
        register("Simulations", "analytics_simulation_list", order=6, min_role="pricing_editor")
