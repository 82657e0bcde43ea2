"""Writes for tenancy: organizations, members, API keys."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from core.audit import Actor, audit_object
from core.auth import api_key_cache_forget, generate_secret, hash_secret
from core.errors import Conflict, NotFound, ValidationFailed, conflict_on_duplicate
from core.models import ApiKey, Membership, Organization, Role, Scope
from core.money import is_currency


def organization_create(
    *, slug: str, name: str, currency: str = "USD", timezone_name: str = "UTC", actor: Actor = None
) -> Organization:
    if slugify(slug) != slug or not slug:
        raise ValidationFailed(f"Slug {slug!r} must be lowercase letters, digits and hyphens.", field="slug")
    if not is_currency(currency):
        raise ValidationFailed(f"Unknown currency code {currency!r}.", field="currency")
    try:
        ZoneInfo(timezone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(f"Unknown time zone {timezone_name!r}.", field="timezone") from None
    with conflict_on_duplicate(f"An organization with slug {slug!r} already exists.", field="slug"):
        org = Organization.objects.create(
            slug=slug, name=name, default_currency=currency.upper(), timezone=timezone_name
        )
        audit_object(
            org,
            "organization.created",
            actor,
            after={"slug": slug, "name": name, "currency": org.default_currency},
        )
    return org


BRAND_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


def organization_update(
    *, organization: Organization, name: str, timezone_name: str, brand_color: str = "", actor: Actor = None
) -> Organization:
    """Edit the organization's display settings (currency is fixed once prices exist elsewhere)."""
    errors = []
    if not name.strip():
        errors.append({"name": "name", "reason": "Enter a name."})
    try:
        ZoneInfo(timezone_name)
    except (ZoneInfoNotFoundError, ValueError):
        errors.append({"name": "timezone", "reason": f"Unknown time zone {timezone_name!r}."})
    if brand_color and not BRAND_COLOR_RE.match(brand_color):
        errors.append({"name": "brand_color", "reason": "Use a hex colour like #3b5bdb."})
    if errors:
        raise ValidationFailed("; ".join(e["reason"] for e in errors), errors=errors)
    with transaction.atomic():
        before = {
            "name": organization.name,
            "timezone": organization.timezone,
            "brand_color": organization.brand_color,
        }
        organization.name = name.strip()
        organization.timezone = timezone_name
        organization.brand_color = brand_color.lower()
        organization.save(update_fields=["name", "timezone", "brand_color"])
        after = {
            "name": organization.name,
            "timezone": organization.timezone,
            "brand_color": organization.brand_color,
        }
        if before != after:
            audit_object(
                organization,
                "organization.updated",
                actor,
                before=before,
                after=after,
            )
    return organization


def membership_set(
    *, organization: Organization, user: AbstractBaseUser, role: str, actor: Actor = None
) -> Membership:
    if role not in Role.values:
        raise ValidationFailed(f"Unknown role {role!r}; use one of {', '.join(Role.values)}.", field="role")
    with transaction.atomic():
        membership, created = Membership.objects.get_or_create(
            organization=organization,
            user=user,
            defaults={"role": role},  # type: ignore[misc]
        )
        before = None if created else {"role": membership.role}
        if not created and membership.role != role:
            membership.role = role
            membership.save(update_fields=["role"])
        if created or before != {"role": role}:
            audit_object(
                membership,
                "membership.set",
                actor,
                before=before,
                after={"user": user.get_username(), "role": role},
            )
    return membership


def membership_remove(*, organization: Organization, membership_id: int, actor: Actor = None) -> None:
    with transaction.atomic():
        membership = (
            Membership.objects.select_for_update().filter(organization=organization, pk=membership_id).first()
        )
        if membership is None:
            raise NotFound("No such member in this organization.")
        if (
            membership.role == Role.OWNER
            and not Membership.objects.filter(organization=organization, role=Role.OWNER)
            .exclude(pk=membership.pk)
            .exists()
        ):
            raise Conflict("An organization must keep at least one owner.")
        audit_object(
            membership,
            "membership.removed",
            actor,
            before={"user": membership.user.get_username(), "role": membership.role},
        )
        membership.delete()


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    secret: str


def api_key_create(
    *,
    organization: Organization,
    name: str,
    scopes: list[str],
    actor: Actor = None,
    expires_at: datetime | None = None,
) -> CreatedKey:
    """Create a key. The returned secret is the only time it exists in clear."""
    clean = sorted(set(scopes))
    if not clean:
        raise ValidationFailed("Choose at least one scope.", field="scopes")
    unknown = [s for s in clean if s not in Scope.values]
    if unknown:
        raise ValidationFailed(
            f"Unknown scope(s) {', '.join(unknown)}; use ingest, read or admin.", field="scopes"
        )
    if not name.strip():
        raise ValidationFailed("Give the key a name.", field="name")
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationFailed("The expiry must be in the future.", field="expires_at")
    secret, prefix = generate_secret()
    with transaction.atomic():
        key = ApiKey.objects.create(
            organization=organization,
            name=name.strip(),
            prefix=prefix,
            secret_hash=hash_secret(secret),
            scopes=clean,
            expires_at=expires_at,
            created_by=actor if isinstance(actor, AbstractBaseUser) else None,  # type: ignore[misc]
        )
        audit_object(
            key,
            "api_key.created",
            actor,
            after={
                "name": key.name,
                "prefix": prefix,
                "scopes": clean,
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
        )
    return CreatedKey(key=key, secret=secret)


def api_key_revoke(*, organization: Organization, key_id: str, actor: Actor = None) -> ApiKey:
    with transaction.atomic():
        key = ApiKey.objects.filter(organization=organization, pk=key_id).first()
        if key is None:
            raise NotFound("No such API key in this organization.")
        if key.revoked_at is None:
            updated = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(
                revoked_at=timezone.now()
            )
            if updated:
                api_key_cache_forget(key.secret_hash)
                key.refresh_from_db()
                audit_object(
                    key,
                    "api_key.revoked",
                    actor,
                    before={"revoked_at": None},
                    after={"revoked_at": key.revoked_at.isoformat() if key.revoked_at else None},
                )
    return key
