"""What the store's SQL needs to know about a meter (`MeterSpec`), and the SQL expressions of its value and
group-by dimensions (shared by the rollups and the usage query)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from metering.jsonpath import NUMERIC_SQL_RE, compile_path


@dataclass(frozen=True)
class MeterSpec:
    """What the store needs to know about a meter (plain data; no ORM in the SQL layer)."""

    id: str
    organization_id: str
    event_type: str
    aggregation: str
    value_property: str | None
    group_by: Mapping[str, str]
    event_from: datetime | None = None

    @classmethod
    def of(cls, meter: Any) -> MeterSpec:
        return cls(
            meter.id,
            meter.organization_id,
            meter.event_type,
            meter.aggregation,
            meter.value_property or None,
            dict(meter.group_by or {}),
            meter.event_from,
        )

    @property
    def value_path(self) -> list[str] | None:
        return compile_path(self.value_property) if self.value_property else None


def value_sql(alias: str, params: dict[str, Any], spec: MeterSpec) -> str:
    """SQL for the numeric value (NULL when missing or not a number)."""
    path = spec.value_path
    if path is None:
        return "NULL::numeric"
    params["vpath"] = path
    params["numre"] = NUMERIC_SQL_RE
    return (
        f"(CASE WHEN ({alias}.data #>> %(vpath)s) ~ %(numre)s THEN ({alias}.data #>> %(vpath)s)::numeric END)"
    )


def group_values_sql(alias: str, params: dict[str, Any], spec: MeterSpec) -> str:
    if not spec.group_by:
        return "'{}'::jsonb"
    parts = []
    for i, key in enumerate(sorted(spec.group_by)):
        params[f"gvk{i}"] = key
        params[f"gvp{i}"] = compile_path(spec.group_by[key])
        parts.append(f"%(gvk{i})s::text, {alias}.data #>> %(gvp{i})s")
    return f"jsonb_build_object({', '.join(parts)})"
