"""Console forms for invoicing writes: typed values cleaned into the service's arguments."""

from __future__ import annotations

from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

from django import forms


def _positive(amount: Decimal) -> Decimal:
    if amount <= 0:
        raise forms.ValidationError("Enter an amount greater than zero.")
    return amount


class CreditForm(forms.Form):
    """A money credit for a customer (`invoicing.credits.customer_credit_create`)."""

    amount = forms.DecimalField(
        max_digits=30, decimal_places=12, widget=forms.NumberInput(attrs={"step": "any", "min": "0"})
    )
    description = forms.CharField(max_length=256, required=False, initial="Credit")
    expires_on = forms.DateField(required=False, label="Expires on (optional)")
    priority = forms.IntegerField(min_value=0, max_value=255, initial=1)

    def clean_amount(self) -> Decimal:
        return _positive(self.cleaned_data["amount"])

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        expires = data.get("expires_on")
        return {
            "amount": data["amount"],
            "description": data.get("description") or "Credit",
            "expires_at": datetime.combine(expires, time.min, tzinfo=UTC) if expires else None,
            "priority": data["priority"] if data.get("priority") is not None else 1,
        }


class PaymentForm(forms.Form):
    """A payment received outside Stripe that settles an invoice: amount, date, reference."""

    amount = forms.DecimalField(
        max_digits=30, decimal_places=12, widget=forms.NumberInput(attrs={"step": "any", "min": "0"})
    )
    paid_on = forms.DateField(label="Paid on")
    reference = forms.CharField(
        max_length=256, required=False, label="Reference (bank transfer id, cheque no.)"
    )

    def clean_amount(self) -> Decimal:
        return _positive(self.cleaned_data["amount"])

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "amount": data["amount"],
            "paid_at": datetime.combine(data["paid_on"], time(12), tzinfo=UTC),
            "reference": data.get("reference") or "",
        }


class SupplierForm(forms.Form):
    """The supplier details printed on every invoice issued from now on (`invoicing_settings_update`)."""

    supplier_name = forms.CharField(max_length=200, required=False, label="Legal name")
    supplier_address = forms.CharField(
        max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Address"
    )
    supplier_tax_id = forms.CharField(max_length=64, required=False, label="Tax id (e.g. VAT number)")
    supplier_email = forms.EmailField(max_length=320, required=False, label="Billing e-mail")
    payment_instructions = forms.CharField(
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Payment instructions (bank details)",
    )


# The forms below only shape what was typed; the services validate it (every problem at once, named as
# the API names it), so the console and the API refuse the same values with the same reasons.
class TypedValuesForm(forms.Form):
    """Every field is optional: the form never refuses, `values` is what was typed as the service's
    arguments (`service_kwargs`)."""

    @classmethod
    def values(cls, data: Any) -> dict[str, Any]:
        form = cls(data)
        form.is_valid()  # cleans what it can; the service says what is wrong
        return form.service_kwargs()

    def service_kwargs(self) -> dict[str, Any]:
        raise NotImplementedError


class StripeForm(TypedValuesForm):
    """Secrets are write-only: an empty field keeps the stored value."""

    secret_key = forms.CharField(max_length=255, required=False, strip=True)
    webhook_secret = forms.CharField(max_length=255, required=False, strip=True)
    api_version = forms.CharField(max_length=64, required=False, strip=True)
    enabled = forms.BooleanField(required=False)

    def service_kwargs(self) -> dict[str, Any]:
        d = self.cleaned_data
        return {
            "secret_key": d.get("secret_key") or None,
            "webhook_secret": d.get("webhook_secret") or None,
            "api_version": d.get("api_version") or None,
            "enabled": d.get("enabled", False),
        }


INVOICE_FORM_FIELDS = ("collection_delay_seconds", "draft_period_seconds", "due_days", "number_prefix")


class InvoiceSettingsForm(TypedValuesForm):
    collection_delay_seconds = forms.CharField(required=False)
    draft_period_seconds = forms.CharField(required=False)
    due_days = forms.CharField(required=False)
    number_prefix = forms.CharField(max_length=64, required=False)
    auto_advance = forms.BooleanField(required=False)

    def service_kwargs(self) -> dict[str, Any]:
        d = self.cleaned_data
        return {
            **{f: d.get(f, "") for f in INVOICE_FORM_FIELDS},
            "auto_advance": d.get("auto_advance", False),
        }


class TaxRateForm(TypedValuesForm):
    name = forms.CharField(max_length=200, required=False, strip=False)
    percentage = forms.CharField(max_length=32, required=False)
    behavior = forms.ChoiceField(
        choices=[("exclusive", "exclusive"), ("inclusive", "inclusive")], required=False
    )
    is_default = forms.BooleanField(required=False)

    def service_kwargs(self) -> dict[str, Any]:
        d = self.cleaned_data
        return {
            "name": d.get("name", ""),
            "percentage": d.get("percentage", ""),
            "inclusive": d.get("behavior") == "inclusive",
            "is_default": d.get("is_default", False),
        }


class WebhookEndpointForm(forms.Form):
    url = forms.CharField(max_length=2048, required=False)
    event_types = forms.MultipleChoiceField(choices=[], required=False)
    description = forms.CharField(max_length=500, required=False, strip=False)

    def __init__(self, *args: Any, event_types: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["event_types"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(t, t) for t in event_types]


class InvoiceOperationForm(forms.Form):
    """An operation that takes nothing but the invoice (advance, approve, void, retry the Stripe push): the
    form holds the reasons the service refuses it (`core.forms.add_domain_error`), shown as messages."""


class WebhookResendForm(forms.Form):
    """Resend one delivery: nothing to type; holds the service's refusal (`add_domain_error`)."""
