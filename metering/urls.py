"""Routes owned by this app (full paths: /api/... and /console/...). config/urls.py includes it."""

from django.urls import path

from core.routing import actions, collection
from metering import api, views

urlpatterns = [
    path("api/v1/events", api.EventsView.as_view(), name="metering_events"),
    path("api/v1/events/kong", api.KongEventsView.as_view(), name="metering_events_kong"),
    path("api/v3/openmeter/events", api.EventsV3View.as_view(), name="metering_events_v3"),
    *collection(
        "api/v1/meters", api.MeterListView, api.MeterDetailView, key="id_or_slug", name="metering_meter"
    ),
    *actions(
        "api/v1/meters/<str:id_or_slug>",
        "metering_meter",
        query=api.MeterQueryView,
        subjects=api.MeterSubjectsView,
    ),
    path(
        "api/v1/meters/<str:id_or_slug>/group-by/<str:key>/values",
        api.MeterGroupValuesView.as_view(),
        name="metering_meter_group_values",
    ),
    path("console/meters/", views.meter_list, name="metering_console_meters"),
    path("console/meters/new/", views.meter_edit, name="metering_console_meter_new"),
    path("console/meters/try-paths/", views.meter_paths_test, name="metering_console_meter_paths_test"),
    path("console/meters/<str:meter_id>/edit/", views.meter_edit, name="metering_console_meter_edit"),
    path(
        "console/meters/<str:meter_id>/archive/", views.meter_archive, name="metering_console_meter_archive"
    ),
    path("console/meters/<str:slug>/", views.meter_explore, name="metering_console_meter_explore"),
    path("console/events/", views.event_list, name="metering_console_events"),
]
