"""What every dashboard chart is made of: a `Dataset` (title, columns, rows, bars, a note and what the
empty state says), the month grid the charts share, and the CSV export of a dataset."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.http import Http404, HttpResponse

from core.charts import Bar, bar_chart


@dataclass
class Dataset:
    key: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    bars: list[Bar] | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # What the table says while it has no rows: what will appear here, and when.
    empty: str = "No data yet."

    @property
    def chart(self):
        return bar_chart(self.bars, label=self.title) if self.bars is not None else None


def plain(value: Decimal) -> Decimal:
    """A usage quantity without trailing zeros (and never in exponent notation)."""
    value = Decimal(value)
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def month_starts(now: datetime, count: int = 12) -> list[datetime]:
    """The first instants of the last `count` calendar months, oldest first, the current one last."""
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    out = [first]
    for _ in range(count - 1):
        out.append((out[-1] - timedelta(days=1)).replace(day=1))
    return list(reversed(out))


def dataset_pick(datasets: list[Dataset], key: str) -> Dataset:
    for ds in datasets:
        if ds.key == key:
            return ds
    raise Http404("No such chart.")


def dataset_csv(dataset: Dataset) -> HttpResponse:
    """The dataset's table as a CSV download (text cells that a spreadsheet would run are quoted)."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{dataset.key}.csv"'
    writer = csv.writer(response)
    writer.writerow(dataset.columns)
    for row in dataset.rows:
        writer.writerow([_csv_cell(v) for v in row])
    return response


def _csv_cell(value: Any) -> str:
    text = str(value)
    return (
        "'" + text if text[:1] in ("=", "+", "-", "@") and not _is_number(text) else text
    )  # no CSV injection


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except (InvalidOperation, ValueError):
        return False
    return True
