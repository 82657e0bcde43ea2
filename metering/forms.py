"""Console forms for meters: create, edit (what does not rewrite history), test paths, explore."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django import forms

from metering.models import Aggregation

WINDOWS = [("HOUR", "Hour"), ("DAY", "Day"), ("MONTH", "Month")]


def parse_group_by(text: str) -> dict[str, str]:
    """`model=$.model` lines (or comma-separated); a line without `=` becomes an empty path, which the
    service's validation names."""
    out: dict[str, str] = {}
    for line in text.replace(",", "\n").splitlines():
        if line.strip():
            dim, _, path = line.partition("=")
            out[dim.strip()] = path.strip()
    return out


def group_by_text(group_by: dict[str, str]) -> str:
    return "\n".join(f"{k}={v}" for k, v in group_by.items())


class MeterCreateForm(forms.Form):
    slug = forms.CharField(max_length=255, required=False)
    name = forms.CharField(max_length=255, required=False)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    event_type = forms.CharField(max_length=255, required=False)
    aggregation = forms.ChoiceField(choices=[(a, a) for a in Aggregation.values], initial="SUM")
    value_property = forms.CharField(max_length=1000, required=False, initial="$.")
    group_by = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def service_kwargs(self) -> dict[str, Any]:
        d = self.cleaned_data
        return {
            "slug": d["slug"].strip(),
            "name": d["name"].strip(),
            "description": d["description"].strip(),
            "event_type": d["event_type"].strip(),
            "aggregation": d["aggregation"],
            "value_property": d["value_property"].strip() if d["aggregation"] != "COUNT" else None,
            "group_by": parse_group_by(d["group_by"]),
        }


class MeterEditForm(forms.Form):
    """Name, description and new group-by dimensions: existing dimensions stay as they are, because
    features, entitlements and saved queries filter on them and past usage was grouped by them."""

    name = forms.CharField(max_length=255, required=False)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    group_by = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args: Any, existing_group_by: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.existing_group_by = existing_group_by

    def clean_group_by(self) -> dict[str, str]:
        group_by = parse_group_by(self.cleaned_data["group_by"])
        changed = [
            dim
            for dim, path in self.existing_group_by.items()
            if dim not in group_by or group_by[dim] != path
        ]
        if changed:
            raise forms.ValidationError(
                f"Existing dimensions cannot be removed or changed ({', '.join(changed)}): features and "
                "past usage use them. Add new dimensions, or create a new meter."
            )
        return group_by

    def service_kwargs(self) -> dict[str, Any]:
        d = self.cleaned_data
        return {"name": d["name"].strip(), "description": d["description"].strip(), "group_by": d["group_by"]}


class PathTestForm(forms.Form):
    """A pasted sample event (a CloudEvent, or just its data) and the paths to read from it."""

    sample = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}))
    aggregation = forms.ChoiceField(choices=[(a, a) for a in Aggregation.values], required=False)
    value_property = forms.CharField(max_length=1000, required=False)
    group_by = forms.CharField(required=False)

    def clean_sample(self) -> Any:
        try:
            sample = json.loads(self.cleaned_data["sample"])
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}).") from None
        if not isinstance(sample, dict):
            raise forms.ValidationError("Paste one event: a JSON object.")
        return sample

    def clean_group_by(self) -> dict[str, str]:
        return parse_group_by(self.cleaned_data["group_by"])


def _day(value: Any) -> datetime | None:
    return datetime.combine(value, time.min, tzinfo=UTC) if value else None


class ExplorerForm(forms.Form):
    """The meter query of the API (`GET /api/v1/meters/{slug}/query`) as a form: period (dates, `to`
    inclusive), window, group by, subject and `dimension=value` filters."""

    date_from = forms.DateField(required=False, label="From")
    date_to = forms.DateField(required=False, label="To (inclusive)")
    window = forms.ChoiceField(choices=WINDOWS, initial="DAY", required=False)
    group_by = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    subject = forms.CharField(max_length=256, required=False)
    filters = forms.CharField(required=False, label="Filters (dimension=value, one per line)")

    def __init__(self, *args: Any, dimensions: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dimensions = dimensions
        group_by = self.fields["group_by"]
        assert isinstance(group_by, forms.MultipleChoiceField)
        group_by.choices = [(d, d) for d in [*dimensions, "subject"]]

    def clean_filters(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for line in self.cleaned_data["filters"].replace(",", "\n").splitlines():
            if not line.strip():
                continue
            dim, sep, value = line.partition("=")
            dim = dim.strip()
            if not sep or dim not in self.dimensions:
                raise forms.ValidationError(
                    f"Write dimension=value with one of {', '.join(self.dimensions) or 'no dimensions'}."
                )
            out.setdefault(dim, []).append(value.strip())
        return out

    def query(self, now: datetime) -> dict[str, Any]:
        """The meter query's arguments; the default period is the last 30 days by day."""
        d = self.cleaned_data if self.is_bound and self.is_valid() else {}
        today = datetime.combine(now.date(), time.min, tzinfo=UTC)
        start = _day(d.get("date_from")) or today - timedelta(days=29)
        end = (_day(d.get("date_to")) or today) + timedelta(days=1)
        group_by = list(d.get("group_by") or [])
        return {
            "from_": start,
            "to": max(end, start + timedelta(hours=1)),
            "window_size": d.get("window") or "DAY",
            "group_by": [g for g in group_by if g != "subject"]
            + (["subject"] if "subject" in group_by else []),
            "subjects": [d["subject"].strip()] if d.get("subject", "").strip() else None,
            "filter_group_by": d.get("filters") or None,
        }


class EventFilterForm(forms.Form):
    """The event log's filters: subject, type, only uncounted, only unknown subjects (no customer has
    them; applied by the view, which asks billing), and a period of event time (dates, UTC, `to`
    inclusive)."""

    subject = forms.CharField(max_length=256, required=False)
    type = forms.CharField(max_length=255, required=False)
    uncounted = forms.BooleanField(required=False)
    unknown_subject = forms.BooleanField(required=False, label="Only unknown subjects")
    date_from = forms.DateField(required=False, label="From")
    date_to = forms.DateField(required=False, label="To")

    def selector_kwargs(self) -> dict[str, Any]:
        d = self.cleaned_data if self.is_valid() else {}
        end = _day(d.get("date_to"))
        return {
            "subject": (d.get("subject") or "").strip() or None,
            "type": (d.get("type") or "").strip() or None,
            "has_error": True if d.get("uncounted") else None,
            "from_": _day(d.get("date_from")),
            "to": end + timedelta(days=1) if end else None,
        }

    @property
    def only_unknown_subjects(self) -> bool:
        return bool(self.is_valid() and self.cleaned_data.get("unknown_subject"))
