"""Helpers for console (HTML) views: login, organization and role checks, friendly domain errors."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from core import rls
from core.errors import DomainError, NotFound
from core.models import ROLE_RANK, Role


def console_view(min_role: str = Role.VIEWER) -> Callable:
    """Require a logged-in member of the current organization with at least `min_role`; the page runs in
    that organization's tenant scope (core/rls.py), and a `NotFound` it lets out (a missing row, or another
    organization's) is its 404."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            membership = getattr(request, "membership", None)
            if membership is None:
                return render(request, "console/no_organization.html", status=403)
            with rls.tenant_scope(membership.organization_id, user_id=request.user.pk):
                if ROLE_RANK[Role(membership.role)] < ROLE_RANK[Role(min_role)]:
                    return render(
                        request, "console/forbidden.html", {"needed": Role(min_role).label}, status=403
                    )
                try:
                    return view(request, *args, **kwargs)
                except NotFound:
                    raise Http404 from None

        return wrapper

    return decorator


def flash_domain_error(request: HttpRequest, exc: DomainError) -> None:
    messages.error(request, exc.detail)
