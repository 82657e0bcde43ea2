"""A draft plan's parts over the API: phases, and the rate cards in a phase (each answer is the whole plan)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from catalog import selectors, services
from catalog.api.serializers import PlanOutput, PlanPhaseSerializer, RateCardSerializer
from core.api_base import TenantAPIView

# The request body each part takes, under the service's argument name.
BODIES: dict[str, type[serializers.Serializer]] = {
    "phase": PlanPhaseSerializer,
    "rate_card": RateCardSerializer,
}


class _DraftPartView(TenantAPIView):
    abstract = True
    required_scope = "admin"

    def edit(
        self,
        change: Callable[..., Any],
        plan_id: str,
        body: str | None = None,
        created: bool = False,
        **kwargs: Any,
    ) -> Response:
        """Applies `change` (a catalog service) to the draft plan `plan_id` names, with the request body
        validated as the `body` argument (`phase` or `rate_card`), and answers the whole plan."""
        draft_id = selectors.plan_get(organization=self.organization, id_or_key=plan_id).id
        if body is not None:
            data = BODIES[body](data=self.request.data)
            data.is_valid(raise_exception=True)
            kwargs[body] = data.validated_data
        plan = change(organization=self.organization, plan_id=draft_id, actor=self.actor, **kwargs)
        return Response(
            PlanOutput(plan).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class PhaseListCreateView(_DraftPartView):
    @extend_schema(request=PlanPhaseSerializer, responses={201: PlanOutput}, operation_id="addPlanPhase")
    def post(self, request: Request, plan_id: str) -> Response:
        return self.edit(services.phase_add, plan_id, "phase", created=True)


class PhaseDetailView(_DraftPartView):
    @extend_schema(request=PlanPhaseSerializer, responses=PlanOutput, operation_id="updatePlanPhase")
    def put(self, request: Request, plan_id: str, phase_key: str) -> Response:
        return self.edit(services.phase_update, plan_id, "phase", phase_key=phase_key)

    @extend_schema(responses={200: PlanOutput}, operation_id="deletePlanPhase")
    def delete(self, request: Request, plan_id: str, phase_key: str) -> Response:
        return self.edit(services.phase_remove, plan_id, phase_key=phase_key)


class RateCardListCreateView(_DraftPartView):
    @extend_schema(request=RateCardSerializer, responses={201: PlanOutput}, operation_id="addRateCard")
    def post(self, request: Request, plan_id: str, phase_key: str) -> Response:
        return self.edit(services.rate_card_upsert, plan_id, "rate_card", created=True, phase_key=phase_key)


class RateCardDetailView(_DraftPartView):
    @extend_schema(request=RateCardSerializer, responses=PlanOutput, operation_id="updateRateCard")
    def put(self, request: Request, plan_id: str, phase_key: str, rate_card_key: str) -> Response:
        return self.edit(
            services.rate_card_upsert,
            plan_id,
            "rate_card",
            phase_key=phase_key,
            replace_key=rate_card_key,
        )

    @extend_schema(responses={200: PlanOutput}, operation_id="deleteRateCard")
    def delete(self, request: Request, plan_id: str, phase_key: str, rate_card_key: str) -> Response:
        return self.edit(services.rate_card_remove, plan_id, phase_key=phase_key, rate_card_key=rate_card_key)
