"""A draft plan's parts over the API: phases, and the rate cards in a phase (each answer is the whole plan)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from catalog import selectors, services
from catalog.api.serializers import PlanOutput, PlanPhaseSerializer, RateCardSerializer, plan_out
from core.api_base import TenantAPIView


def _body(serializer: type[serializers.Serializer], request: Request) -> Any:
    body = serializer(data=request.data)
    body.is_valid(raise_exception=True)
    return body.validated_data


def _draft_id(view: TenantAPIView, plan_id: str) -> str:
    return selectors.plan_get(organization=view.organization, id_or_key=plan_id).id


class PhaseListCreateView(TenantAPIView):
    required_scope = "admin"

    @extend_schema(request=PlanPhaseSerializer, responses={201: PlanOutput}, operation_id="addPlanPhase")
    def post(self, request: Request, plan_id: str) -> Response:
        plan = services.phase_add(
            organization=self.organization,
            plan_id=_draft_id(self, plan_id),
            phase=_body(PlanPhaseSerializer, request),
            actor=self.actor,
        )
        return Response(plan_out(plan), status=status.HTTP_201_CREATED)


class PhaseDetailView(TenantAPIView):
    required_scope = "admin"

    @extend_schema(request=PlanPhaseSerializer, responses=PlanOutput, operation_id="updatePlanPhase")
    def put(self, request: Request, plan_id: str, phase_key: str) -> Response:
        plan = services.phase_update(
            organization=self.organization,
            plan_id=_draft_id(self, plan_id),
            phase_key=phase_key,
            phase=_body(PlanPhaseSerializer, request),
            actor=self.actor,
        )
        return Response(plan_out(plan))

    @extend_schema(responses={200: PlanOutput}, operation_id="deletePlanPhase")
    def delete(self, request: Request, plan_id: str, phase_key: str) -> Response:
        plan = services.phase_remove(
            organization=self.organization,
            plan_id=_draft_id(self, plan_id),
            phase_key=phase_key,
            actor=self.actor,
        )
        return Response(plan_out(plan))


class RateCardListCreateView(TenantAPIView):
    required_scope = "admin"

    @extend_schema(request=RateCardSerializer, responses={201: PlanOutput}, operation_id="addRateCard")
    def post(self, request: Request, plan_id: str, phase_key: str) -> Response:
        plan = services.rate_card_upsert(
            organization=self.organization,
            plan_id=_draft_id(self, plan_id),
            phase_key=phase_key,
            rate_card=_body(RateCardSerializer, request),
            actor=self.actor,
        )
        return Response(plan_out(plan), status=status.HTTP_201_CREATED)


class RateCardDetailView(TenantAPIView):
    required_scope = "admin"

    @extend_schema(request=RateCardSerializer, responses=PlanOutput, operation_id="updateRateCard")
    def put(self, request: Request, plan_id: str, phase_key: str, rate_card_key: str) -> Response:
        plan = services.rate_card_upsert(
            organization=self.organization,
            plan_id=_draft_id(self, plan_id),
            phase_key=phase_key,
            rate_card=_body(RateCardSerializer, request),
            replace_key=rate_card_key,
            actor=self.actor,
        )
        return Response(plan_out(plan))

    @extend_schema(responses={200: PlanOutput}, operation_id="deleteRateCard")
    def delete(self, request: Request, plan_id: str, phase_key: str, rate_card_key: str) -> Response:
        plan = services.rate_card_remove(
            organization=self.organization,
            plan_id=_draft_id(self, plan_id),
            phase_key=phase_key,
            rate_card_key=rate_card_key,
            actor=self.actor,
        )
        return Response(plan_out(plan))
