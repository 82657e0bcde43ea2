"""Small helpers for building querysets."""

from __future__ import annotations

from typing import Any, TypeVar

from django.db.models import Model, QuerySet

from core.errors import NotFound

M = TypeVar("M", bound=Model)


def filter_given(qs: QuerySet[M], **lookups: Any) -> QuerySet[M]:
    """`qs` narrowed by each lookup whose value is given (not None): a list's optional filters, in one
    `filter()` (use it for the model's own fields: across a multi-valued relation, one `filter()` call
    and several differ)."""
    given = {lookup: value for lookup, value in lookups.items() if value is not None}
    return qs.filter(**given) if given else qs


def first_or_not_found(qs: QuerySet[M], detail: str) -> M:
    """The first row of `qs` (a lookup by id or key); NotFound(`detail`), a 404, when it has none."""
    row = qs.first()
    if row is None:
        raise NotFound(detail)
    return row
