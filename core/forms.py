"""Console forms for tenancy writes."""

from __future__ import annotations

from django import forms

from core.models import Role


class InvitationForm(forms.Form):
    email = forms.EmailField(max_length=254)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class SignupForm(forms.Form):
    password = forms.CharField(widget=forms.PasswordInput, max_length=128, strip=False)
    password_again = forms.CharField(widget=forms.PasswordInput, max_length=128, strip=False)

    def clean(self) -> dict:
        data = super().clean() or {}
        if data.get("password") and data.get("password") != data.get("password_again"):
            self.add_error("password_again", "The two passwords differ.")
        return data
