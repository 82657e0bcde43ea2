"""Resolves the console's current organization from the session (with a switcher)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl, unquote

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

from core import limits
from core.errors import json_problem
from core.models import Membership

SESSION_KEY = "organization_id"


def resolve_console_membership(request: HttpRequest) -> Membership | None:
    user = request.user
    if not user.is_authenticated:
        return None
    wanted = request.session.get(SESSION_KEY)
    qs = Membership.objects.select_related("organization").filter(user=user)
    membership = qs.filter(organization_id=wanted).first() if wanted else None
    if membership is None:
        membership = qs.order_by("organization__name").first()
        if membership is not None:
            request.session[SESSION_KEY] = membership.organization_id
    return membership


class ConsoleOrganizationMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/console/"):
            membership = resolve_console_membership(request)
            request.membership = membership  # type: ignore[attr-defined]
            request.organization = membership.organization if membership else None  # type: ignore[attr-defined]
        return self.get_response(request)


def request_line_problem(request: HttpRequest) -> tuple[str, str] | None:
    """(field, reason) when the path or a query parameter holds a NUL character or is over-long
    (`core.limits`), else None. Checked before routing, so no view ever sees such a value."""
    path = request.path
    if "\x00" in path or "\x00" in unquote(request.META.get("PATH_INFO", "")):
        return "path", "must not contain a NUL character"
    if len(path) > limits.MAX_PATH:
        return "path", f"at most {limits.MAX_PATH} characters"
    query = request.META.get("QUERY_STRING", "")
    if query.count("&") >= limits.MAX_QUERY_PARAMS:
        return "query", f"at most {limits.MAX_QUERY_PARAMS} parameters"
    if query:
        for name, value in parse_qsl(query, keep_blank_values=True):
            problem = limits.text_problem(name, max_length=256) or limits.text_problem(value)
            if problem:
                return name.replace("\x00", "") or "query", problem
    return None


class RequestLimitsMiddleware:
    """400 for paths and query strings `core.limits` refuses (problem+json under /api/)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        found = request_line_problem(request)
        if found is not None:
            name, reason = found
            if request.path.startswith("/api/"):
                return json_problem(
                    400,
                    "Invalid request",
                    f"{name}: {reason}.",
                    code="validation-error",
                    invalid_params=[{"name": name, "reason": reason}],
                )
            return HttpResponseBadRequest(f"{name}: {reason}.", content_type="text/plain")
        return self.get_response(request)
