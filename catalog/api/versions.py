"""Plans and add-ons over the API: one set of views for both, each bound to a `VersionedAPI` (its
versioned-document `Kind`, how it is read and listed, its serializers). `PlanListCreateView` and the other
concrete classes only name their operations for the schema."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiTypes,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from catalog import selectors, services
from catalog.api.serializers import (
    AddonInput,
    AddonOutput,
    AddonUpdateInput,
    PlanInput,
    PlanOutput,
    PlanUpdateInput,
    VersionOutput,
    checked_body,
)
from catalog.services import versions
from core.api_base import TenantAPIView
from core.errors import ValidationFailed
from core.models import Organization
from core.pagination import PAGE_PARAMETERS, page_of, page_params, paged

VERSION_PARAM = OpenApiParameter(
    "version", OpenApiTypes.INT, description="A version number (default: the latest)."
)
INCLUDE_ARCHIVED = OpenApiParameter("includeArchived", OpenApiTypes.BOOL)


def version_param(request: Request) -> int | None:
    raw = request.query_params.get("version")
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValidationFailed("version must be an integer.", field="version") from None


def truthy(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class VersionedAPI:
    kind: versions.Kind[Any]  # read with its selector (`kind.get`), written with the versions service
    filter: Callable[[Organization, Request], QuerySet[Any]]  # the list, filtered by the query
    output: type[VersionOutput]
    create_input: type[serializers.Serializer]
    update_input: type[serializers.Serializer]

    @property
    def lookup(self) -> str:
        """The URL's keyword for a version id or key: plan_id, addon_id."""
        return f"{self.kind.object_type}_id"


def _plans(organization: Organization, request: Request) -> QuerySet[Any]:
    p = request.query_params
    return selectors.plan_list(
        organization=organization,
        key=p.getlist("key"),
        status=p.getlist("status"),
        currency=p.get("currency", ""),
        include_archived=truthy(request, "includeArchived") or bool(p.getlist("status")),
    )


def _addons(organization: Organization, request: Request) -> QuerySet[Any]:
    p = request.query_params
    return selectors.addon_list(organization=organization, key=p.get("key", ""), status=p.get("status", ""))


PLAN_API = VersionedAPI(
    kind=services.PLANS,
    filter=_plans,
    output=PlanOutput,
    create_input=PlanInput,
    update_input=PlanUpdateInput,
)
ADDON_API = VersionedAPI(
    kind=services.ADDONS,
    filter=_addons,
    output=AddonOutput,
    create_input=AddonInput,
    update_input=AddonUpdateInput,
)


class _VersionedView(TenantAPIView):
    abstract = True
    api: VersionedAPI

    def current(self, version: int | None = None) -> Any:
        """The version the URL names (by id; or by key: published, else newest; or `version`)."""
        return self.api.kind.get(
            organization=self.organization, id_or_key=self.kwargs[self.api.lookup], version=version
        )

    def render(self, version: Any) -> Any:
        return self.api.output(version).data

    def document(self, body: serializers.Serializer) -> tuple[Any, dict[str, Any]]:
        """(key, document) of a version's body, raw, once its serializer accepts its shape; the kind's
        rules check the document (`checked_body`)."""

        def rules(raw: dict[str, Any]) -> object:
            return self.api.kind.validated(self.organization, _without_key(raw))

        raw = checked_body(body, rules)
        return raw.get("key"), _without_key(raw)


def _without_key(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "key"}


class VersionListCreateView(_VersionedView):
    abstract = True
    required_scopes = {"GET": "read", "POST": "admin"}

    def get(self, request: Request) -> Response:
        page, size = page_params(request)
        qs = self.api.filter(self.organization, request)
        return Response(paged(qs, page, size, lambda rows: self.api.output(rows, many=True).data))

    def post(self, request: Request) -> Response:
        key, document = self.document(self.api.create_input(data=request.data))
        created = versions.version_create(
            self.api.kind, organization=self.organization, key=key, data=document, actor=self.actor
        )
        return Response(self.render(created), status=status.HTTP_201_CREATED)


