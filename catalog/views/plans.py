"""What only a plan has in the console: phases, links to add-ons, and the side-by-side version compare."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from catalog import selectors, services, summaries
from catalog.forms import AddonLinkForm, PhaseForm
from catalog.models import PlanVersion
from catalog.views.common import EDIT, draft_action, draft_get, form_write, version_url
from catalog.views.versions import detail_page
from core.console import console_view
from core.http import ConsoleRequest


@require_POST
@console_view(min_role=EDIT)
def phase_add(request: ConsoleRequest, key: str, version: int) -> HttpResponse:
    plan = draft_get(request, "plan", key, version)
    if isinstance(plan, HttpResponse):
        return plan

    def add(phase: dict[str, str | None]) -> PlanVersion:
        # New phases go before the open-ended last phase (a trial, an intro price) unless open-ended.
        before_last = phase["duration"] and plan.phases and not plan.phases[-1].get("duration")
        return services.phase_add(
            organization=request.organization,
            plan_id=plan.id,
            phase=phase,
            position=len(plan.phases) - 1 if before_last else None,
            actor=request.user,
        )

    form = PhaseForm(request.POST)
    saved, errors = form_write(form, add)
    if saved is None:
        return detail_page(request, plan, 400, phase_errors=errors, phase_form=request.POST)
    messages.success(request, f"Phase {form.cleaned_data['name']} added.")
    return redirect(version_url(saved))


@require_POST
@console_view(min_role=EDIT)
def phase_remove(request: ConsoleRequest, key: str, version: int, phase_key: str) -> HttpResponse:
    return draft_action(
        request,
        "plan",
        key,
        version,
        lambda plan: services.phase_remove(
            organization=request.organization, plan_id=plan.id, phase_key=phase_key, actor=request.user
        ),
        "Phase removed.",
    )


@require_POST
@console_view(min_role=EDIT)
def plan_addon_link(request: ConsoleRequest, key: str, version: int) -> HttpResponse:
    plan = draft_get(request, "plan", key, version)
    if isinstance(plan, HttpResponse):
        return plan
    form = AddonLinkForm(request.POST)
    saved, errors = form_write(
        form,
        lambda data: services.plan_addon_link(
            organization=request.organization,
            plan_id=plan.id,
            addon_key=data["addonKey"],
            max_quantity=data["maxQuantity"],
            actor=request.user,
        ),
    )
    if saved is None:
        return detail_page(request, plan, 400, addon_errors=errors, addon_form=request.POST)
    messages.success(request, f"Add-on {form.cleaned_data['addonKey']} linked.")
    return redirect(version_url(saved))


@require_POST
@console_view(min_role=EDIT)
def plan_addon_unlink(request: ConsoleRequest, key: str, version: int, addon_key: str) -> HttpResponse:
    return draft_action(
        request,
        "plan",
        key,
        version,
        lambda plan: services.plan_addon_unlink(
            organization=request.organization, plan_id=plan.id, addon_key=addon_key, actor=request.user
        ),
        f"Add-on {addon_key} unlinked.",
    )


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
