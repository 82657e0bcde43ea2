"""Console page of outbound webhooks: the endpoints (add one: its signing secret is shown once), the
delivery log and resending a delivery."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.console import console_view
from core.errors import DomainError
from core.forms import add_domain_error
from core.http import ConsoleRequest
from core.models import Role
from invoicing import selectors
from invoicing import webhooks as webhooks_module
from invoicing.forms import WebhookEndpointForm, WebhookResendForm
from invoicing.views.flash import flash_form_errors, submit_and_flash

PAGE = "invoicing_console_webhooks"


@console_view(min_role=Role.ADMIN)
def webhooks(request: ConsoleRequest) -> HttpResponse:
    org = request.organization
    if request.method == "POST":
        form = WebhookEndpointForm(request.POST, event_types=webhooks_module.EVENT_TYPES)
        if form.is_valid():
            try:
                endpoint = webhooks_module.webhook_endpoint_create(
                    organization=org,
                    url=form.cleaned_data["url"],
                    event_types=form.cleaned_data["event_types"],
                    description=form.cleaned_data["description"],
                    actor=request.user,
                )
            except DomainError as exc:
                add_domain_error(form, exc, fields={"eventTypes": "event_types"})
            else:
                messages.success(request, f"Endpoint added. Signing secret: {endpoint.secret}")
        if form.errors:
            flash_form_errors(request, form)
        return redirect(PAGE)
    return render(
        request,
        "console/invoicing/webhooks.html",
        {
            "endpoints": list(selectors.webhook_endpoint_list(organization=org)),
            "deliveries": selectors.webhook_delivery_list(organization=org),
            "event_types": webhooks_module.EVENT_TYPES,
        },
    )


@require_POST
@console_view(min_role=Role.ADMIN)
def webhook_resend(request: ConsoleRequest, delivery_id: str) -> HttpResponse:
    submit_and_flash(
        request,
        WebhookResendForm(request.POST),
        lambda: webhooks_module.webhook_delivery_resend(
            organization=request.organization, delivery_id=delivery_id, actor=request.user
        ),
        "Delivery queued again.",
    )
    return redirect(PAGE)
