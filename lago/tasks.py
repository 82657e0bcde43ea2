"""Celery tasks of the Lago adapter (thin: the work is in `lago.advance`)."""

from __future__ import annotations

from celery import shared_task

from core.models import Organization
from lago import advance


@shared_task(name=advance.TASK, ignore_result=True)
def usage_in_advance(organization_id: str, subjects: list[str]) -> None:
    """Invoice the charges paid in advance of these subjects (idempotent: what is billed is not again)."""
    organization = Organization.objects.get(id=organization_id)
    advance.usage_in_advance_bill(organization=organization, subjects=subjects)
