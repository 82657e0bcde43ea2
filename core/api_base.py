"""The tenant-scoped API base every API view inherits from (`core/api.py` holds core's own endpoints).

`TenantAPIView` resolves the organization from the credential before any handler runs and
exposes it as `self.organization`. Querysets come from `get_queryset()`, which always filters
by that organization; subclasses narrow it with `scope_queryset(qs)`. Overriding
`get_queryset` is a class-definition error, so forgetting the organization filter cannot
happen by accident.
"""

from __future__ import annotations

from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Model, QuerySet
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import limits, rls
from core.auth import ApiKeyAuthentication, required_scope_for
from core.errors import PROBLEM_CONTENT_TYPE
from core.models import ApiKey, Organization


def iso(value: datetime | None) -> str | None:
    """The one rendering of a date-time on the wire: RFC 3339 in UTC with `Z` (`2025-01-01T12:00:00Z`,
    microseconds only when set); None stays None. DRF's DateTimeField renders the same (TIME_ZONE=UTC)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class IsoDateTimeField(serializers.DateTimeField):
    """An answer's date-time, rendered by `iso` (output serializers read the model attribute directly)."""

    def to_representation(self, value: datetime) -> str | None:  # type: ignore[override]
        return iso(value)


class BlankAsNullCharField(serializers.CharField):
    """A text attribute stored blank when unset (`description`, `meter_slug`), answered as null."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_null=True, **kwargs)

    def to_representation(self, value: Any) -> str | None:  # type: ignore[override]
        return str(value) if value else None


# --- the schema every API view shares ----------------------------------------------------------
class InvalidParamSerializer(serializers.Serializer):
    name = serializers.CharField(
        help_text="The field's full path, e.g. `phases[0].rateCards[1].price.amount`."
    )
    reason = serializers.CharField()


class ProblemSerializer(serializers.Serializer):
    """An RFC 7807 problem document (`application/problem+json`), the body of every API error."""

    type = serializers.CharField(help_text="A URI naming the kind of problem.")
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    invalid_params = InvalidParamSerializer(
        many=True, required=False, help_text="On 400: each bad field, named by its path."
    )


ERROR_DESCRIPTIONS = {
    "400": "Invalid request: `invalid_params` names each bad field.",
    "401": "No API key, or the key is invalid, expired or revoked.",
    "403": "The API key lacks the scope this operation needs.",
    "404": "No such object in this organization (in the path, a reference in the body or query, or an "
    "expired cursor).",
    "409": "Conflicts with the object's current state (e.g. a duplicate key, a published plan).",
    "413": "The body is above the size limit; `limit` names it.",
    "415": "Unsupported Content-Type.",
    "503": "Temporarily unable to accept the request; retry after the Retry-After header.",
}


def serializer_component_name(cls: type) -> str:
    """A unique component name from a serializer class: serializers nested in a view are named after
    the view (`ApiKeyListCreateView.Input` -> `ApiKeyListCreateInput`), so two views' `Input` classes
    never overwrite each other."""
    parts = cls.__qualname__.split(".")
    if len(parts) == 1:
        return parts[0]
    outer = parts[-2].removesuffix("View")
    inner = parts[-1]
    return inner if inner.startswith(outer) else outer + inner


class ApiAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema with our conventions: unique component names for nested Input/Output
    serializers, the scope each operation needs in its description, and the problem+json error answers
    (401/403 everywhere, 400 on input, 404 under a path parameter, 409 on writes, 413/415 on bodies)."""

    def get_serializer_name(self, serializer: Any, direction: Any) -> str:
        return serializer_component_name(type(serializer))

    def get_operation(self, *args: Any, **kwargs: Any) -> Any:
        operation = super().get_operation(*args, **kwargs)
        scope = required_scope_for(self.view, self.method)
        if operation is not None and scope:
            need = (
                f"Scope: `{scope}` (an API key with `{scope}` or `admin`)."
                if scope != "admin"
                else "Scope: `admin`."
            )
            text = operation.get("description") or ""
            operation["description"] = f"{text}\n\n{need}" if text else need
        return operation

    def get_tags(self) -> list[str]:
        app = type(self.view).__module__.split(".")[0]
        return [{"core": "organization"}.get(app, app)]

    def get_auth(self) -> list[Any]:
        authenticators = self.view.get_authenticators()
        if authenticators and all(isinstance(a, ApiKeyAuthentication) for a in authenticators):
            # Bearer, cached Bearer and ingest's Bearer/X-Api-Key/Basic all take the same API key.
            return _security(self, "ApiKey", API_KEY_SCHEME, ApiKeyAuthentication)
        return super().get_auth()

    def error_codes(self) -> list[str]:
        codes = ["400", "401", "403", "404"]
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            codes.append("409")
        if self.method in ("POST", "PUT", "PATCH"):
            codes += ["413", "415"]
        return codes

    def _get_response_bodies(self, direction: Any = "response") -> Any:
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code in self.error_codes():
            problem = self._get_response_for_code(
                ProblemSerializer, code, media_types=[PROBLEM_CONTENT_TYPE], direction=direction
            )
            problem["description"] = ERROR_DESCRIPTIONS[code]
            if code not in responses:
                responses[code] = problem
            elif not responses[code].get("content"):
                responses[code]["content"] = problem["content"]
        for code, response in responses.items():
            if code[0] in "45" and not response.get("content"):
                response["content"] = self._get_response_for_code(
                    ProblemSerializer, code, media_types=[PROBLEM_CONTENT_TYPE], direction=direction
                )["content"]
        return responses


