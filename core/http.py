"""Typed request for console views: django-htmx details plus the organization the middleware resolved."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest

if TYPE_CHECKING:
    from django_htmx.middleware import HtmxDetails

    from core.models import Membership, Organization


class ConsoleRequest(HttpRequest):
    htmx: HtmxDetails
    organization: Organization
    membership: Membership
