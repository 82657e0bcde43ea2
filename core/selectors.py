"""Reads for tenancy and health."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from core.jobs import job_failures_summary
from core.models import ApiKey, AuditLog, Heartbeat, Invitation, Membership, Organization


def organizations_for_user(*, user) -> QuerySet[Organization]:
    return Organization.objects.filter(memberships__user=user).order_by("name")


def membership_for(*, user, organization_id: str) -> Membership | None:
    return (
        Membership.objects.select_related("organization")
        .filter(user=user, organization_id=organization_id)
        .first()
    )


def api_key_list(*, organization: Organization) -> QuerySet[ApiKey]:
    return (
        ApiKey.objects.filter(organization=organization).select_related("created_by").order_by("-created_at")
    )


def member_list(*, organization: Organization) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(organization=organization).select_related("user").order_by("user__username")
    )


def invitation_pending_list(*, organization: Organization) -> QuerySet[Invitation]:
    return (
        Invitation.objects.filter(
            organization=organization,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        .select_related("invited_by")
        .order_by("-created_at")
    )


def audit_list(
    *, organization: Organization, object_type: str | None = None, object_id: str | None = None
) -> QuerySet[AuditLog]:
    qs = AuditLog.objects.filter(organization=organization)
    if object_type:
        qs = qs.filter(object_type=object_type)
    if object_id:
        qs = qs.filter(object_id=object_id)
    return qs.order_by("-created_at", "-id")


def health_status(*, now: datetime | None = None) -> tuple[bool, dict[str, Any]]:
    """(healthy, report). Checks the database, the Celery broker, and the last beat heartbeat.

    The beat check fails only when a heartbeat exists and is older than
    HEALTH_BEAT_MAX_AGE_SECONDS; before the first beat it reports `pending`.
    """
    now = now or timezone.now()
    report: dict[str, Any] = {}
    healthy = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        report["database"] = {
            "status": "ok",
            "vendor": connection.vendor,
            "embedded": settings.EMBEDDED_DATABASE,
        }
    except Exception as exc:  # report, never raise, from a health check
        healthy = False
        report["database"] = {"status": "fail", "error": str(exc)[:200]}
    try:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        report["broker"] = {"status": "ok", "kind": settings.CELERY_BROKER_KIND}
    except Exception as exc:
        healthy = False
        report["broker"] = {"status": "fail", "kind": settings.CELERY_BROKER_KIND, "error": str(exc)[:200]}
    beat: dict[str, Any]
    try:
        hb = Heartbeat.objects.filter(name="beat").first()
    except Exception:
        hb = None
    if hb is None:
        beat = {"status": "pending", "lastRunAt": None, "detail": "No heartbeat yet; is Celery beat running?"}
    else:
        age = (now - hb.last_run_at).total_seconds()
        ok = age <= settings.HEALTH_BEAT_MAX_AGE_SECONDS
        beat = {
            "status": "ok" if ok else "fail",
            "lastRunAt": hb.last_run_at.isoformat(),
            "ageSeconds": int(age),
            "runs": hb.runs,
        }
        healthy = healthy and ok
    report["beat"] = beat
    # Background jobs' open failures (core.jobs): reported, but they do not make the service unhealthy,
    # since one organization's bad data must not take every organization's service out of rotation.
    try:
        by_job = job_failures_summary()
        report["jobs"] = {
            "status": "degraded" if by_job else "ok",
            "openFailures": sum(by_job.values()),
            "byJob": by_job,
        }
    except Exception as exc:  # report, never raise
        report["jobs"] = {"status": "unknown", "error": str(exc)[:200]}
    return healthy, report
