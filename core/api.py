"""The tenant-scoped API base every API view inherits from.

`TenantAPIView` resolves the organization from the credential before any handler runs and
exposes it as `self.organization`. Querysets come from `get_queryset()`, which always filters
by that organization; subclasses narrow it with `scope_queryset(qs)`. Overriding
`get_queryset` is a class-definition error, so forgetting the organization filter cannot
happen by accident.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Model, QuerySet
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import limits, rls
from core.models import ApiKey, Organization


class ScheduleDateTimeField(serializers.DateTimeField):
    """An input date-time held to the schedule range of `core.limits` ([1970, 2100), offset within ±15:59)."""

    def to_internal_value(self, value: Any) -> Any:
        parsed = super().to_internal_value(value)
        problem = limits.time_problem(parsed) if parsed is not None else None
        if problem:
            raise serializers.ValidationError(problem)
        return parsed


class TenantAPIView(APIView):
    model: ClassVar[type[Model] | None] = None
    required_scope: ClassVar[str | None] = None
    required_scopes: ClassVar[dict[str, str] | None] = None

    organization: Organization
    api_key: ApiKey

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise ImproperlyConfigured(
                f"{cls.__module__}.{cls.__qualname__} overrides get_queryset(); tenant views must "
                "override scope_queryset(qs) instead so the organization filter is always applied."
            )
        if cls.required_scope is None and not cls.required_scopes and not cls.__dict__.get("abstract", False):
            raise ImproperlyConfigured(
                f"{cls.__module__}.{cls.__qualname__} declares no required_scope or required_scopes."
            )

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        # The tenant scope (core/rls.py) entered in initial() ends with the request, whatever happens.
        with ExitStack() as self._tenant_scope:
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authenticates and checks scopes
        assert isinstance(request.auth, ApiKey)
        self.api_key = request.auth
        self.organization = request.auth.organization
        self._tenant_scope.enter_context(rls.tenant_scope(self.organization.id))

    def get_queryset(self) -> QuerySet:
        if self.model is None:
            raise ImproperlyConfigured(f"{type(self).__name__} has no model.")
        qs = self.model._default_manager.filter(organization=self.organization)
        return self.scope_queryset(qs)

    def scope_queryset(self, qs: QuerySet) -> QuerySet:
        return qs

    @property
    def actor(self) -> ApiKey:
        return self.api_key


TenantAPIView.abstract = True  # type: ignore[attr-defined]


class IdCursorPagination(CursorPagination):
    """Cursor pagination over time-ordered ULID ids, newest first."""

    ordering = "-id"
    page_size_query_param = "limit"
    max_page_size = 1000

    def __init__(self) -> None:
        from django.conf import settings

        self.page_size = settings.API_PAGE_SIZE

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"items": data, "next": self.get_next_link(), "previous": self.get_previous_link()})


def paginate(
    view: APIView,
    request: Request,
    queryset: QuerySet,
    serializer_class: type[serializers.Serializer],
    pagination_class: type[CursorPagination] = IdCursorPagination,
) -> Response:
    paginator = pagination_class()
    page = paginator.paginate_queryset(queryset, request, view=view)
    assert page is not None
    return paginator.get_paginated_response(serializer_class(page, many=True).data)
