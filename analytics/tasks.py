"""Analytics tasks: take ids, call one service, safe to run twice."""

from __future__ import annotations

from celery import shared_task

from analytics.services import simulation_run_execute


@shared_task(name="analytics.tasks.simulation_run_task", acks_late=True, expires=3600)
def simulation_run_task(run_id: str) -> None:
    simulation_run_execute(run_id=run_id)