class VersionDetailView(_VersionedView):
    abstract = True
    required_scopes = {"GET": "read", "PUT": "admin", "DELETE": "admin"}

    def get(self, request: Request, **kwargs: str) -> Response:
        return Response(self.render(self.current(version_param(request))))

    def put(self, request: Request, **kwargs: str) -> Response:
        current = self.current()
        _, document = self.document(self.api.update_input(data=request.data, context={"current": current}))
        updated = versions.version_update(
            self.api.kind,
            organization=self.organization,
            version_id=current.id,
            data=document,
            actor=self.actor,
        )
        return Response(self.render(updated))

    def delete(self, request: Request, **kwargs: str) -> Response:
        versions.version_delete(
            self.api.kind, organization=self.organization, version_id=self.current().id, actor=self.actor
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class VersionTransitionView(_VersionedView):
    """POST moves the named version on: `transition` is versions.version_publish or version_archive."""

    abstract = True
    required_scope = "admin"
    transition: Callable[..., Any]

    def post(self, request: Request, **kwargs: str) -> Response:
        version = type(self).transition(
            self.api.kind, organization=self.organization, version_id=self.current().id, actor=self.actor
        )
        return Response(self.render(version))


class VersionPublishView(VersionTransitionView):
    abstract = True
    transition = versions.version_publish


class VersionArchiveView(VersionTransitionView):
    abstract = True
    transition = versions.version_archive


class VersionNextView(_VersionedView):
    abstract = True
    required_scope = "admin"

    def post(self, request: Request, **kwargs: str) -> Response:
        draft = versions.version_next_from(
            self.api.kind, organization=self.organization, id_or_key=kwargs[self.api.lookup], actor=self.actor
        )
        return Response(self.render(draft), status=status.HTTP_201_CREATED)


def action_views(api: VersionedAPI, noun: str, output: type[VersionOutput]) -> tuple[type[Any], ...]:
    """One kind's publish, archive and new-draft views (`PlanPublishView`, ...), named for the schema."""

    def view(base: type[_VersionedView], name: str, operation_id: str, responses: Any) -> type[Any]:
        cls = type(f"{noun}{name}View", (base,), {"api": api, "__module__": __name__})
        cls.__qualname__ = cls.__name__
        schema = extend_schema(request=None, responses=responses, operation_id=operation_id)
        return extend_schema_view(post=schema)(cls)

    return (
        view(VersionPublishView, "Publish", f"publish{noun}", output),
        view(VersionArchiveView, "Archive", f"archive{noun}", output),
        view(VersionNextView, "NextVersion", f"next{noun}Version", {201: output}),
    )


# --- plans ----------------------------------------------------------------------------------------
@extend_schema_view(
    get=extend_schema(
        responses=page_of(PlanOutput),
        parameters=[
            OpenApiParameter("key", OpenApiTypes.STR, many=True),
            OpenApiParameter("status", OpenApiTypes.STR, many=True),
            OpenApiParameter("currency", OpenApiTypes.STR),
            INCLUDE_ARCHIVED,
            *PAGE_PARAMETERS,
        ],
        operation_id="listPlans",
    ),
    post=extend_schema(
        request=PlanInput,
        responses={201: PlanOutput},
        operation_id="createPlan",
        examples=[
            OpenApiExample(
                "A monthly fee and graduated token pricing",
                request_only=True,
                value={
                    "key": "pro",
                    "name": "Pro",
                    "currency": "USD",
                    "billingCadence": "P1M",
                    "phases": [
                        {
                            "key": "default",
                            "name": "Default",
                            "rateCards": [
                                {
                                    "type": "flat_fee",
                                    "key": "platform",
                                    "name": "Platform fee",
                                    "billingCadence": "P1M",
                                    "price": {"type": "flat", "amount": "49", "paymentTerm": "in_advance"},
                                },
                                {
                                    "type": "usage_based",
                                    "key": "gpt_tokens",
                                    "name": "GPT tokens",
                                    "featureKey": "gpt_tokens",
                                    "billingCadence": "P1M",
                                    "price": {
                                        "type": "tiered",
                                        "mode": "graduated",
                                        "tiers": [
                                            {
                                                "upToAmount": "1000000",
                                                "unitPrice": {"type": "unit", "amount": "0.00001"},
                                            },
                                            {
                                                "upToAmount": None,
                                                "unitPrice": {"type": "unit", "amount": "0.000005"},
                                            },
                                        ],
                                    },
                                    "entitlementTemplate": {
                                        "type": "metered",
                                        "usagePeriod": "P1M",
                                        "issueAfterReset": "5000000",
                                    },
                                },
                            ],
                        }
                    ],
                },
            )
        ],
    ),
)
class PlanListCreateView(VersionListCreateView):
    api = PLAN_API


@extend_schema_view(
    get=extend_schema(responses=PlanOutput, parameters=[VERSION_PARAM], operation_id="getPlan"),
    put=extend_schema(request=PlanUpdateInput, responses=PlanOutput, operation_id="updatePlan"),
    delete=extend_schema(responses={204: None}, operation_id="deletePlan"),
)
class PlanDetailView(VersionDetailView):
    api = PLAN_API


PlanPublishView, PlanArchiveView, PlanNextVersionView = action_views(PLAN_API, "Plan", PlanOutput)


# --- add-ons --------------------------------------------------------------------------------------
@extend_schema_view(
    get=extend_schema(
        responses=page_of(AddonOutput),
        parameters=[
            OpenApiParameter("key", OpenApiTypes.STR),
            OpenApiParameter("status", OpenApiTypes.STR),
            *PAGE_PARAMETERS,
        ],
        operation_id="listAddons",
    ),
    post=extend_schema(request=AddonInput, responses={201: AddonOutput}, operation_id="createAddon"),
)
class AddonListCreateView(VersionListCreateView):
    api = ADDON_API


@extend_schema_view(
    get=extend_schema(responses=AddonOutput, parameters=[VERSION_PARAM], operation_id="getAddon"),
    put=extend_schema(request=AddonUpdateInput, responses=AddonOutput, operation_id="updateAddon"),
)
class AddonDetailView(VersionDetailView):
    api = ADDON_API
    required_scopes = {"GET": "read", "PUT": "admin"}
    http_method_names = ["get", "put", "head", "options"]


AddonPublishView, AddonArchiveView, AddonNextVersionView = action_views(ADDON_API, "Addon", AddonOutput)
