"""The one way to write audit rows: build with `audit_build`, save with `audit_record` (or many at once)."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict, Unpack

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from core.models import ApiKey, AuditLog, Organization

Actor = AbstractBaseUser | AnonymousUser | ApiKey | str | None


class AuditFields(TypedDict):
    organization: Organization
    actor: Actor
    action: str
    object_type: str
    object_id: str
    before: NotRequired[Any]
    after: NotRequired[Any]


def audit_build(**fields: Unpack[AuditFields]) -> AuditLog:
    """An unsaved audit row; `audit_record` saves one, `audit_record_many` bulk-inserts several."""
    actor = fields["actor"]
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
    return AuditLog(
        organization=fields["organization"],
        actor_user=user,  # type: ignore[misc]
        actor_api_key=key,
        actor_label=label,
        action=fields["action"],
        object_type=fields["object_type"],
        object_id=str(fields["object_id"]),
        before=fields.get("before"),
        after=fields.get("after"),
    )


def audit_record(**fields: Unpack[AuditFields]) -> AuditLog:
    """Save one audit row (the same keyword arguments as `audit_build`)."""
    entry = audit_build(**fields)
    entry.save()
    return entry


def audit_record_many(entries: list[AuditLog]) -> None:
    """Insert rows built by `audit_build` in one statement (bulk jobs such as invoice runs)."""
    AuditLog.objects.bulk_create(entries, batch_size=2000)
