"""Console pages for metering: meters (list with last-24h usage, create/edit) and the event log."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from core.console import console_view


@console_view()
def meter_list(request: HttpRequest) -> HttpResponse:
    return HttpResponse("todo")


@console_view()
def meter_edit(request: HttpRequest, meter_id: str | None = None) -> HttpResponse:
    return HttpResponse("todo")


@console_view()
def event_list(request: HttpRequest) -> HttpResponse:
    return HttpResponse("todo")
