"""The pricing editor's console forms: one per write. They read and tidy what was typed; the rules (keys,
currencies, cadences, documents) are the catalog services', whose domain errors `core.forms.add_domain_error`
puts back on these fields. The rate card editor's values and their JSON are `catalog.rate_card_json`'s."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.http import QueryDict

from catalog.models import InstanceType
from catalog.rate_card_json import FIELD_FOR_PATH, RateCardValues, values_from_card, values_from_data
from core.errors import DomainError, ValidationFailed
from core.forms import add_domain_error, domain_error_items


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


_TIER_PATH = re.compile(r"^price\.tiers\[(\d+)\](?:\.(upToAmount|unitPrice|flatPrice))?")
_TIER_INPUT = {"upToAmount": "up_to", "unitPrice": "unit", "flatPrice": "flat", None: "row"}


class RateCardForm(forms.Form):
    """The rate card editor (plans' phases and add-ons). Inputs are named as the rate card's JSON names
    them; the tier rows (`tierUpTo`/`tierUnit`/`tierFlat`, one input each per row) are read beside. Every
    field is optional: the catalog services validate the card, and `add_domain_error` puts their errors
    next to the inputs. `values` is what the inputs show (what was typed, or the saved card)."""

    key = _text()
    name = _text()
    description = _text()
    featureKey = _text()
    billingCadence = _text()
    paymentTerm = _text()
    priceModel = _text()
    amount = _text()
    quantityPerPackage = _text()
    multiplier = _text()
    percentage = _text()
    fixedAmountPerEvent = _text()
    minimumAmount = _text()
    maximumAmount = _text()
    discountPercentage = _text()
    discountUsage = _text()
    entitlement = _text()
    usagePeriod = _text()
    issueAfterReset = _text()
    isSoftLimit = forms.BooleanField(required=False)
    staticConfig = _text()
    # what the live preview and the tier buttons read beside the card (not part of it)
    previewQuantity = _text()
    currency = _text()
    tierAction = _text()

    def __init__(self, *args: Any, values: RateCardValues | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.values = values or RateCardValues()

    @classmethod
    def for_card(cls, card: dict[str, Any] | None, *, billing_cadence: str = "") -> RateCardForm:
        """The unbound editor of a saved card, or of a new one (with the plan's cadence when given)."""
        if card is not None:
            return cls(values=values_from_card(card))
        return cls(values=RateCardValues(billing_cadence=billing_cadence) if billing_cadence else None)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        columns = (self._column("tierUpTo"), self._column("tierUnit"), self._column("tierFlat"))
        self.values = values_from_data(data, columns)
        return data

    def _column(self, name: str) -> list[str]:
        """Every value of an input the tier rows repeat (a QueryDict's list, or a plain dict's)."""
        if isinstance(self.data, QueryDict):
            return self.data.getlist(name)
        value = self.data.get(name) or []
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]

    def add_domain_error(self, exc: DomainError, *, prefix: str = "rateCard") -> None:
        """A tier's error goes on its row; the rest next to the input `FIELD_FOR_PATH` names."""
        rest: list[dict[str, str]] = []
        for item in domain_error_items(exc):
            name = item.get("name") or ""
            name = "" if name == prefix else name.removeprefix(prefix + ".")
            tier = _TIER_PATH.match(name)
            if tier and int(tier.group(1)) < len(self.values.tiers):
                row = self.values.tiers[int(tier.group(1))]
                row.errors.setdefault(_TIER_INPUT[tier.group(2)], item["reason"])
            else:
                rest.append({"name": name, "reason": item["reason"]})
        if rest:
            add_domain_error(self, ValidationFailed(exc.detail, errors=rest), fields=FIELD_FOR_PATH)
