"""The pricing editor's console forms: one per write. They read and tidy what was typed; the rules (keys,
currencies, cadences, documents) are the catalog services', whose domain errors `core.forms.add_domain_error`
puts back on these fields. The rate card editor's form state is `catalog.rate_card_form.RateCardForm`."""

from __future__ import annotations

from typing import Any

from django import forms

from catalog.models import InstanceType


def _text(**kwargs: Any) -> forms.CharField:
    return forms.CharField(required=False, **kwargs)


class FeatureForm(forms.Form):
    key = _text()
    name = _text()
    meterSlug = _text()
    filters = _text(help_text="model=gpt-4o, type=output")

    def clean_filters(self) -> dict[str, str]:
        """`a=b, c=d` as {a: b, c: d} (parts without `=` are ignored)."""
        out: dict[str, str] = {}
        for part in self.cleaned_data["filters"].split(","):
            if "=" in part:
                name, value = part.split("=", 1)
                out[name.strip()] = value.strip()
        return out


class FeatureArchiveForm(forms.Form):
    feature = _text()


class _Currency(forms.CharField):
    def to_python(self, value: Any) -> str:
        return str(super().to_python(value)).upper()


class PlanCreateForm(forms.Form):
    key = _text()
    name = _text()
    description = _text()
    currency = _Currency(required=False)
    billingCadence = _text()


class PlanSettingsForm(forms.Form):
    name = _text()
    description = _text()
    currency = _text()
    billingCadence = _text()


class PhaseForm(forms.Form):
    key = _text()
    name = _text()
    duration = _text()

    def clean_duration(self) -> str | None:
        return self.cleaned_data["duration"] or None


class AddonLinkForm(forms.Form):
    addonKey = _text()
    maxQuantity = _text()

    def clean_maxQuantity(self) -> int | None:
        raw = self.cleaned_data["maxQuantity"]
        if raw and not raw.isdigit():
            raise forms.ValidationError("Must be a positive whole number (or empty for no limit).")
        return int(raw) if raw else None


class AddonCreateForm(forms.Form):
    key = _text()
    name = _text()
    description = _text()
    currency = _Currency(required=False)
    instanceType = _text(initial=InstanceType.SINGLE)


class AddonSettingsForm(forms.Form):
    name = _text()
    description = _text()
    instanceType = _text()
