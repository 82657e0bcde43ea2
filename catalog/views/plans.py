"""What only a plan has in the console: phases, links to add-ons, and the side-by-side version compare."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from catalog import selectors, services, summaries
from catalog.forms import AddonLinkForm, PhaseForm
from catalog.models import PlanVersion
from catalog.views.common import EDIT, draft_edit, draft_get, form_write, version_url
from catalog.views.versions import detail_page
from core.console import console_view
from core.http import ConsoleRequest


def _plan_form_post(
    request: ConsoleRequest,
    key: str,
    version: int,
    form: forms.Form,
    write: Callable[[PlanVersion, dict[str, Any]], PlanVersion],
    *,
    section: str,
    done: Callable[[dict[str, Any]], str],
) -> HttpResponse:
    """A form of the plan's version page (`section`: "phase", "addon"): `write(draft, cleaned_data)`, then back
    to the version page, or the page again (400) with the form as typed and its errors."""
    plan = draft_get(request, "plan", key, version)
    if isinstance(plan, HttpResponse):
        return plan
    saved, errors = form_write(form, lambda data: write(plan, data))
    if saved is None:
        return detail_page(
            request, plan, 400, **{f"{section}_errors": errors, f"{section}_form": request.POST}
        )
    messages.success(request, done(form.cleaned_data))
    return redirect(version_url(saved))


@require_POST
@console_view(min_role=EDIT)
def phase_add(request: ConsoleRequest, key: str, version: int) -> HttpResponse:
    def add(plan: PlanVersion, phase: dict[str, Any]) -> PlanVersion:
        # New phases go before the open-ended last phase (a trial, an intro price) unless open-ended.
        before_last = phase["duration"] and plan.phases and not plan.phases[-1].get("duration")
        return services.phase_add(
            organization=request.organization,
            plan_id=plan.id,
            phase=phase,
            position=len(plan.phases) - 1 if before_last else None,
            actor=request.user,
        )

    return _plan_form_post(
        request,
        key,
        version,
        PhaseForm(request.POST),
        add,
        section="phase",
        done=lambda data: f"Phase {data['name']} added.",
    )


@require_POST
@console_view(min_role=EDIT)
def phase_remove(request: ConsoleRequest, key: str, version: int, phase_key: str) -> HttpResponse:
    return draft_edit(
        request, "plan", key, version, services.phase_remove, "Phase removed.", phase_key=phase_key
    )


@require_POST
@console_view(min_role=EDIT)
def plan_addon_link(request: ConsoleRequest, key: str, version: int) -> HttpResponse:
    return _plan_form_post(
        request,
        key,
        version,
        AddonLinkForm(request.POST),
        lambda plan, data: services.plan_addon_link(
            organization=request.organization,
            plan_id=plan.id,
            addon_key=data["addonKey"],
            max_quantity=data["maxQuantity"],
            actor=request.user,
        ),
        section="addon",
        done=lambda data: f"Add-on {data['addonKey']} linked.",
    )


@require_POST
@console_view(min_role=EDIT)
def plan_addon_unlink(request: ConsoleRequest, key: str, version: int, addon_key: str) -> HttpResponse:
    done = f"Add-on {addon_key} unlinked."
    return draft_edit(request, "plan", key, version, services.plan_addon_unlink, done, addon_key=addon_key)


@console_view()
def plan_compare(request: ConsoleRequest, key: str) -> HttpResponse:
    versions = list(selectors.plan_versions(organization=request.organization, plan_key=key))
    if not versions:
        raise Http404("No such plan.")
    by_number = {v.version: v for v in versions}

    def pick(name: str, default: PlanVersion) -> PlanVersion:
        raw = request.GET.get(name, "")
        return by_number.get(int(raw), default) if raw.isdigit() else default

    right = pick("b", versions[0])
    left = pick("a", versions[1] if len(versions) > 1 else versions[0])
    settings_rows, rows = summaries.version_rows(left, right)
    context = {
        "key": key,
        "versions": versions,
        "left": left,
        "right": right,
        "settings_rows": settings_rows,
        "rows": rows,
    }
    return render(request, "console/catalog/plan_compare.html", context)
