"""The rate card editor (plans' phases and add-ons: same form, same live preview) and the htmx preview."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from catalog import rate_card_json, selectors, services
from catalog.forms import RateCardForm
from catalog.models import PlanVersion
from catalog.pricing import PriceInvalid, dec_str, price_preview
from catalog.views.common import (
    EDIT,
    draft_edit,
    draft_get,
    version_get,
    version_links,
    version_url,
    versioned_of,
)
from core.console import console_view
from core.errors import DomainError
from core.forms import error_map
from core.http import ConsoleRequest


def _card_form_page(
    request: ConsoleRequest,
    owner: Any,
    cards: list[dict[str, Any]],
    card_key: str | None,
    upsert: Callable[..., object],
    *,
    section: str,
    **arguments: Any,
) -> HttpResponse:
    """GET: the form (a saved card's fields, or a new card's); POST: `upsert(organization=, plan_id=/addon_id=,
    rate_card=, replace_key=, actor=, **arguments)`, then back to the version page, or the form again with
    each domain error next to its input."""
    existing = next((c for c in cards if c["key"] == card_key), None) if card_key else None
    if card_key and existing is None:
        raise Http404("No such rate card.")
    status = 200
    if request.method == "POST":
        form = RateCardForm(request.POST)
        form.is_valid()  # every input is optional: the catalog services validate the card
        try:
            upsert(
                organization=request.organization,
                **{f"{versioned_of(owner).kind}_id": owner.id},
                rate_card=rate_card_json.rate_card_from_form(form.values),
                replace_key=card_key,
                actor=request.user,
                **arguments,
            )
            messages.success(request, f"Rate card {form.values.name} saved.")
            return redirect(version_url(owner))
        except DomainError as exc:
            form.add_domain_error(exc)
            status = 400
    else:
        cadence = owner.billing_cadence if isinstance(owner, PlanVersion) else ""
        form = RateCardForm.for_card(existing, billing_cadence=cadence)
    context = {
        "plan": owner,
        "section": section,
        "card_key": card_key,
        "form": form,
        "card": form.values,
        "errors": error_map(form),
        "features": list(selectors.feature_list(organization=request.organization)),
        "price_models": rate_card_json.PRICE_MODELS,
        "cadences": rate_card_json.CADENCES,
        "preview_quantity": form.values.preview_quantity or "1000",
        **version_links(owner),
    }
    return render(request, "console/catalog/rate_card_form.html", context, status=status)


def _phase(plan: PlanVersion, phase_key: str) -> dict[str, Any]:
    phase = next((p for p in plan.phases if p["key"] == phase_key), None)
    if phase is None:
        raise Http404("No such phase.")
    return phase


@console_view(min_role=EDIT)
def rate_card_edit(
    request: ConsoleRequest, key: str, version: int, phase_key: str, card_key: str | None = None
) -> HttpResponse:
    plan = draft_get(request, "plan", key, version)
    if isinstance(plan, HttpResponse):
        return plan
    phase = _phase(plan, phase_key)
    upsert = services.rate_card_upsert
    return _card_form_page(
        request, plan, phase["rateCards"], card_key, upsert, section=phase["name"], phase_key=phase_key
    )


@console_view(min_role=EDIT)
def addon_rate_card_edit(
    request: ConsoleRequest, key: str, version: int, card_key: str | None = None
) -> HttpResponse:
    addon = draft_get(request, "addon", key, version)
    if isinstance(addon, HttpResponse):
        return addon
    upsert = services.addon_rate_card_upsert
    return _card_form_page(request, addon, addon.rate_cards, card_key, upsert, section="Rate cards")


@require_POST
@console_view(min_role=EDIT)
def rate_card_remove(
    request: ConsoleRequest, key: str, version: int, phase_key: str, card_key: str
) -> HttpResponse:
    return draft_edit(
        request,
        "plan",
        key,
        version,
        services.rate_card_remove,
        "Rate card removed.",
        phase_key=phase_key,
        rate_card_key=card_key,
    )


@require_POST
@console_view(min_role=EDIT)
def addon_rate_card_remove(request: ConsoleRequest, key: str, version: int, card_key: str) -> HttpResponse:
    done = "Rate card removed."
    return draft_edit(
        request, "addon", key, version, services.addon_rate_card_remove, done, rate_card_key=card_key
    )


@require_POST
@console_view(min_role=EDIT)
def rate_card_fields(request: ConsoleRequest) -> HttpResponse:
    """htmx: re-render the price fields after the model changes or a tier row is added/removed (a read:
    nothing is saved)."""
    form = RateCardForm(request.POST)
    form.is_valid()  # every input is optional; nothing is validated here
    rate_card_json.tiers_edit(form.values)
    response = render(
        request,
        "console/catalog/rate_card_form.html#price-fields",
        {"card": form.values, "errors": {}, "price_models": rate_card_json.PRICE_MODELS},
    )
    response["HX-Trigger-After-Settle"] = "price-fields-updated"
    return response


# --- live preview ---------------------------------------------------------------------------------
def _preview_response(
    request: ConsoleRequest, *, price: Any, discounts: Any, currency: str, quantity: str
) -> HttpResponse:
    context: dict[str, Any] = {"currency": currency, "quantity": quantity}
    try:
        result = price_preview(price=price, quantity=quantity or "0", currency=currency, discounts=discounts)
        context["preview"] = result
        context["exact"] = dec_str(result.unrounded)
        context["exact_differs"] = result.unrounded != result.amount
        context["lines"] = [
            {
                **line.__dict__,
                "amount_text": dec_str(line.amount),
                "quantity_text": dec_str(line.quantity) if line.quantity is not None else "",
            }
            for line in result.rating.lines
        ]
    except PriceInvalid as exc:
        context["preview_errors"] = [
            {"name": e["name"].replace("price.", "", 1), "reason": e["reason"]} for e in exc.errors
        ]
    return render(request, "console/catalog/preview.html", context)


@require_POST
@console_view()
def preview_form(request: ConsoleRequest) -> HttpResponse:
    """htmx: the rate card editor's preview, from the form fields as typed."""
    form = RateCardForm(request.POST)
    form.is_valid()  # every input is optional; the pricing engine says what is wrong
    values = form.values
    return _preview_response(
        request,
        price=rate_card_json.price_from_form(values),
        discounts=rate_card_json.discounts_from_form(values),
        currency=values.currency or request.organization.default_currency,
        quantity=values.preview_quantity,
    )


def _saved_card_preview(request: ConsoleRequest, card: dict[str, Any] | None, currency: str) -> HttpResponse:
    if card is None:
        raise Http404("No such rate card.")
    return _preview_response(
        request,
        price=card.get("price") or {"type": "flat", "amount": "0"},
        discounts=card.get("discounts"),
        currency=currency,
        quantity=request.GET.get("quantity", "").strip(),
    )


@console_view()
def preview_card(
    request: ConsoleRequest, key: str, version: int, phase_key: str, card_key: str
) -> HttpResponse:
    """htmx: the preview beside a saved rate card (any status: it is a read)."""
    plan = version_get(request, "plan", key, version)
    card = next(
        (c for p in plan.phases if p["key"] == phase_key for c in p["rateCards"] if c["key"] == card_key),
        None,
    )
    return _saved_card_preview(request, card, plan.currency)


@console_view()
def addon_card_preview(request: ConsoleRequest, key: str, version: int, card_key: str) -> HttpResponse:
    addon = version_get(request, "addon", key, version)
    card = next((c for c in addon.rate_cards if c["key"] == card_key), None)
    return _saved_card_preview(request, card, addon.currency)
