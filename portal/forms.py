"""Console forms owned by the portal."""

from __future__ import annotations

from datetime import timedelta

from django import forms

LIFETIMES = [("1", "1 day"), ("7", "7 days"), ("30", "30 days")]


class PortalLinkForm(forms.Form):
    """A magic link to a customer's portal, valid for a chosen number of days (at most 30)."""

    days = forms.TypedChoiceField(choices=LIFETIMES, coerce=int, initial="7", label="Valid for")

    def expires_in(self) -> timedelta:
        return timedelta(days=self.cleaned_data["days"])


class PlanChangeForm(forms.Form):
    """A customer's pick among the plans the organization offers in the portal."""

    plan = forms.ChoiceField(error_messages={"invalid_choice": "Pick one of the plans offered."})

    def __init__(self, *args, plan_keys: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        plan = self.fields["plan"]
        assert isinstance(plan, forms.ChoiceField)
        plan.choices = [(k, k) for k in plan_keys]


class PortalSettingsForm(forms.Form):
    """Console: whether customers may change plan and cancel in the portal, and which plans they see."""

    self_service = forms.BooleanField(
        required=False, label="Customers may change plan and cancel at the end of the period"
    )
    plan_keys = forms.MultipleChoiceField(required=False, label="Plans offered")

    def __init__(self, *args, plan_choices: list[tuple[str, str]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        keys = self.fields["plan_keys"]
        assert isinstance(keys, forms.MultipleChoiceField)
        keys.choices = plan_choices

    def clean(self) -> dict:
        data = super().clean() or {}
        if data.get("self_service") and not data.get("plan_keys"):
            self.add_error("plan_keys", "Pick the plans customers may change to.")
        return data


class CancelForm(forms.Form):
    """A customer's cancelation at the end of the period: no field, the service's refusal lands on it."""
