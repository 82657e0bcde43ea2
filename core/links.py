"""Absolute links the server hands out (portal magic links, the Stripe webhook URL, invitation e-mails).

`PUBLIC_BASE_URL`, when set, is the address users reach the service at (behind a proxy, on another host or
port) and wins. Otherwise a link is built from the request being answered (its scheme, host and port, as
validated by ALLOWED_HOSTS), and only work done outside a request (a Celery task, a management command)
falls back to this host on `PORT`, the port `manage.py runstack` serves.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.http import HttpRequest


def public_base_url(request: HttpRequest | None = None) -> str:
    """The base URL without a trailing slash."""
    configured = str(getattr(settings, "PUBLIC_BASE_URL", "") or "").rstrip("/")
    if configured:
        return configured
    if request is not None:
        return request.build_absolute_uri("/").rstrip("/")
    return f"http://127.0.0.1:{os.environ.get('PORT') or '8000'}"


def absolute_url(path: str, *, request: HttpRequest | None = None) -> str:
    """`path` (starting with /) under the public base URL."""
    return public_base_url(request) + path
