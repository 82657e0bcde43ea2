"""The one way to write an audit row."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from core.models import ApiKey, AuditLog, Organization

Actor = AbstractBaseUser | AnonymousUser | ApiKey | str | None


def audit_record(
    *,
    organization: Organization,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: str,
    before: Any = None,
    after: Any = None,
) -> AuditLog:
    user = actor if isinstance(actor, AbstractBaseUser) else None
    key = actor if isinstance(actor, ApiKey) else None
    if user is not None:
        label = f"user:{user.get_username()}"
    elif key is not None:
        label = f"api_key:{key.prefix}"
    elif isinstance(actor, str):
        label = actor
    else:
        label = "system"
    return AuditLog.objects.create(
        organization=organization,
        actor_user=user,  # type: ignore[misc]
        actor_api_key=key,
        actor_label=label,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        before=before,
        after=after,
    )
