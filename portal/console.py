"""Console pages of the portal: the customer page's portal section (mint a magic link to the customer's
portal) and the organization's portal settings (self-service plan change and cancel, off by default).

The customer page (billing) loads it with htmx from this URL, so billing never imports the portal. The link
is shown once (the token string is never stored) and built from the request or PUBLIC_BASE_URL."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from core.console import console_view
from core.http import ConsoleRequest
from core.links import absolute_url
from core.models import ROLE_RANK, Role
from portal import sources
from portal.forms import PortalLinkForm, PortalSettingsForm
from portal.selectors import portal_settings_get
from portal.services import portal_settings_update, portal_token_create

TEMPLATE = "console/portal_link.html"


@require_http_methods(["GET", "POST"])
@console_view()
def customer_portal_link(request: ConsoleRequest, customer_id: str) -> HttpResponse:
    org = request.organization
    customer = sources.customer_get(organization=org, id_or_key=customer_id)
    context: dict = {"customer": customer, "form": PortalLinkForm()}
    if request.method == "POST":
        if ROLE_RANK[Role(request.membership.role)] < ROLE_RANK[Role.ADMIN]:  # type: ignore[attr-defined]
            return render(request, "console/forbidden.html", {"needed": Role.ADMIN.label}, status=403)
        form = PortalLinkForm(request.POST)
        if form.is_valid():
            row, token = portal_token_create(
                organization=org, customer=customer.id, expires_in=form.expires_in(), actor=request.user
            )
            context.update(link=absolute_url(f"/portal/{token}", request=request), token_row=row)
        else:
            context["form"] = form
    template = f"{TEMPLATE}#portal-link" if request.htmx else TEMPLATE
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
@console_view(min_role=Role.ADMIN)
def portal_settings(request: ConsoleRequest) -> HttpResponse:
    """`/console/portal/settings/`: whether customers may change plan (among the published plans chosen
    here) and cancel at the end of the period in their portal."""
    org = request.organization
    current = portal_settings_get(organization=org)
    plans = sources.plans_published(organization=org)
    choices = [(p.key, f"{p.name or p.key} ({p.key})") for p in plans]
    initial = {"self_service": current.self_service, "plan_keys": current.plan_keys}
    form = PortalSettingsForm(request.POST or None, initial=initial, plan_choices=choices)
    if request.method == "POST" and form.is_valid():
        portal_settings_update(
            organization=org,
            self_service=form.cleaned_data["self_service"],
            plan_keys=form.cleaned_data["plan_keys"],
            actor=request.user,
        )
        messages.success(request, "Portal settings saved.")
        return redirect("portal_console_settings")
    status = 400 if form.is_bound else 200
    return render(request, "console/portal_settings.html", {"form": form}, status=status)
