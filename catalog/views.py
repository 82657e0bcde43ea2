"""The no-code pricing editor (console, htmx): features, plans, phases, rate cards, live preview,
publish with a confirmation diff, archive, compare versions, audit history.

Viewers read; pricing editors (and above) edit. Domain errors become inline messages next to the
field (status 400), never a 500. A published or archived version renders read-only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from catalog import editor, selectors, services
from catalog.models import AddonVersion, InstanceType, PlanVersion, VersionStatus
from catalog.pricing import PriceInvalid, price_preview
from core.console import console_view
from core.errors import DomainError, NotFound, ValidationFailed
from core.http import ConsoleRequest
from core.models import Role

EDIT = Role.PRICING_EDITOR


def _errors_of(exc: DomainError) -> list[dict[str, str]]:
    if isinstance(exc, ValidationFailed) and exc.errors:
        return exc.errors
    return [{"name": exc.field or "", "reason": exc.detail}]


def _field_errors(exc: DomainError) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in _errors_of(exc):
        out.setdefault(e["name"] or "general", e["reason"])
    return out


# Plans and add-ons are versioned the same way; these helpers serve both.
_VERSIONED: dict[str, tuple[Any, Any, str]] = {
    "plan": (selectors.plan_list, selectors.plan_get, "No such plan."),
    "addon": (selectors.addon_list, selectors.addon_get, "No such add-on."),
}


def _version(request: ConsoleRequest, kind: str, key: str, version: int | None = None) -> Any:
    """The requested version, or (no version given) the draft if there is one, else the newest."""
    list_versions, get_version, missing = _VERSIONED[kind]
    try:
        if version is None:
            draft = list_versions(organization=request.organization, key=key, status="draft").first()
            if draft is not None:
                return draft
        return get_version(organization=request.organization, id_or_key=key, version=version)
    except NotFound:
        from django.http import Http404

        raise Http404(missing) from None


def _version_url(item: PlanVersion | AddonVersion) -> str:
    name = "catalog_console_plan" if isinstance(item, PlanVersion) else "catalog_console_addon"
    return reverse(name, args=[item.key]) + f"?version={item.version}"


def _draft(request: ConsoleRequest, kind: str, key: str, version: int) -> Any:
    """The draft version, or a redirect back with a message when that version is read-only."""
    item = _version(request, kind, key, version)
    if item.status != VersionStatus.DRAFT:
        messages.error(
            request, f"Version {item.version} is {item.status} and read-only. Create a new version to edit."
        )
        return redirect(_version_url(item))
    return item


# --- features -------------------------------------------------------------------------------------
def _draft_action(
    request: ConsoleRequest, kind: str, key: str, version: int, action: Callable[[Any], object], done: str
) -> HttpResponse:
    """A console POST that changes a draft version: run `action(draft)`, flash `done` or the domain error,
    and go back to the version page."""
    draft = _draft(request, kind, key, version)
    if isinstance(draft, HttpResponse):
        return draft
    try:
        action(draft)
        messages.success(request, done)
    except DomainError as exc:
        messages.error(request, exc.detail)
    return redirect(_version_url(draft))


@console_view()
def feature_list(request: ConsoleRequest) -> HttpResponse:
    org = request.organization
    context: dict[str, Any] = {"form": {}, "errors": {}}
    if request.method == "POST":
        if not request.membership.has_role(EDIT):
            return render(
                request, "console/forbidden.html", {"needed": Role.PRICING_EDITOR.label}, status=403
            )
        post = request.POST
        filters: dict[str, str] = {}
        for part in post.get("filters", "").split(","):
            if "=" in part:
                k, v = part.split("=", 1)
                filters[k.strip()] = v.strip()
        try:
            if post.get("action") == "archive":
                services.feature_delete(
                    organization=org, id_or_key=post.get("feature", ""), actor=request.user
                )
                messages.success(request, "Feature removed (archived where plans use it).")
            else:
                feature = services.feature_create(
                    organization=org,
                    key=post.get("key", "").strip(),
                    name=post.get("name", "").strip(),
                    meter_slug=post.get("meterSlug", "").strip() or None,
                    meter_group_by_filters=filters,
                    actor=request.user,
                )
                messages.success(request, f"Feature {feature.key} created.")
            return redirect("catalog_console_features")
        except DomainError as exc:
            context["errors"] = _field_errors(exc)
            context["form"] = post
    context["features"] = selectors.feature_list(organization=org, include_archived=True)
    context["meters"] = _meter_slugs(org)
    return render(request, "console/catalog/features.html", context, status=400 if context["errors"] else 200)


def _meter_slugs(org: Any) -> list[str]:
    from metering.selectors import meter_list

    return [meter.slug for meter in meter_list(organization=org)]


# --- plans ----------------------------------------------------------------------------------------
@console_view()
def plan_list(request: ConsoleRequest) -> HttpResponse:
    org = request.organization
    context: dict[str, Any] = {
        "form": {"currency": org.default_currency, "billingCadence": "P1M"},
        "errors": {},
    }
    if request.method == "POST":
        if not request.membership.has_role(EDIT):
            return render(
                request, "console/forbidden.html", {"needed": Role.PRICING_EDITOR.label}, status=403
            )
        post = request.POST
        try:
            plan = services.plan_create(
                organization=org,
                key=post.get("key", "").strip(),
                data={
                    "name": post.get("name", "").strip(),
                    "description": post.get("description", "").strip(),
                    "currency": post.get("currency", "").strip().upper(),
                    "billingCadence": post.get("billingCadence", ""),
                    "phases": [{"key": "default", "name": "Standard", "duration": None, "rateCards": []}],
                },
                actor=request.user,
            )
            messages.success(request, f"Plan {plan.key} created as a draft. Add rate cards, then publish.")
            return redirect(_version_url(plan))
        except DomainError as exc:
            context["errors"] = _field_errors(exc)
            context["form"] = post
    versions = list(selectors.plan_list(organization=org))
    plans: dict[str, dict[str, Any]] = {}
    for v in versions:  # ordered by key, newest version first: one query for the whole page
        row = plans.setdefault(
            v.key, {"key": v.key, "name": v.name, "latest": v, "published": None, "draft": None, "count": 0}
        )
        row["count"] += 1
        if v.status == VersionStatus.PUBLISHED:
            row["published"] = v
        elif v.status == VersionStatus.DRAFT:
            row["draft"] = v
    context.update(plans=list(plans.values()), cadences=editor.PLAN_CADENCES)
    return render(
        request, "console/catalog/plan_list.html", context, status=400 if context["errors"] else 200
    )


def _plan_context(request: ConsoleRequest, plan: PlanVersion) -> dict[str, Any]:
    org = request.organization
    versions = list(selectors.plan_versions(organization=org, plan_key=plan.key))
    editable = plan.status == VersionStatus.DRAFT and request.membership.has_role(EDIT)
    phases = []
    for phase in plan.phases:
        cards = [
            {**card, "summary": editor.price_summary(card.get("price")), "line": editor.card_summary(card)}
            for card in phase["rateCards"]
        ]
        phases.append({**phase, "cards": cards})
    history = selectors.catalog_history(organization=org, object_type="plan", object_ids=[plan.key])[:50]
    return {
        "plan": plan,
        "versions": versions,
        "has_draft": any(v.status == VersionStatus.DRAFT for v in versions),
        "editable": editable,
        "phases": phases,
        "history": history,
        "cadences": editor.PLAN_CADENCES,
        "linkable_addons": (
            list(selectors.addon_list(organization=org, status=VersionStatus.PUBLISHED)) if editable else []
        ),
        "addon_errors": {},
    }


@console_view()
def plan_detail(request: ConsoleRequest, key: str) -> HttpResponse:
    version = request.GET.get("version")
    plan = _version(request, "plan", key, int(version) if version and version.isdigit() else None)
    context = _plan_context(request, plan)
    context["settings_errors"] = {}
    context["phase_errors"] = {}
    return render(request, "console/catalog/plan_detail.html", context)


@require_POST
@console_view(min_role=EDIT)
def plan_settings(request: ConsoleRequest, key: str, version: int) -> HttpResponse:
    plan = _draft(request, "plan", key, version)
    if isinstance(plan, HttpResponse):
        return plan
    data = services.plan_to_document(plan)
    for name in ("name", "description", "billingCadence", "currency"):
        data[name] = request.POST.get(name, "").strip()
    try:
        plan = services.plan_update(
            organization=request.organization, plan_id=plan.id, data=data, actor=request.user
        )
        messages.success(request, "Plan settings saved.")
        return redirect(_version_url(plan))
    except DomainError as exc:
        context = _plan_context(request, plan)
        context["settings_errors"] = _field_errors(exc)
        context["settings_form"] = request.POST
        context["phase_errors"] = {}
        return render(request, "console/catalog/plan_detail.html", context, status=400)


@require_POST
@console_view(min_role=EDIT)
def phase_add(request: ConsoleRequest, key: str, version: int) -> HttpResponse:
    plan = _draft(request, "plan", key, version)
    if isinstance(plan, HttpResponse):
        return plan
    post = request.POST
    phase = {
        "key": post.get("key", "").strip(),
        "name": post.get("name", "").strip(),
        "duration": post.get("duration", "").strip() or None,
    }
    # New phases go before the open-ended last phase (a trial, an intro price) unless they are open-ended.
    position = (
        len(plan.phases) - 1
        if phase["duration"] and plan.phases and not plan.phases[-1].get("duration")
        else None
    )
    try:
        services.phase_add(
            organization=request.organization,
            plan_id=plan.id,
            phase=phase,
            position=position,
            actor=request.user,
        )
        messages.success(request, f"Phase {phase['name']} added.")
        return redirect(_version_url(plan))
    except DomainError as exc:
        context = _plan_context(request, plan)
        errors: dict[str, str] = {}
        for name, reason in _field_errors(exc).items():
            short = name.split(".")[-1] if name.startswith(("phase", "phases[")) else "general"
            errors.setdefault(short if short in ("key", "name", "duration") else "general", reason)
        context.update(phase_errors=errors, phase_form=post, settings_errors={})
        return render(request, "console/catalog/plan_detail.html", context, status=400)


@require_POST
@console_view(min_role=EDIT)
def phase_remove(request: ConsoleRequest, key: str, version: int, phase_key: str) -> HttpResponse:
    return _draft_action(
        request,
        "plan",
        key,
        version,
        lambda plan: services.phase_remove(
            organization=request.organization, plan_id=plan.id, phase_key=phase_key, actor=request.user
        ),
        "Phase removed.",
    )


def _features(request: ConsoleRequest) -> list[Any]:
    return list(selectors.feature_list(organization=request.organization))


@console_view(min_role=EDIT)
def rate_card_edit(
    request: ConsoleRequest, key: str, version: int, phase_key: str, card_key: str | None = None
) -> HttpResponse:
    plan = _draft(request, "plan", key, version)
    if isinstance(plan, HttpResponse):
        return plan
    phase = next((p for p in plan.phases if p["key"] == phase_key), None)
    if phase is None:
        from django.http import Http404

        raise Http404("No such phase.")
    existing = next((c for c in phase["rateCards"] if c["key"] == card_key), None) if card_key else None
    if card_key and existing is None:
        from django.http import Http404

        raise Http404("No such rate card.")
    status = 200
    if request.method == "POST":
        form = editor.form_from_post(request.POST)
        try:
            services.rate_card_upsert(
                organization=request.organization,
                plan_id=plan.id,
                phase_key=phase_key,
                rate_card=editor.rate_card_from_form(form),
                replace_key=card_key,
                actor=request.user,
            )
            messages.success(request, f"Rate card {form.name} saved.")
            return redirect(_version_url(plan))
        except DomainError as exc:
            editor.place_errors(form, _errors_of(exc))
            status = 400
    elif existing is not None:
        form = editor.form_from_card(existing)
    else:
        form = editor.RateCardForm(billing_cadence=plan.billing_cadence)
    context = _rate_card_form_context(request, plan, form, card_key, section=phase["name"])
    return render(request, "console/catalog/rate_card_form.html", context, status=status)


def _rate_card_form_context(
    request: ConsoleRequest,
    owner: PlanVersion | AddonVersion,
    form: editor.RateCardForm,
    card_key: str | None,
    *,
    section: str,
) -> dict[str, Any]:
    """The shared rate card editor (plans and add-ons): same form, same live preview."""
    is_plan = isinstance(owner, PlanVersion)
    return {
        "plan": owner,
        "section": section,
        "card_key": card_key,
        "form": form,
        "features": _features(request),
        "price_models": editor.PRICE_MODELS,
        "cadences": editor.CADENCES,
        "preview_quantity": request.POST.get("previewQuantity", "1000"),
        "list_url": reverse("catalog_console_plans" if is_plan else "catalog_console_addons"),
        "list_label": "Plans" if is_plan else "Add-ons",
        "back_url": _version_url(owner),
    }


@require_POST
@console_view(min_role=EDIT)
def rate_card_fields(request: ConsoleRequest) -> HttpResponse:
    """htmx: re-render the price fields after the model changes or a tier row is added/removed."""
    form = editor.form_from_post(request.POST)
    action = request.POST.get("tierAction", "")
    if action == "add":
        last = form.tiers.pop() if form.tiers and not form.tiers[-1].up_to else editor.TierRow()
        form.tiers.append(editor.TierRow())
        form.tiers.append(last)
    elif action.startswith("remove-"):
        index = int(action.split("-", 1)[1]) if action.split("-", 1)[1].isdigit() else -1
        if 0 <= index < len(form.tiers) and len(form.tiers) > 1:
            del form.tiers[index]
            form.tiers[-1].up_to = ""
    if form.is_tiered and not form.tiers:
        form.tiers = editor.default_tiers()
    response = render(
        request,
        "console/catalog/rate_card_form.html#price-fields",
        {"form": form, "price_models": editor.PRICE_MODELS},
    )
    response["HX-Trigger-After-Settle"] = "price-fields-updated"
    return response


@require_POST
@console_view(min_role=EDIT)
def rate_card_remove(
    request: ConsoleRequest, key: str, version: int, phase_key: str, card_key: str
) -> HttpResponse:
    return _draft_action(
        request,
        "plan",
        key,
        version,
        lambda plan: services.rate_card_remove(
            organization=request.organization,
            plan_id=plan.id,
            phase_key=phase_key,
            rate_card_key=card_key,
            actor=request.user,
        ),
        "Rate card removed.",
    )


# --- live preview ---------------------------------------------------------------------------------
def _preview_response(
    request: ConsoleRequest, *, price: Any, discounts: Any, currency: str, quantity: str
) -> HttpResponse:
    context: dict[str, Any] = {"currency": currency, "quantity": quantity}
    try:
        result = price_preview(price=price, quantity=quantity or "0", currency=currency, discounts=discounts)
        context["preview"] = result
        context["exact"] = editor_amount(result.unrounded)
        context["exact_differs"] = result.unrounded != result.amount
        context["lines"] = [
            {
                **line.__dict__,
                "amount_text": editor_amount(line.amount),
                "quantity_text": editor_amount(line.quantity) if line.quantity is not None else "",
            }
            for line in result.rating.lines
        ]
    except PriceInvalid as exc:
        context["preview_errors"] = [
            {"name": e["name"].replace("price.", "", 1), "reason": e["reason"]} for e in exc.errors
        ]
    return render(request, "console/catalog/preview.html", context)


def editor_amount(value: Any) -> str:
    from catalog.pricing import dec_str

    return dec_str(value)


@require_POST
@console_view()
def preview_form(request: ConsoleRequest) -> HttpResponse:
    """htmx: the rate card editor's preview, from the form fields as typed."""
    form = editor.form_from_post(request.POST)
    return _preview_response(
        request,
        price=editor.price_from_form(form),
        discounts=editor.discounts_from_form(form),
        currency=request.POST.get("currency") or request.organization.default_currency,
        quantity=request.POST.get("previewQuantity", "").strip(),
    )


