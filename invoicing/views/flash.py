"""Console forms whose outcome is told by a flash message on the page the browser is sent back to (the
buttons of the invoice and webhook pages)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest

from core.forms import form_write


def flash_form_errors(request: HttpRequest, form: forms.Form) -> None:
    """One error message with every reason of `form` (its fields' and the domain's)."""
    messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))


def submit_and_flash(request: HttpRequest, form: forms.Form, write: Callable[[], Any], done: str) -> None:
    """Call `write` when `form` is valid; flash `done`, or the form's errors and the domain error `write`
    raised (put on the form by `core.forms.add_domain_error`)."""
    if not form_write(form, write):
        flash_form_errors(request, form)
    else:
        messages.success(request, done)
