"""Console forms for tenancy writes, and the one helper that puts domain errors onto form fields."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS

from core.errors import DomainError, ValidationFailed
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


# --- domain errors onto form fields ----------------------------------------------------------------
# Services raise DomainError (core/errors.py) whose `errors` name fields by their API path
# (`phase.key`, `rateCard.price.amount`, `meterGroupByFilters.model`). A console form shows each reason
# next to the input it concerns: `add_domain_error` puts them on a Django form, `error_map` reads them
# back as {field: first reason} ("general" for the rest) for templates that show one message per input.
# `form_write` is the whole console write: validate, call the service, put its domain error on the form.


def domain_error_items(exc: DomainError) -> list[dict[str, str]]:
    """The error's [{name, reason}] list (one unnamed item when the error names no field)."""
    if isinstance(exc, ValidationFailed) and exc.errors:
        return exc.errors
    return [{"name": exc.field or "", "reason": exc.detail}]


def add_domain_error(form: forms.Form, exc: DomainError, *, fields: Mapping[str, str] | None = None) -> None:
    """Add `exc`'s reasons to `form`: a name listed in `fields` (path, or its first segment -> form field)
    goes there, else the path's last segment when the form has such a field, else the form's non-field
    errors."""
    for item in domain_error_items(exc):
        name = item.get("name") or ""
        head = name.split(".", 1)[0].split("[", 1)[0]
        target: str | None = (fields or {}).get(name) or (fields or {}).get(head)
        if target is None:
            last = name.rsplit(".", 1)[-1]
            target = last if last in form.fields else None
        form.add_error(target, item["reason"])


def form_write(
    form: forms.Form, write: Callable[[], Any], *, fields: Mapping[str, str] | None = None
) -> bool:
    """Call `write()` when `form` is valid; a DomainError it raises goes onto the form (`add_domain_error`
    with `fields`). True when the write ran; False leaves the reasons in `form.errors`."""
    if not form.is_valid():
        return False
    try:
        write()
    except DomainError as exc:
        add_domain_error(form, exc, fields=fields)
        return False
    return True


def error_map(form: forms.Form) -> dict[str, str]:
    """{field: its first error} with non-field errors under "general" (one message per input)."""
    out: dict[str, str] = {}
    for name, errors in form.errors.items():
        out.setdefault("general" if name == NON_FIELD_ERRORS else name, str(errors[0]))
    return out