@console_view()
def preview_card(
    request: ConsoleRequest, key: str, version: int, phase_key: str, card_key: str
) -> HttpResponse:
    """htmx: the preview beside a saved rate card (any status: it is a read)."""
    plan = _version(request, "plan", key, version)
    card = next(
        (c for p in plan.phases if p["key"] == phase_key for c in p["rateCards"] if c["key"] == card_key),
        None,
    )
    if card is None:
        from django.http import Http404

        raise Http404("No such rate card.")
    return _saved_card_preview(request, card, plan.currency)


def _saved_card_preview(request: ConsoleRequest, card: dict[str, Any], currency: str) -> HttpResponse:
    return _preview_response(
        request,
        price=card.get("price") or {"type": "flat", "amount": "0"},
        discounts=card.get("discounts"),
        currency=currency,
        quantity=request.GET.get("quantity", "").strip(),
    )


# --- publish, archive, versions, compare ---------------------------------------------------------
@console_view(min_role=EDIT)
def plan_publish(request: ConsoleRequest, key: str, version: int) -> HttpResponse:
    plan = _draft(request, "plan", key, version)
    if isinstance(plan, HttpResponse):
        return plan
    current = selectors.plan_list(organization=request.organization, key=plan.key, status="published").first()
    errors: list[dict[str, str]] = []
    if request.method == "POST":
        try:
            services.plan_publish(organization=request.organization, plan_id=plan.id, actor=request.user)
            messages.success(
                request, f"Version {plan.version} of {plan.key} is published. New subscriptions use it."
            )
            return redirect(_version_url(plan))
        except DomainError as exc:
            errors = _errors_of(exc)
    context = _publish_context(current, plan, errors)
    return render(request, "console/catalog/plan_publish.html", context, status=400 if errors else 200)


