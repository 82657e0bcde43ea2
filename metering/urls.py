"""Routes owned by this app (full paths: /api/... and /console/...). config/urls.py includes it."""

from core.routing import Routes
from metering import api, views

API = Routes("api", "metering")
METERS = API.under("/v1/meters", "metering_meter")
METER = METERS.item("id_or_slug")
CONSOLE = Routes("console", "metering_console")

urlpatterns = [
    API.path("/v1/events", api.EventsView, "events"),
    API.path("/v1/events/kong", api.KongEventsView, "events_kong"),
    API.path("/v3/openmeter/events", api.EventsV3View, "events_v3"),
    *METERS.collection(api.MeterListView, api.MeterDetailView, key="id_or_slug"),
    *METER.actions(query=api.MeterQueryView, subjects=api.MeterSubjectsView),
    METER.path("/group-by/<str:key>/values", api.MeterGroupValuesView, "group_values"),
    CONSOLE.path("/meters/", views.meter_list, "meters"),
    CONSOLE.path("/meters/new/", views.meter_edit, "meter_new"),
    CONSOLE.path("/meters/try-paths/", views.meter_paths_test, "meter_paths_test"),
    CONSOLE.path("/meters/<str:meter_id>/edit/", views.meter_edit, "meter_edit"),
    CONSOLE.path("/meters/<str:meter_id>/archive/", views.meter_archive, "meter_archive"),
    CONSOLE.path("/meters/<str:slug>/", views.meter_explore, "meter_explore"),
    CONSOLE.path("/events/", views.event_list, "events"),
]
