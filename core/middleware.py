"""Resolves the console's current organization from the session (with a switcher)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

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
