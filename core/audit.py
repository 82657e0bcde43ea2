"""The one way to write audit rows: build with `audit_build`, save with `audit_record` (or many at once);
`audit_object` for the common case of one row of the organization's own, described by its action."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict, Unpack

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Model

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


def _actor(actor: Actor) -> dict[str, Any]:
    """The actor columns: the user or API key (kept as a label too, in case either is deleted later)."""
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
    return {"actor_user": user, "actor_api_key": key, "actor_label": label}


def audit_build(**fields: Unpack[AuditFields]) -> AuditLog:
    """An unsaved audit row; `audit_record` saves one, `audit_record_many` bulk-inserts several."""
    return AuditLog(
        organization=fields["organization"],
        **_actor(fields["actor"]),
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


def audit_object(
    row: Model,
    action: str,
    actor: Actor,
    *,
    object_type: str = "",
    object_id: Any = None,
    before: Any = None,
    after: Any = None,
    save: bool = True,
) -> AuditLog:
    """Save one audit row about `row`, a model of one organization (or the organization itself):
    `action` reads "<object type>.<what happened>" (`customer.created`) and gives the object type; the
    organization is the row's (by id, no query); the object type and id, unless given, are the action's
    first part and the row's primary key (give `object_id` for a row just deleted). `save=False` returns
    the row unsaved, for `audit_record_many`."""
    organization_id = row.pk if isinstance(row, Organization) else row.organization_id  # type: ignore[attr-defined]
    entry = AuditLog(
        organization_id=organization_id,
        **_actor(actor),
        action=action,
        object_type=object_type or action.split(".", 1)[0],
        object_id=str(row.pk if object_id is None else object_id),
        before=before,
        after=after,
    )
    if save:
        entry.save()
    return entry


def audit_record_many(entries: list[AuditLog]) -> None:
    """Insert rows built by `audit_build` in one statement (bulk jobs such as invoice runs)."""
    AuditLog.objects.bulk_create(entries, batch_size=2000)
