"""A draft plan's parts over the API: phases, and the rate cards in a phase (each answer is the whole plan)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from catalog import selectors, services
from catalog.api.serializers import PlanOutput, PlanPhaseSerializer, RateCardSerializer, checked_body
from catalog.services import versions
from catalog.validation import validate_phase
from core.api_base import TenantAPIView
from core.models import Organization


@dataclass(frozen=True)
class Part:
    """A request body a change takes: the service's argument it goes to, its serializer, its name in the
    rules' paths, the rules that check it alone (None: the service checks it merged into what it changes),
    whether fields may be left out."""

    argument: str
    serializer: type[serializers.Serializer]
    path: str
    rules: Callable[..., None] | None  # (body, organization=)
    partial: bool = False


def _phase_rules(phase: Any, organization: Organization) -> None:
    versions.check_part(validate_phase, phase, "phase", organization)


NEW_PHASE = Part("phase", PlanPhaseSerializer, "phase", _phase_rules)
PHASE_CHANGES = Part("phase", PlanPhaseSerializer, "phase", None, partial=True)
RATE_CARD = Part("rate_card", RateCardSerializer, "rateCard", versions.check_rate_card)


class _DraftPartView(TenantAPIView):
    abstract = True
    required_scope = "admin"

    def edit(
        self,
        change: Callable[..., Any],
        plan_id: str,
        body: Part | None = None,
        created: bool = False,
        **kwargs: Any,
    ) -> Response:
        """Applies `change` (a catalog service) to the draft plan `plan_id` names, with the request body
        (raw, once its serializer accepts its shape) as the argument `body` names, and answers the whole
        plan."""
        draft_id = selectors.plan_get(organization=self.organization, id_or_key=plan_id).id
        if body is not None:
            rules = None if body.rules is None else partial(body.rules, organization=self.organization)
            kwargs[body.argument] = checked_body(
                body.serializer(data=self.request.data, partial=body.partial), rules, body.path
            )
        plan = change(organization=self.organization, plan_id=draft_id, actor=self.actor, **kwargs)
        return Response(
            PlanOutput(plan).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class PhaseListCreateView(_DraftPartView):
    @extend_schema(request=PlanPhaseSerializer, responses={201: PlanOutput}, operation_id="addPlanPhase")
    def post(self, request: Request, plan_id: str) -> Response:
        return self.edit(services.phase_add, plan_id, NEW_PHASE, created=True)


class PhaseDetailView(_DraftPartView):
    @extend_schema(request=PlanPhaseSerializer, responses=PlanOutput, operation_id="updatePlanPhase")
    def put(self, request: Request, plan_id: str, phase_key: str) -> Response:
        return self.edit(services.phase_update, plan_id, PHASE_CHANGES, phase_key=phase_key)

    @extend_schema(responses={200: PlanOutput}, operation_id="deletePlanPhase")
    def delete(self, request: Request, plan_id: str, phase_key: str) -> Response:
        return self.edit(services.phase_remove, plan_id, phase_key=phase_key)


class RateCardListCreateView(_DraftPartView):
    @extend_schema(request=RateCardSerializer, responses={201: PlanOutput}, operation_id="addRateCard")
    def post(self, request: Request, plan_id: str, phase_key: str) -> Response:
        return self.edit(services.rate_card_upsert, plan_id, RATE_CARD, created=True, phase_key=phase_key)


class RateCardDetailView(_DraftPartView):
    @extend_schema(request=RateCardSerializer, responses=PlanOutput, operation_id="updateRateCard")
    def put(self, request: Request, plan_id: str, phase_key: str, rate_card_key: str) -> Response:
        return self.edit(
            services.rate_card_upsert,
            plan_id,
            RATE_CARD,
            phase_key=phase_key,
            replace_key=rate_card_key,
        )

    @extend_schema(responses={200: PlanOutput}, operation_id="deleteRateCard")
    def delete(self, request: Request, plan_id: str, phase_key: str, rate_card_key: str) -> Response:
        return self.edit(services.rate_card_remove, plan_id, phase_key=phase_key, rate_card_key=rate_card_key)
