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
