"""Helpers for the apps' URL tables: the routes a resource always has, written once.

    *collection("api/v1/plans", api.PlanListCreateView, api.PlanDetailView, key="plan_id", name="catalog_plan")
    # api/v1/plans                   -> catalog_plan_list
    # api/v1/plans/<str:plan_id>     -> catalog_plan_detail
    *actions("api/v1/plans/<str:plan_id>", "catalog_plan", publish=api.PlanPublishView)
    # api/v1/plans/<str:plan_id>/publish -> catalog_plan_publish

A view may be a class-based view (its `as_view()` is routed) or a function. Each helper returns plain
`path()` entries in the order written, so a table reads top to bottom as Django matches it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.urls import URLPattern, path

View = Callable[..., Any] | type


def _callable(view: View) -> Callable[..., Any]:
    return view.as_view() if isinstance(view, type) else view  # type: ignore[attr-defined]


def collection(
    prefix: str,
    list_view: View,
    detail_view: View,
    *,
    key: str,
    name: str = "",
    names: tuple[str, str] | None = None,
) -> list[URLPattern]:
    """`prefix` routed to `list_view` and `prefix/<str:key>` to `detail_view`, named `{name}_list` and
    `{name}_detail` (or the two `names`)."""
    list_name, detail_name = names or (f"{name}_list", f"{name}_detail")
    return [
        path(prefix, _callable(list_view), name=list_name),
        path(f"{prefix}/<str:{key}>", _callable(detail_view), name=detail_name),
    ]


def actions(
    prefix: str, name: str, *, slash: bool = False, kwargs: dict[str, Any] | None = None, **views: View
) -> list[URLPattern]:
    """One route a view: `prefix/<action>` (with a trailing slash when `slash`), named `{name}_<action>`.
    An underscore in the action's keyword is a hyphen in the path (`unschedule_cancelation=` routes
    `…/unschedule-cancelation`). `kwargs` are passed to every view (as `path()`'s extra kwargs)."""
    end = "/" if slash else ""
    return [
        path(f"{prefix}/{action.replace('_', '-')}{end}", _callable(view), kwargs, name=f"{name}_{action}")
        for action, view in views.items()
    ]