def _publish_context(
    current: PlanVersion | AddonVersion | None,
    draft: PlanVersion | AddonVersion,
    errors: list[dict[str, str]],
) -> dict[str, Any]:
    """The publish confirmation (plans and add-ons): what changes versus the published version."""
    is_plan = isinstance(draft, PlanVersion)
    settings_rows, rows = editor.version_rows(current, draft)
    return {
        "plan": draft,
        "current": current,
        "settings_rows": [r for r in settings_rows if r.change != "same"],
        "rows": [r for r in rows if r.change != "same"],
        "errors": errors,
        "list_url": reverse("catalog_console_plans" if is_plan else "catalog_console_addons"),
        "list_label": "Plans" if is_plan else "Add-ons",
        "back_url": _version_url(draft),
    }


@require_POST
@console_view(min_role=EDIT)
def plan_archive(request: ConsoleRequest, key: str, version: int) -> HttpResponse:
    plan = _version(request, "plan", key, version)
    try:
        services.plan_archive(organization=request.organization, plan_id=plan.id, actor=request.user)
        messages.success(
            request, f"Version {plan.version} archived: new subscriptions can no longer choose it."
        )
    except DomainError as exc:
        messages.error(request, exc.detail)
    return redirect(_version_url(plan))


@require_POST
@console_view(min_role=EDIT)
def plan_next(request: ConsoleRequest, key: str) -> HttpResponse:
    try:
        plan = services.plan_next_version(
            organization=request.organization, id_or_key=key, actor=request.user
        )
        messages.success(request, f"Draft version {plan.version} created from the latest version.")
        return redirect(_version_url(plan))
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("catalog_console_plan", key=key)


