"""Writes owned by the portal: portal tokens (mint, invalidate). Simulation runs live in simulation.py."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from core.audit import Actor, audit_record
from core.errors import NotFound, ValidationFailed
from core.models import Organization
from portal import sources
from portal.models import PortalToken
from portal.tokens import token_sign

DEFAULT_TTL = timedelta(hours=1)
MIN_TTL = timedelta(seconds=60)
MAX_TTL = timedelta(days=30)


def portal_token_create(
    *,
    organization: Organization,
    subject: str = "",
    customer: str = "",
    allowed_meter_slugs: list[str] | None = None,
    expires_in: timedelta | None = None,
    actor: Actor = None,
) -> tuple[PortalToken, str]:
    """Mint a portal token for a subject or a customer (id or key). Returns (row, token); the token
    string is shown once and never stored."""
    if not subject and not customer:
        raise ValidationFailed("Give a subject or a customer.", field="subject")
    ttl = DEFAULT_TTL if expires_in is None else expires_in
    if not MIN_TTL <= ttl <= MAX_TTL:
        raise ValidationFailed(
            f"expiresIn must be between {int(MIN_TTL.total_seconds())} s and {int(MAX_TTL.total_seconds())} s.",
            field="expiresIn",
        )
    customer_id = ""
    if customer:
        try:
            customer_id = sources.customer_get(organization=organization, id_or_key=customer).id
        except NotFound:
            raise ValidationFailed(f"No such customer: {customer!r}.", field="customer") from None
    if subject:
        owner = sources.customer_id_for_subject(organization=organization, subject_key=subject)
        if customer_id and owner != customer_id:
            raise ValidationFailed(
                f"Subject {subject!r} is not attributed to this customer.", field="subject"
            )
        customer_id = customer_id or (owner or "")
    slugs = sorted(set(allowed_meter_slugs or []))
    unknown = sources.unknown_meter_slugs(organization=organization, slugs=slugs)
    if unknown:
        raise ValidationFailed(f"Unknown meter(s): {', '.join(unknown)}.", field="allowedMeterSlugs")
    with transaction.atomic():
        row = PortalToken.objects.create(
            organization=organization,
            subject=subject,
            customer_id=customer_id or None,
            allowed_meter_slugs=slugs,
            expires_at=timezone.now() + ttl,
            created_by_label=_actor_label(actor),
        )
        audit_record(
            organization=organization,
            actor=actor,
            action="portal_token.created",
            object_type="portal_token",
            object_id=row.id,
            after={"subject": subject, "customerId": customer_id, "allowedMeterSlugs": slugs},
        )
    token = token_sign(organization_id=organization.id, token_id=row.id, expires_at=row.expires_at)
    return row, token


def portal_token_invalidate(
    *,
    organization: Organization,
    token_id: str = "",
    subject: str = "",
    customer_id: str = "",
    actor: Actor = None,
) -> int:
    """Invalidate tokens by id, subject or customer (at least one). Returns how many were invalidated."""
    if not (token_id or subject or customer_id):
        raise ValidationFailed("Give an id, a subject or a customer.", field="id")
    qs = PortalToken.objects.filter(organization=organization, invalidated_at__isnull=True)
    if token_id:
        qs = qs.filter(id=token_id)
    if subject:
        qs = qs.filter(subject=subject)
    if customer_id:
        qs = qs.filter(customer_id=customer_id)
    with transaction.atomic():
        ids = list(qs.values_list("id", flat=True))
        count = PortalToken.objects.filter(id__in=ids, invalidated_at__isnull=True).update(
            invalidated_at=timezone.now()
        )
        if count:
            audit_record(
                organization=organization,
                actor=actor,
                action="portal_token.invalidated",
                object_type="portal_token",
                object_id=token_id or subject or customer_id,
                after={"ids": ids},
            )
    return count


def _actor_label(actor: Actor) -> str:
    prefix = getattr(actor, "prefix", None)
    if prefix:
        return f"api_key:{prefix}"
    if isinstance(actor, str):
        return actor
    username = getattr(actor, "get_username", None)
    return f"user:{username()}" if username else ""
