"""Create a row and its audit entry in one transaction; a duplicate key is a 409 naming the field.

The pattern every "create" service shares (features, plans, add-ons, customers, meters...):

    feature = create_audited(
        lambda: Feature.objects.create(organization=org, key=key, ...),
        action="feature.created", object_type="feature", object_id=lambda f: f.key,
        after=feature_to_json, actor=actor, conflict=f"A feature with key {key!r} already exists.",
    )
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.db.models import Model

from core.audit import Actor, audit_record
from core.errors import conflict_on_duplicate

M = TypeVar("M", bound=Model)


def create_audited(
    create: Callable[[], M],
    *,
    action: str,
    object_type: str,
    object_id: Callable[[M], str],
    after: Callable[[M], Any],
    actor: Actor,
    conflict: str,
    field: str = "key",
) -> M:
    """Run `create` (it saves the row; `.organization` is read from it) and record `action` with `after(row)`,
    atomically. An IntegrityError (a unique constraint) rolls both back and becomes `Conflict(conflict)`
    naming `field`."""
    with conflict_on_duplicate(conflict, field=field):
        row = create()
        audit_record(
            organization=row.organization,  # type: ignore[attr-defined]
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id(row),
            after=after(row),
        )
    return row
