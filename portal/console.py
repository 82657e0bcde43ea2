"""The customer page's portal section (console): mint a magic link to the customer's portal.

The customer page (billing) loads it with htmx from this URL, so billing never imports the portal. The link
is shown once (the token string is never stored) and built from the request or PUBLIC_BASE_URL."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from core.console import console_view
from core.errors import NotFound
from core.http import ConsoleRequest
from core.links import absolute_url
from core.models import ROLE_RANK, Role
from portal import sources
from portal.forms import PortalLinkForm
from portal.services import portal_token_create

TEMPLATE = "console/portal_link.html"


@require_http_methods(["GET", "POST"])
@console_view()
def customer_portal_link(request: ConsoleRequest, customer_id: str) -> HttpResponse:
    org = request.organization
    try:
        customer = sources.customer_get(organization=org, id_or_key=customer_id)
    except NotFound:
        raise Http404 from None
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
