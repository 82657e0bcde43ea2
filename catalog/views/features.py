"""Features in the console: the list, create, archive (one view each)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from catalog import selectors, services
from catalog.forms import FeatureArchiveForm, FeatureForm
from catalog.views.common import EDIT, form_write
from core.console import console_view
from core.errors import DomainError
from core.http import ConsoleRequest
from metering.selectors import meter_list


def _page(request: ConsoleRequest, form: dict[str, Any], errors: dict[str, str]) -> HttpResponse:
    org = request.organization
    context = {
        "form": form,
        "errors": errors,
        "features": selectors.feature_list(organization=org, include_archived=True),
        "meters": [meter.slug for meter in meter_list(organization=org)],
    }
    return render(request, "console/catalog/features.html", context, status=400 if errors else 200)


@console_view()
def feature_list(request: ConsoleRequest) -> HttpResponse:
    return _page(request, {}, {})


@require_POST
@console_view(min_role=EDIT)
def feature_create(request: ConsoleRequest) -> HttpResponse:
    form = FeatureForm(request.POST)
    feature, errors = form_write(
        form,
        lambda data: services.feature_create(
            organization=request.organization,
            key=data["key"],
            name=data["name"],
            meter_slug=data["meterSlug"] or None,
            meter_group_by_filters=data["filters"],
            actor=request.user,
        ),
        fields={"meterGroupByFilters": "filters"},
    )
    if feature is None:
        return _page(request, request.POST, errors)
    messages.success(request, f"Feature {feature.key} created.")
    return redirect("catalog_console_features")


@require_POST
@console_view(min_role=EDIT)
def feature_archive(request: ConsoleRequest) -> HttpResponse:
    form = FeatureArchiveForm(request.POST)
    form.is_valid()
    try:
        services.feature_delete(
            organization=request.organization, id_or_key=form.cleaned_data["feature"], actor=request.user
        )
        messages.success(request, "Feature removed (archived where plans use it).")
    except DomainError as exc:
        messages.error(request, exc.detail)
    return redirect("catalog_console_features")
