"""Console forms for billing writes: what a product team types, cleaned into the service's arguments."""

from __future__ import annotations

from typing import Any

from django import forms

ADDRESS_FIELDS = {  # form field -> key of the billing address document (the API's names)
    "line1": "line1",
    "line2": "line2",
    "postal_code": "postalCode",
    "city": "city",
    "state": "state",
    "country": "country",
}


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.replace(",", "\n").splitlines() if part.strip()]


class CustomerDetailsForm(forms.Form):
    """Name, billing e-mail, address, tax ids and subjects of a customer (the usage attribution)."""

    name = forms.CharField(max_length=256)
    primary_email = forms.EmailField(max_length=320, required=False, label="Billing e-mail")
    line1 = forms.CharField(max_length=256, required=False, label="Address line 1")
    line2 = forms.CharField(max_length=256, required=False, label="Address line 2")
    postal_code = forms.CharField(max_length=64, required=False, label="Postal code")
    city = forms.CharField(max_length=128, required=False)
    state = forms.CharField(max_length=128, required=False, label="State or region")
    country = forms.CharField(max_length=2, min_length=2, required=False, label="Country (ISO code)")
    tax_ids = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Tax ids (one per line, type:value, e.g. eu_vat:DE123456789)",
    )
    subjects = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Subjects (one per line or comma-separated)",
    )

    @classmethod
    def initial_for(cls, *, customer: Any, subjects: list[str]) -> dict[str, Any]:
        address = customer.billing_address or {}
        initial = {field: address.get(key) or "" for field, key in ADDRESS_FIELDS.items()}
        tax_lines = []
        for t in customer.tax_ids or []:
            if isinstance(t, dict):
                tax_lines.append(
                    f"{t.get('type')}:{t.get('value')}" if t.get("type") else str(t.get("value"))
                )
            else:
                tax_lines.append(str(t))
        return {
            **initial,
            "name": customer.name,
            "primary_email": customer.primary_email,
            "tax_ids": "\n".join(tax_lines),
            "subjects": "\n".join(subjects),
        }

    def clean_country(self) -> str:
        return self.cleaned_data["country"].strip().upper()

    def clean_tax_ids(self) -> list[dict[str, str]]:
        out = []
        for line in self.cleaned_data["tax_ids"].splitlines():
            line = line.strip()
            if not line:
                continue
            kind, sep, value = line.partition(":")
            if not sep:
                kind, value = "", kind
            if not value.strip():
                raise forms.ValidationError(f"Give a value after the type in {line!r}.")
            out.append(
                {"type": kind.strip(), "value": value.strip()} if kind.strip() else {"value": value.strip()}
            )
        return out

    def clean_subjects(self) -> list[str]:
        subjects = _split(self.cleaned_data["subjects"])
        too_long = [s for s in subjects if len(s) > 256]
        if too_long:
            raise forms.ValidationError("A subject is at most 256 characters.")
        return list(dict.fromkeys(subjects))

    def service_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of `billing.services.customer_update`."""
        data = self.cleaned_data
        address = {key: data[field] for field, key in ADDRESS_FIELDS.items() if data[field]}
        return {
            "name": data["name"].strip(),
            "primary_email": data["primary_email"],
            "billing_address": address or None,
            "tax_ids": data["tax_ids"],
            "subject_keys": data["subjects"],
        }


class CustomerCreateForm(forms.Form):
    name = forms.CharField(max_length=256)
    key = forms.CharField(max_length=256, required=False)
    email = forms.EmailField(max_length=320, required=False)
    currency = forms.CharField(max_length=3, required=False)
    subjects = forms.CharField(required=False)

    def service_kwargs(self) -> dict[str, Any]:
        d = self.cleaned_data
        return {
            "name": d["name"].strip(),
            "key": d["key"].strip() or None,
            "primary_email": d["email"].strip(),
            "currency": d["currency"].strip().upper(),
            "subject_keys": _split(d["subjects"]),
        }


TIMINGS = [("immediate", "now"), ("next_billing_cycle", "at period end")]


class _TimingMixin(forms.Form):
    timing = forms.ChoiceField(choices=TIMINGS, required=False)

    def clean_timing(self) -> str:
        return self.cleaned_data["timing"] or "immediate"


class SubscriptionAssignForm(forms.Form):
    plan = forms.CharField(max_length=256, error_messages={"required": "Choose a plan."})


class SubscriptionChangeForm(_TimingMixin):
    plan = forms.CharField(max_length=256, required=False)  # an unknown or empty key: the service says why


class SubscriptionCancelForm(_TimingMixin):
    pass


class SubscriptionUnscheduleForm(forms.Form):
    """No fields: the customer's scheduled cancelation is undone."""
