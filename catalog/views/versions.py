"""Plans and add-ons in the console, one view per operation for both (the URL names the kind): the list
and create, a version's page, its settings, publish with a confirmation diff, archive, next version,
delete a draft."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from catalog import rate_card_json, selectors, summaries
from catalog.forms import AddonCreateForm, AddonSettingsForm, PlanCreateForm, PlanSettingsForm
from catalog.models import AddonVersion, InstanceType, PlanVersion, VersionStatus
from catalog.services import versions
from catalog.views.common import (
    EDIT,
    VERSIONED,
    draft_get,
    form_write,
    version_action,
    version_get,
    version_links,
    version_url,
    version_write,
)
from core.console import console_view
from core.errors import DomainError
from core.forms import domain_error_items
from core.http import ConsoleRequest

CREATE_FORMS: dict[str, type[forms.Form]] = {"plan": PlanCreateForm, "addon": AddonCreateForm}
SETTINGS_FORMS: dict[str, type[forms.Form]] = {"plan": PlanSettingsForm, "addon": AddonSettingsForm}


# --- list and create ------------------------------------------------------------------------------
def _list_page(
    request: ConsoleRequest, kind: str, form: Any = None, errors: dict[str, str] | None = None
) -> HttpResponse:
    org = request.organization
    rows: dict[str, dict[str, Any]] = {}
    for v in VERSIONED[kind].list_versions(organization=org):  # key, newest first: one query for the page
        row = rows.setdefault(
            v.key, {"key": v.key, "name": v.name, "latest": v, "published": None, "draft": None, "count": 0}
        )
        row["count"] += 1
        if v.status == VersionStatus.PUBLISHED:
            row["published"] = v
        elif v.status == VersionStatus.DRAFT:
            row["draft"] = v
    if kind == "plan":
        defaults = {"currency": org.default_currency, "billingCadence": "P1M"}
        context = {"plans": list(rows.values()), "cadences": rate_card_json.PLAN_CADENCES}
        template = "console/catalog/plan_list.html"
    else:
        defaults = {"currency": org.default_currency, "instanceType": InstanceType.SINGLE}
        context = {"addons": list(rows.values()), "instance_types": InstanceType.choices}
        template = "console/catalog/addon_list.html"
    context.update(form=form if form is not None else defaults, errors=errors or {})
    return render(request, template, context, status=400 if errors else 200)


@console_view()
def version_list(request: ConsoleRequest, kind: str) -> HttpResponse:
    return _list_page(request, kind)


def _new_document(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """A new version's document from the create form: a plan starts with one open-ended phase."""
    body = {k: v for k, v in data.items() if k != "key"}
    if kind == "plan":
        return {**body, "phases": [{"key": "default", "name": "Standard", "duration": None, "rateCards": []}]}
    return {**body, "rateCards": []}


@require_POST
@console_view(min_role=EDIT)
def version_create(request: ConsoleRequest, kind: str) -> HttpResponse:
    created, errors = form_write(
        CREATE_FORMS[kind](request.POST),
        lambda data: versions.version_create(
            VERSIONED[kind].service,
            organization=request.organization,
            key=data["key"],
            data=_new_document(kind, data),
            actor=request.user,
        ),
    )
    if created is None:
        return _list_page(request, kind, request.POST, errors)
    messages.success(
        request,
        f"{VERSIONED[kind].service.noun} {created.key} created as a draft. Add rate cards, then publish.",
    )
    return redirect(version_url(created))


# --- a version's page and its settings ------------------------------------------------------------
def plan_context(request: ConsoleRequest, plan: PlanVersion) -> dict[str, Any]:
    org = request.organization
    all_versions = list(selectors.plan_versions(organization=org, plan_key=plan.key))
    editable = plan.status == VersionStatus.DRAFT and request.membership.has_role(EDIT)
    phases = []
    for phase in plan.phases:
        cards = [
            {
                **card,
                "summary": summaries.price_summary(card.get("price")),
                "line": summaries.card_summary(card),
            }
            for card in phase["rateCards"]
        ]
        phases.append({**phase, "cards": cards})
    return {
        "plan": plan,
        "versions": all_versions,
        "has_draft": any(v.status == VersionStatus.DRAFT for v in all_versions),
        "editable": editable,
        "phases": phases,
        "history": selectors.catalog_history(organization=org, object_type="plan", object_ids=[plan.key])[
            :50
        ],
        "cadences": rate_card_json.PLAN_CADENCES,
        "linkable_addons": (
            list(selectors.addon_list(organization=org, status=VersionStatus.PUBLISHED)) if editable else []
        ),
        "addon_errors": {},
        "settings_errors": {},
        "phase_errors": {},
    }