API_KEY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "An organization API key (`ml_...`) with scopes `ingest`, `read` or `admin` (admin "
    "implies the others). Each operation names the scope it needs.",
}
PORTAL_TOKEN_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "A customer's portal token (`POST /api/v1/portal/tokens`), read-only and scoped to "
    "that customer.",
}


def _security(auto_schema: AutoSchema, name: str, definition: dict[str, Any], owner: type) -> list[Any]:
    auto_schema.registry.register_on_missing(
        ResolvedComponent(name=name, type=ResolvedComponent.SECURITY_SCHEMA, object=owner, schema=definition)
    )
    return [{name: []}]


class PortalTokenScheme(OpenApiAuthenticationExtension):
    target_class = "portal.auth.PortalTokenAuthentication"
    name = "PortalToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return PORTAL_TOKEN_SCHEME


class ScheduleDateTimeField(serializers.DateTimeField):
    """An input date-time held to the schedule range of `core.limits` ([1970, 2100), offset within ±15:59)."""

    def to_internal_value(self, value: Any) -> Any:
        parsed = super().to_internal_value(value)
        problem = limits.time_problem(parsed) if parsed is not None else None
        if problem:
            raise serializers.ValidationError(problem)
        return parsed


class TenantAPIView(APIView):
    schema = ApiAutoSchema()
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
        deferred = self.tenant_scope_deferred(request)
        self._tenant_scope.enter_context(rls.tenant_scope(self.organization.id, deferred=deferred))

    def tenant_scope_deferred(self, request: Request) -> bool:
        """Whether this request's tenant scope waits for its first statement (`rls.tenant_scope(deferred=
        True)`): for requests whose statements are a raw insert sent with the scope (`rls.execute_raw`) or
        queries outside transactions; a scope first set inside a transaction that rolls back is undone with
        it, so views that open transactions keep the default, the scope set on entry."""
        return False

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

    def validated(self, serializer: type[serializers.Serializer], *, partial: bool = False) -> Any:
        """The request body as `serializer` accepted it; a 400 naming each bad field otherwise."""
        body = serializer(data=self.request.data, partial=partial)
        body.is_valid(raise_exception=True)
        return body.validated_data


TenantAPIView.abstract = True  # type: ignore[attr-defined]


class IdCursorPagination(CursorPagination):
    """Cursor pagination over time-ordered ULID ids, newest first."""

    ordering = "-id"
    page_size_query_param = "limit"
    max_page_size = 1000

    def __init__(self) -> None:
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
