"""Console forms owned by analytics: starting a pricing simulation."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django import forms


def last_full_month(today: date) -> tuple[date, date]:
    first = today.replace(day=1)
    return (first - timedelta(days=1)).replace(day=1), first


class SimulationForm(forms.Form):
    """A plan version (`key:version`), a past period of dates (UTC, `end` exclusive), and the customers:
    picked ones, or all customers currently on a plan."""

    plan = forms.CharField(max_length=300, error_messages={"required": "Pick a plan version."})
    start = forms.DateField(label="From", error_messages={"invalid": "Give a date as YYYY-MM-DD."})
    end = forms.DateField(label="To (exclusive)", error_messages={"invalid": "Give a date as YYYY-MM-DD."})
    all_on_plan = forms.CharField(max_length=256, required=False)
    customers = forms.MultipleChoiceField(required=False)

    def __init__(self, *args: Any, customer_choices: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        customers = self.fields["customers"]
        assert isinstance(customers, forms.MultipleChoiceField)
        customers.choices = customer_choices

    def clean_plan(self) -> tuple[str, int]:
        key, _, version = self.cleaned_data["plan"].rpartition(":")
        if not key or not version.isdigit():
            raise forms.ValidationError("Pick a plan version.")
        return key, int(version)

    def service_kwargs(self) -> dict[str, Any]:
        d = self.cleaned_data
        key, version = d["plan"]
        return {
            "plan_key": key,
            "plan_version": version,
            "period_start": datetime.combine(d["start"], time.min, tzinfo=UTC),
            "period_end": datetime.combine(d["end"], time.min, tzinfo=UTC),
            "customer_ids": list(d["customers"]),
            "all_on_plan": d["all_on_plan"],
        }
