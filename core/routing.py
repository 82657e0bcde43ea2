"""The apps' URL tables: a `Routes` holds a path prefix and a URL-name prefix that neighbouring routes
share, so each route is one line saying only what is its own (the rest of its path, its view, the rest of
its name), and the routes a resource always has come from one call.

    PORTAL = Routes("portal", "portal")
    PORTAL.path("/", views.home, "home")                       # portal/                  -> portal_home
    PORTAL.path("/usage/<str:slug>/", views.usage, "usage")    # portal/usage/<str:slug>/ -> portal_usage

    PLANS = Routes("api/v1/plans", "catalog_plan")
    *PLANS.collection(api.PlanListCreateView, api.PlanDetailView, key="plan_id")
    # api/v1/plans                       -> catalog_plan_list
    # api/v1/plans/<str:plan_id>         -> catalog_plan_detail
    *PLANS.item("plan_id").actions(publish=api.PlanPublishView, archive=api.PlanArchiveView)
    # api/v1/plans/<str:plan_id>/publish -> catalog_plan_publish, …/archive -> catalog_plan_archive
    PHASES = PLANS.item("plan_id").under("/phases", "catalog_phase")
    # routes under api/v1/plans/<str:plan_id>/phases, named catalog_phase_*

Each URL name is written whole once, where its `Routes` is declared, so searching for the prefix of a
name finds its table. A view may be a class-based view (its `as_view()` is routed) or a function. Every
method returns plain `path()` entries in the order written, so a table reads top to bottom as Django
matches it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern
from django.urls import path as django_path

View = Callable[..., Any] | type


def _callable(view: View) -> Callable[..., Any]:
    return view.as_view() if isinstance(view, type) else view  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Routes:
    """Routes under one path `prefix` (no trailing slash; each route is appended as written, so it starts
    with "/" or is "") whose URL names are `{name}_<suffix>`."""

    prefix: str
    name: str

    def path(self, route: str, view: View, name: str, kwargs: dict[str, Any] | None = None) -> URLPattern:
        """`prefix + route` routed to `view`, named `{self.name}_{name}` (or `self.name` when `name` is "");
        `kwargs` are `path()`'s extra kwargs (passed to the view)."""
        return django_path(self.prefix + route, _callable(view), kwargs, name=self._name(name))

    def under(self, route: str, name: str | None = None) -> Routes:
        """The routes under `prefix + route`, named `{name}_<suffix>` (without `name`: as these are)."""
        return Routes(self.prefix + route, self.name if name is None else name)

    def item(self, key: str) -> Routes:
        """The routes under one item of this collection, `prefix/<str:key>`, named as these are."""
        return self.under(f"/<str:{key}>")

    def collection(
        self,
        list_view: View,
        detail_view: View,
        *,
        key: str,
        names: tuple[str, str] = ("list", "detail"),
        slash: bool = False,
    ) -> list[URLPattern]:
        """`prefix` routed to `list_view` and `prefix/<str:key>` to `detail_view` (each with a trailing
        slash when `slash`, as console pages have), named `{name}_list` and `{name}_detail` (or after the
        two `names`)."""
        list_name, detail_name = names
        end = "/" if slash else ""
        return [self.path(end, list_view, list_name), self.item(key).path(end, detail_view, detail_name)]

    def actions(
        self, *, slash: bool = False, kwargs: dict[str, Any] | None = None, **views: View
    ) -> list[URLPattern]:
        """One route a view: `prefix/<action>` (with a trailing slash when `slash`), named `{name}_<action>`.
        An underscore in the action's keyword is a hyphen in the path (`unschedule_cancelation=` routes
        `…/unschedule-cancelation`). `kwargs` are passed to every view."""
        end = "/" if slash else ""
        return [
            self.path(f"/{action.replace('_', '-')}{end}", view, action, kwargs)
            for action, view in views.items()
        ]

    def _name(self, suffix: str) -> str:
        return f"{self.name}_{suffix}" if suffix else self.name