@require_POST
@console_view(min_role=EDIT)
def plan_delete_draft(request: ConsoleRequest, key: str, version: int) -> HttpResponse:
    plan = _version(request, "plan", key, version)
    try:
        services.plan_delete(organization=request.organization, plan_id=plan.id, actor=request.user)
        messages.success(request, f"Draft version {version} deleted.")
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect(_version_url(plan))
    if selectors.plan_list(organization=request.organization, key=key).exists():
        return redirect("catalog_console_plan", key=key)
    return redirect("catalog_console_plans")


@console_view()
def plan_compare(request: ConsoleRequest, key: str) -> HttpResponse:
    versions = list(selectors.plan_versions(organization=request.organization, plan_key=key))
    if not versions:
        from django.http import Http404

        raise Http404("No such plan.")
    by_number = {v.version: v for v in versions}

    def pick(name: str, default: PlanVersion) -> PlanVersion:
        raw = request.GET.get(name, "")
        return by_number.get(int(raw), default) if raw.isdigit() else default

    right = pick("b", versions[0])
    left = pick("a", versions[1] if len(versions) > 1 else versions[0])
    settings_rows, rows = editor.version_rows(left, right)
    context = {
        "key": key,
        "versions": versions,
        "left": left,
        "right": right,
        "settings_rows": settings_rows,
        "rows": rows,
    }
    return render(request, "console/catalog/plan_compare.html", context)


