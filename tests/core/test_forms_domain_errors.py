"""core.forms.add_domain_error: a service's domain error lands next to the input it names."""

from __future__ import annotations

from django import forms

from core.errors import Conflict, ValidationFailed
from core.forms import add_domain_error, domain_error_items, error_map


class _PhaseForm(forms.Form):
    key = forms.CharField(required=False)
    name = forms.CharField(required=False)


def _bound() -> _PhaseForm:
    form = _PhaseForm({"key": "trial", "name": "Trial"})
    assert form.is_valid()
    return form


def test_paths_land_on_their_last_segment_and_the_rest_is_general() -> None:
    form = _bound()
    exc = ValidationFailed(
        "two problems",
        errors=[
            {"name": "phase.key", "reason": "Key taken."},
            {"name": "phase.duration", "reason": "Not a duration."},  # no such form field
        ],
    )
    add_domain_error(form, exc)
    assert form.errors["key"] == ["Key taken."]
    assert error_map(form) == {"key": "Key taken.", "general": "Not a duration."}


def test_explicit_field_mapping_wins_over_the_last_segment() -> None:
    form = _bound()
    add_domain_error(
        form,
        ValidationFailed("bad", errors=[{"name": "meterSlug", "reason": "No meter."}]),
        fields={"meterSlug": "name"},
    )
    assert error_map(form) == {"name": "No meter."}


def test_an_error_naming_one_field_or_none() -> None:
    form = _bound()
    add_domain_error(form, Conflict("Plan 'pro' already exists.", field="key"))
    add_domain_error(form, Conflict("Changed while publishing."))
    assert error_map(form) == {"key": "Plan 'pro' already exists.", "general": "Changed while publishing."}
    assert domain_error_items(Conflict("x")) == [{"name": "", "reason": "x"}]
    assert form.cleaned_data == {"name": "Trial"}  # the field in error is no longer clean
