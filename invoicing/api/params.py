"""Query parameters the invoicing API's lists share."""

from __future__ import annotations

from collections.abc import Iterable

from rest_framework.request import Request

from core.errors import ValidationFailed


def status_filter(
    request: Request, allowed: Iterable[str], names: tuple[str, ...] = ("status",)
) -> list[str]:
    """The statuses asked for (each of `names`, comma-separated or repeated); an unknown one is a 400
    naming the first parameter."""
    wanted = [s for name in names for raw in request.query_params.getlist(name) for s in raw.split(",") if s]
    bad = sorted(set(wanted) - set(allowed))
    if bad:
        raise ValidationFailed(f"Unknown status: {', '.join(bad)}.", field=names[0])
    return wanted
