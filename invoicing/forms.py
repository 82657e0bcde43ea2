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
