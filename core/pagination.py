"""The API's list shapes, one per API generation, and the schema that declares them.

- **Pages** (`page`, `pageSize` in; `{totalCount, page, pageSize, items}` out): OpenMeter's shape, used by
  every OpenMeter-compatible list (customers, plans, add-ons, subscriptions, entitlements, grants) and by
  our own lists that sit beside them (invoices, credits, invoice runs). `page_params` reads and bounds the
  query, `paged` slices a queryset or list, `page_of(ItemSerializer)` is the serializer that renders and
  documents the answer; `page_schema` declares a list view with both.
- **Cursors** (`cursor`, `limit` in; `{items, next, previous}` out, newest first): our append-only admin
  logs (API keys, audit log, notification endpoints, deliveries), where a page number would shift as rows
  arrive. `IdCursorPagination` and `paginate` in `core.api`; `cursor_page_of(ItemSerializer)` documents it
  (`cursor_page_schema` declares the view).

OpenMeter's own bare arrays (`GET /api/v1/meters`, `GET /api/v1/events`, features without `page`) stay
arrays: the official SDK reads them that way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request

from core.errors import ValidationFailed

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100

PAGE_PARAMETERS = [
    OpenApiParameter("page", OpenApiTypes.INT, description="1-based page number (default 1)."),
    OpenApiParameter(
        "pageSize", OpenApiTypes.INT, description=f"Items per page, 1 to {MAX_PAGE_SIZE} (default 100)."
    ),
]
CURSOR_PARAMETERS = [
    OpenApiParameter(
        "cursor", OpenApiTypes.STR, description="The opaque cursor of a `next`/`previous` link."
    ),
    OpenApiParameter("limit", OpenApiTypes.INT, description=f"Items per page, at most {MAX_PAGE_SIZE}."),
]


def page_params(request: Request, default_size: int = DEFAULT_PAGE_SIZE) -> tuple[int, int]:
    """`page` and `pageSize` from the query, bounded; a bad value is a 400 naming the parameter."""

    def as_int(name: str, default: int, maximum: int) -> int:
        raw = request.query_params.get(name)
        if raw in (None, ""):
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ValidationFailed(f"{name} must be an integer.", field=name) from None
        if not 1 <= value <= maximum:
            raise ValidationFailed(f"{name} must be between 1 and {maximum}.", field=name)
        return value

    return as_int("page", 1, 10**9), as_int("pageSize", default_size, MAX_PAGE_SIZE)


def paged(
    qs: QuerySet | Sequence[Any], page: int, page_size: int, serialize: Callable[[list[Any]], Any]
) -> dict[str, Any]:
    """One page of `qs` as `{totalCount, page, pageSize, items}`; `serialize` renders the page's rows."""
    total = qs.count() if isinstance(qs, QuerySet) else len(qs)
    items = list(qs[(page - 1) * page_size : page * page_size])
    return {"totalCount": total, "page": page, "pageSize": page_size, "items": serialize(items)}


_PAGES: dict[tuple[type, str], type[serializers.Serializer]] = {}


def _component(item: type[serializers.Serializer], suffix: str) -> str:
    name = item.__name__
    for tail in ("Serializer", "Output"):
        if name.endswith(tail) and name != tail:
            name = name[: -len(tail)]
    return name + suffix


def page_of(item: type[serializers.Serializer], name: str | None = None) -> type[serializers.Serializer]:
    """The serializer of a page of `item`s (component `<Item>Page`)."""
    key = (item, "page")
    if key not in _PAGES:
        _PAGES[key] = type(
            name or _component(item, "Page"),
            (serializers.Serializer,),
            {
                "totalCount": serializers.IntegerField(help_text="Items across all pages."),
                "page": serializers.IntegerField(),
                "pageSize": serializers.IntegerField(),
                "items": item(many=True),
                "__module__": item.__module__,
                "__qualname__": name or _component(item, "Page"),
            },
        )
    return _PAGES[key]


def cursor_page_of(
    item: type[serializers.Serializer], name: str | None = None
) -> type[serializers.Serializer]:
    """The serializer of a cursor page of `item`s (component `<Item>CursorPage`)."""
    key = (item, "cursor")
    if key not in _PAGES:
        _PAGES[key] = type(
            name or _component(item, "CursorPage"),
            (serializers.Serializer,),
            {
                "items": item(many=True),
                "next": serializers.CharField(allow_null=True, help_text="URL of the next page, or null."),
                "previous": serializers.CharField(allow_null=True, help_text="URL of the previous page."),
                "__module__": item.__module__,
                "__qualname__": name or _component(item, "CursorPage"),
            },
        )
    return _PAGES[key]


def page_schema(
    item: type[serializers.Serializer],
    operation_id: str,
    *parameters: OpenApiParameter,
    description: str | None = None,
) -> Callable[[Any], Any]:
    """The schema of a page-paginated list of `item`s (`extend_schema` on its `get`): the page serializer,
    the list's own query `parameters` then `page` and `pageSize`."""
    return extend_schema(
        responses=page_of(item),
        parameters=[*parameters, *PAGE_PARAMETERS],
        description=description,
        operation_id=operation_id,
    )


def cursor_page_schema(
    item: type[serializers.Serializer], operation_id: str, *parameters: OpenApiParameter
) -> Callable[[Any], Any]:
    """`page_schema` of a cursor-paginated list: its cursor page serializer, then `cursor` and `limit`."""
    return extend_schema(
        responses=cursor_page_of(item),
        parameters=[*parameters, *CURSOR_PARAMETERS],
        operation_id=operation_id,
    )
