"""Create a row and its audit entry in one transaction; a duplicate key is a 409 naming the field.

The pattern every "create" service shares (features, plans, add-ons, customers, meters...):

    feature = create_audited(
        lambda: Feature.objects.create(organization=org, key=key, ...),
        action="feature.created", object_id=lambda f: f.key,
        after=feature_to_json, actor=actor, conflict=f"A feature with key {key!r} already exists.",
    )
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.db.models import Model

from core.audit import Actor, audit_object
from core.errors import conflict_on_duplicate

M = TypeVar("M", bound=Model)


def create_audited(
    create: Callable[[], M],
    *,
    action: str,
    after: Callable[[M], Any],
    actor: Actor,
    conflict: str,
    field: str = "key",
    object_id: Callable[[M], Any] | None = None,
) -> M:
    """Run `create` (it saves the row) and record `action` on it (`core.audit.audit_object`: the object
    type is the action's first part, the id the row's primary key unless `object_id(row)` says) with
    `after(row)`, atomically. An IntegrityError (a unique constraint) rolls both back and becomes
    `Conflict(conflict)` naming `field`."""
    with conflict_on_duplicate(conflict, field=field):
        row = create()
        audit_object(row, action, actor, object_id=object_id(row) if object_id else None, after=after(row))
    return row
