"""Routes owned by analytics (full paths, the same the dashboards had under the portal app).
config/urls.py includes this module."""

from django.urls import path

from analytics import views

urlpatterns = [
    path("console/dashboards/", views.revenue, name="analytics_dashboard_revenue"),
    path("console/dashboards/usage/", views.usage, name="analytics_dashboard_usage"),
    path(
        "console/dashboards/usage/<str:section>/",
        views.usage_section,
        name="analytics_dashboard_usage_section",
    ),
    path("console/simulations/", views.simulation_list, name="analytics_simulation_list"),
    path("console/simulations/new", views.simulation_new, name="analytics_simulation_new"),
    path("console/simulations/<str:run_id>/", views.simulation_detail, name="analytics_simulation_detail"),
]
