"""Reads owned by analytics: pricing simulation runs."""

from __future__ import annotations

from analytics.models import SimulationRun
from core.models import Organization


def simulation_run_get(*, organization: Organization, run_id: str) -> SimulationRun | None:
    return SimulationRun.objects.filter(organization=organization, id=run_id).first()


def simulation_run_list(*, organization: Organization, limit: int = 20) -> list[SimulationRun]:
    return list(SimulationRun.objects.filter(organization=organization).defer("results")[:limit])
