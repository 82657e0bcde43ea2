"""Routes owned by analytics (full paths, the same the dashboards had under the portal app).
config/urls.py includes this module."""

from analytics import views
from core.routing import Routes

CONSOLE = Routes("console", "analytics")
SIMULATIONS = CONSOLE.under("/simulations", "analytics_simulation")

urlpatterns = [
    CONSOLE.path("/dashboards/", views.revenue, "dashboard_revenue"),
    CONSOLE.path("/dashboards/usage/", views.usage, "dashboard_usage"),
    CONSOLE.path("/dashboards/usage/<str:section>/", views.usage_section, "dashboard_usage_section"),
    *SIMULATIONS.collection(views.simulation_list, views.simulation_detail, key="run_id", slash=True),
    SIMULATIONS.path("/new", views.simulation_new, "new"),  # no trailing slash, so never a run's id
]