# --- plan <-> add-on links ------------------------------------------------------------------------
@require_POST
@console_view(min_role=EDIT)
def plan_addon_link(request: ConsoleRequest, key: str, version: int) -> HttpResponse:
    plan = _draft(request, "plan", key, version)
    if isinstance(plan, HttpResponse):
        return plan
    raw = request.POST.get("maxQuantity", "").strip()
    addon_key = request.POST.get("addonKey", "").strip()
    try:
        if raw and not raw.isdigit():
            raise ValidationFailed(
                "Must be a positive whole number (or empty for no limit).", field="maxQuantity"
            )
        services.plan_addon_link(
            organization=request.organization,
            plan_id=plan.id,
            addon_key=addon_key,
            max_quantity=int(raw) if raw else None,
            actor=request.user,
        )
        messages.success(request, f"Add-on {addon_key} linked.")
        return redirect(_version_url(plan))
    except DomainError as exc:
        context = _plan_context(request, plan)
        errors: dict[str, str] = {}
        for name, reason in _field_errors(exc).items():
            short = name.rsplit(".", 1)[-1]
            errors.setdefault(short if short in ("addonKey", "maxQuantity") else "general", reason)
        context.update(addon_errors=errors, addon_form=request.POST, settings_errors={}, phase_errors={})
        return render(request, "console/catalog/plan_detail.html", context, status=400)


