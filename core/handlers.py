"""Django-level 404/500: problem+json under /api/, HTML elsewhere."""

from django.http import HttpRequest, HttpResponse
from django.views import defaults

from core.errors import json_problem


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith("/api/"):
        return json_problem(404, "Not found", f"No API route matches {request.path}.", code="not-found")
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return json_problem(
            500, "Internal server error", "An unexpected error occurred; it has been logged.", code="internal"
        )
    return defaults.server_error(request)