def addon_context(request: ConsoleRequest, addon: AddonVersion) -> dict[str, Any]:
    org = request.organization
    all_versions = list(selectors.addon_list(organization=org, key=addon.key))
    return {
        "addon": addon,
        "versions": all_versions,
        "has_draft": any(v.status == VersionStatus.DRAFT for v in all_versions),
        "editable": addon.status == VersionStatus.DRAFT and request.membership.has_role(EDIT),
        "cards": [{**card, "line": summaries.card_summary(card)} for card in addon.rate_cards],
        "history": selectors.catalog_history(organization=org, object_type="addon", object_ids=[addon.key])[
            :50
        ],
        "instance_types": InstanceType.choices,
        "settings_errors": {},
    }


def detail_page(request: ConsoleRequest, item: Any, status: int = 200, **extra: Any) -> HttpResponse:
    if isinstance(item, PlanVersion):
        context, template = plan_context(request, item), "console/catalog/plan_detail.html"
    else:
        context, template = addon_context(request, item), "console/catalog/addon_detail.html"
    context.update(extra)
    return render(request, template, context, status=status)


@console_view()
def version_detail(request: ConsoleRequest, kind: str, key: str) -> HttpResponse:
    raw = request.GET.get("version")
    return detail_page(request, version_get(request, kind, key, int(raw) if raw and raw.isdigit() else None))


@require_POST
@console_view(min_role=EDIT)
def version_settings(request: ConsoleRequest, kind: str, key: str, version: int) -> HttpResponse:
    draft = draft_get(request, kind, key, version)
    if isinstance(draft, HttpResponse):
        return draft
    spec = VERSIONED[kind].service
    saved, errors = form_write(
        SETTINGS_FORMS[kind](request.POST),
        lambda data: versions.version_update(
            spec,
            organization=request.organization,
            version_id=draft.id,
            data={**spec.to_document(draft), **data},
            actor=request.user,
        ),
    )
    if saved is None:
        return detail_page(request, draft, 400, settings_errors=errors, settings_form=request.POST)
    messages.success(request, f"{VERSIONED[kind].service.noun} settings saved.")
    return redirect(version_url(saved))


# --- publish, archive, next version, delete a draft -----------------------------------------------
def _publish_context(current: Any, draft: Any, errors: list[dict[str, str]]) -> dict[str, Any]:
    """The publish confirmation: what changes versus the published version."""
    settings_rows, rows = summaries.version_rows(current, draft)
    return {
        "plan": draft,
        "current": current,
        "settings_rows": [r for r in settings_rows if r.change != "same"],
        "rows": [r for r in rows if r.change != "same"],
        "errors": errors,
        **version_links(draft),
    }


PUBLISHED = {"plan": " New subscriptions use it.", "addon": ""}
ARCHIVED = {"plan": "new subscriptions can no longer choose it", "addon": "plans can no longer link it"}


@console_view(min_role=EDIT)
def version_publish(request: ConsoleRequest, kind: str, key: str, version: int) -> HttpResponse:
    draft = draft_get(request, kind, key, version)
    if isinstance(draft, HttpResponse):
        return draft
    spec = VERSIONED[kind]
    current = spec.list_versions(organization=request.organization, key=draft.key, status="published").first()
    errors: list[dict[str, str]] = []
    if request.method == "POST":
        try:
            version_write(request, versions.version_publish, draft)
            messages.success(
                request, f"Version {draft.version} of {draft.key} is published.{PUBLISHED[kind]}"
            )
            return redirect(version_url(draft))
        except DomainError as exc:
            errors = domain_error_items(exc)
    context = _publish_context(current, draft, errors)
    return render(request, "console/catalog/plan_publish.html", context, status=400 if errors else 200)


@require_POST
@console_view(min_role=EDIT)
def version_archive(request: ConsoleRequest, kind: str, key: str, version: int) -> HttpResponse:
    return version_action(
        request,
        kind,
        key,
        version,
        lambda item: version_write(request, versions.version_archive, item),
        "Version {item.version} archived: " + ARCHIVED[kind] + ".",
    )


@require_POST
@console_view(min_role=EDIT)
def version_next(request: ConsoleRequest, kind: str, key: str) -> HttpResponse:
    source = version_get(request, kind, key)  # 404 for another organization's key
    spec = VERSIONED[kind]
    try:
        draft = versions.version_next(
            spec.service, organization=request.organization, source=source, by_key=True, actor=request.user
        )
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect(spec.page, key=key)
    messages.success(request, f"Draft version {draft.version} created from the latest version.")
    return redirect(version_url(draft))


@require_POST
@console_view(min_role=EDIT)
def version_delete_draft(request: ConsoleRequest, kind: str, key: str, version: int) -> HttpResponse:
    draft = version_get(request, kind, key, version)
    spec = VERSIONED[kind]
    try:
        version_write(request, versions.version_delete, draft)
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect(version_url(draft))
    messages.success(request, f"Draft version {version} deleted.")
    if spec.list_versions(organization=request.organization, key=key).exists():
        return redirect(spec.page, key=key)
    return redirect(spec.list_page)