@require_POST
@console_view(min_role=EDIT)
def plan_addon_unlink(request: ConsoleRequest, key: str, version: int, addon_key: str) -> HttpResponse:
    return _draft_action(
        request,
        "plan",
        key,
        version,
        lambda plan: services.plan_addon_unlink(
            organization=request.organization, plan_id=plan.id, addon_key=addon_key, actor=request.user
        ),
        f"Add-on {addon_key} unlinked.",
    )


# --- add-ons --------------------------------------------------------------------------------------
def _addon_settings_data(post: Any) -> dict[str, str]:
    return {
        "name": post.get("name", "").strip(),
        "description": post.get("description", "").strip(),
        "instanceType": post.get("instanceType", "").strip(),
    }


@console_view()
def addon_list(request: ConsoleRequest) -> HttpResponse:
    org = request.organization
    context: dict[str, Any] = {
        "form": {"currency": org.default_currency, "instanceType": InstanceType.SINGLE},
        "errors": {},
        "instance_types": InstanceType.choices,
    }
    if request.method == "POST":
        if not request.membership.has_role(EDIT):
            return render(
                request, "console/forbidden.html", {"needed": Role.PRICING_EDITOR.label}, status=403
            )
        post = request.POST
        try:
            addon = services.addon_create(
                organization=org,
                key=post.get("key", "").strip(),
                data={
                    **_addon_settings_data(post),
                    "currency": post.get("currency", "").strip().upper(),
                    "rateCards": [],
                },
                actor=request.user,
            )
            messages.success(request, f"Add-on {addon.key} created as a draft. Add rate cards, then publish.")
            return redirect(_version_url(addon))
        except DomainError as exc:
            context["errors"] = _field_errors(exc)
            context["form"] = post
    rows: dict[str, dict[str, Any]] = {}
    for v in selectors.addon_list(organization=org):  # key, newest first: one query for the page
        row = rows.setdefault(v.key, {"key": v.key, "latest": v, "published": None, "draft": None})
        if v.status == VersionStatus.PUBLISHED:
            row["published"] = v
        elif v.status == VersionStatus.DRAFT:
            row["draft"] = v
    context["addons"] = list(rows.values())
    return render(
        request, "console/catalog/addon_list.html", context, status=400 if context["errors"] else 200
    )


def _addon_context(request: ConsoleRequest, addon: AddonVersion) -> dict[str, Any]:
    org = request.organization
    versions = list(selectors.addon_list(organization=org, key=addon.key))
    cards = [{**card, "line": editor.card_summary(card)} for card in addon.rate_cards]
    return {
        "addon": addon,
        "versions": versions,
        "has_draft": any(v.status == VersionStatus.DRAFT for v in versions),
        "editable": addon.status == VersionStatus.DRAFT and request.membership.has_role(EDIT),
        "cards": cards,
        "history": selectors.catalog_history(organization=org, object_type="addon", object_ids=[addon.key])[
            :50
        ],
        "instance_types": InstanceType.choices,
        "settings_errors": {},
    }


@console_view()
def addon_detail(request: ConsoleRequest, key: str) -> HttpResponse:
    version = request.GET.get("version")
    addon = _version(request, "addon", key, int(version) if version and version.isdigit() else None)
    return render(request, "console/catalog/addon_detail.html", _addon_context(request, addon))


