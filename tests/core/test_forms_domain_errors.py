"""core.forms.add_domain_error: a service's domain error lands next to the input it names."""

from __future__ import annotations

from django import forms

from core.errors import Conflict, ValidationFailed
from core.forms import add_domain_error, domain_error_items, error_map, form_write


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


def test_form_write_calls_the_service_only_for_a_valid_form() -> None:
    calls: list[str] = []
    form = _PhaseForm({"key": "x" * 3, "name": "Trial"})
    assert form_write(form, lambda: calls.append(form.cleaned_data["key"])) is True
    assert calls == ["xxx"]
    assert not form.errors

    class _Required(forms.Form):
        key = forms.CharField()

    invalid = _Required({})
    assert form_write(invalid, lambda: calls.append("never")) is False
    assert calls == ["xxx"]
    assert "key" in invalid.errors


def test_form_write_puts_the_domain_error_on_the_mapped_field() -> None:
    form = _PhaseForm({"key": "trial", "name": "Trial"})

    def write() -> None:
        raise ValidationFailed("Name taken.", field="planName")

    assert form_write(form, write, fields={"planName": "name"}) is False
    assert form.errors["name"] == ["Name taken."]
    unnamed = _PhaseForm({"key": "trial"})

    def conflict() -> None:
        raise Conflict("Already archived.")

    assert form_write(unnamed, conflict) is False
    assert error_map(unnamed) == {"general": "Already archived."}