@require_POST
@console_view(min_role=EDIT)
def addon_settings(request: ConsoleRequest, key: str, version: int) -> HttpResponse:
    addon = _draft(request, "addon", key, version)
    if isinstance(addon, HttpResponse):
        return addon
    data = {**services.addon_to_document(addon), **_addon_settings_data(request.POST)}
    try:
        addon = services.addon_update(
            organization=request.organization, addon_id=addon.id, data=data, actor=request.user
        )
        messages.success(request, "Add-on settings saved.")
        return redirect(_version_url(addon))
    except DomainError as exc:
        context = _addon_context(request, addon)
        context.update(settings_errors=_field_errors(exc), settings_form=request.POST)
        return render(request, "console/catalog/addon_detail.html", context, status=400)


@console_view(min_role=EDIT)
def addon_rate_card_edit(
    request: ConsoleRequest, key: str, version: int, card_key: str | None = None
) -> HttpResponse:
    addon = _draft(request, "addon", key, version)
    if isinstance(addon, HttpResponse):
        return addon
    existing = next((c for c in addon.rate_cards if c["key"] == card_key), None) if card_key else None
    if card_key and existing is None:
        from django.http import Http404

        raise Http404("No such rate card.")
    status = 200
    if request.method == "POST":
        form = editor.form_from_post(request.POST)
        try:
            services.addon_rate_card_upsert(
                organization=request.organization,
                addon_id=addon.id,
                rate_card=editor.rate_card_from_form(form),
                replace_key=card_key,
                actor=request.user,
            )
            messages.success(request, f"Rate card {form.name} saved.")
            return redirect(_version_url(addon))
        except DomainError as exc:
            editor.place_errors(form, _errors_of(exc))
            status = 400
    elif existing is not None:
        form = editor.form_from_card(existing)
    else:
        form = editor.RateCardForm()
    context = _rate_card_form_context(request, addon, form, card_key, section="Rate cards")
    return render(request, "console/catalog/rate_card_form.html", context, status=status)


@require_POST
@console_view(min_role=EDIT)
def addon_rate_card_remove(request: ConsoleRequest, key: str, version: int, card_key: str) -> HttpResponse:
    return _draft_action(
        request,
        "addon",
        key,
        version,
        lambda addon: services.addon_rate_card_remove(
            organization=request.organization, addon_id=addon.id, rate_card_key=card_key, actor=request.user
        ),
        "Rate card removed.",
    )


@console_view()
def addon_card_preview(request: ConsoleRequest, key: str, version: int, card_key: str) -> HttpResponse:
    addon = _version(request, "addon", key, version)
    card = next((c for c in addon.rate_cards if c["key"] == card_key), None)
    if card is None:
        from django.http import Http404

        raise Http404("No such rate card.")
    return _saved_card_preview(request, card, addon.currency)


@console_view(min_role=EDIT)
def addon_publish(request: ConsoleRequest, key: str, version: int) -> HttpResponse:
    addon = _draft(request, "addon", key, version)
    if isinstance(addon, HttpResponse):
        return addon
    org = request.organization
    current = selectors.addon_list(organization=org, key=addon.key, status="published").first()
    errors: list[dict[str, str]] = []
    if request.method == "POST":
        try:
            services.addon_publish(organization=org, addon_id=addon.id, actor=request.user)
            messages.success(request, f"Version {addon.version} of {addon.key} is published.")
            return redirect(_version_url(addon))
        except DomainError as exc:
            errors = _errors_of(exc)
    context = _publish_context(current, addon, errors)
    return render(request, "console/catalog/plan_publish.html", context, status=400 if errors else 200)


@require_POST
@console_view(min_role=EDIT)
def addon_archive(request: ConsoleRequest, key: str, version: int) -> HttpResponse:
    addon = _version(request, "addon", key, version)
    try:
        services.addon_archive(organization=request.organization, addon_id=addon.id, actor=request.user)
        messages.success(request, f"Version {addon.version} archived: plans can no longer link it.")
    except DomainError as exc:
        messages.error(request, exc.detail)
    return redirect(_version_url(addon))


@require_POST
@console_view(min_role=EDIT)
def addon_next(request: ConsoleRequest, key: str) -> HttpResponse:
    _version(request, "addon", key)  # 404 for another organization's key
    try:
        addon = services.addon_next_version(
            organization=request.organization, id_or_key=key, actor=request.user
        )
        messages.success(request, f"Draft version {addon.version} created.")
        return redirect(_version_url(addon))
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("catalog_console_addon", key=key)
