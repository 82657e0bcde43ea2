"""Console shell (HTML): home, organization switcher, API keys, members, audit log; /healthz."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core import invitations, jobs, selectors, services
from core.console import console_view
from core.errors import DomainError, NotFound, ValidationFailed
from core.forms import InvitationForm, SignupForm
from core.http import ConsoleRequest
from core.middleware import SESSION_KEY
from core.models import Role, Scope


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    healthy, report = selectors.health_status()
    report["status"] = "ok" if healthy else "fail"
    return JsonResponse(report, status=200 if healthy else 503)


class LoginView(auth_views.LoginView):
    template_name = "console/login.html"
    redirect_authenticated_user = True


@console_view()
def home(request: ConsoleRequest) -> HttpResponse:
    _, health = selectors.health_status()
    failures = jobs.job_failures_open(organization=request.organization)
    return render(request, "console/home.html", {"health": health, "job_failures": failures})


@require_POST
@console_view(min_role=Role.ADMIN)
def job_failures_retry(request: ConsoleRequest) -> HttpResponse:
    """Retry this organization's failed background-job objects on the next run (after fixing the cause)."""
    n = jobs.job_failures_retry(organization=request.organization)
    messages.success(request, f"{n} failed job items will be retried on the next run.")
    return redirect("console_home")


@require_POST
@console_view()
def switch_organization(request: ConsoleRequest) -> HttpResponse:
    membership = selectors.membership_for(
        user=request.user, organization_id=request.POST.get("organization", "")
    )
    if membership is None:
        messages.error(request, "You are not a member of that organization.")
    else:
        request.session[SESSION_KEY] = membership.organization_id
        messages.success(request, f"Switched to {membership.organization.name}.")
    return redirect("console_home")


@console_view(min_role=Role.ADMIN)
def api_keys(request: ConsoleRequest) -> HttpResponse:
    org = request.organization
    context: dict = {"scopes": Scope.choices}
    if request.method == "POST":
        expires_raw = request.POST.get("expires_on", "").strip()
        try:
            expires_at = None
            if expires_raw:
                day = date.fromisoformat(expires_raw)
                expires_at = datetime.combine(day, time.max, tzinfo=ZoneInfo(org.timezone))
            created = services.api_key_create(
                organization=org,
                name=request.POST.get("name", ""),
                scopes=request.POST.getlist("scopes"),
                actor=request.user,
                expires_at=expires_at,
            )
            context["created"] = created
        except ValueError:
            context["form_error"] = "Expiry must be a date (YYYY-MM-DD)."
        except DomainError as exc:
            context["form_error"] = exc.detail
        context["form"] = request.POST
    context["keys"] = selectors.api_key_list(organization=org)
    template = "console/api_keys.html#keys-panel" if request.htmx else "console/api_keys.html"
    return render(request, template, context, status=400 if context.get("form_error") else 200)


@require_POST
@console_view(min_role=Role.ADMIN)
def api_key_revoke(request: ConsoleRequest, key_id: str) -> HttpResponse:
    org = request.organization
    try:
        services.api_key_revoke(organization=org, key_id=key_id, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.detail)
    if request.htmx:
        return render(
            request, "console/api_keys.html#keys-table", {"keys": selectors.api_key_list(organization=org)}
        )
    return redirect("console_api_keys")


@console_view(min_role=Role.ADMIN)
def members(request: ConsoleRequest) -> HttpResponse:
    """Members and pending invitations. People join only through an e-mailed invitation link; the answer
    to an invitation never depends on whether the address already has an account."""
    org = request.organization
    form = InvitationForm()
    context: dict = {}
    if request.method == "POST":
        action = request.POST.get("action", "invite")
        try:
            if action == "remove":
                membership_id = request.POST.get("membership", "")
                if not membership_id.isdigit():
                    raise NotFound("No such member in this organization.")
                services.membership_remove(
                    organization=org, membership_id=int(membership_id), actor=request.user
                )
                messages.success(request, "Member removed.")
                return redirect("console_members")
            if action == "revoke":
                invitations.invitation_revoke(
                    organization=org, invitation_id=request.POST.get("invitation", ""), actor=request.user
                )
                messages.success(request, "Invitation revoked.")
                return redirect("console_members")
            form = InvitationForm(request.POST)
            if form.is_valid():
                created = invitations.invitation_create(
                    organization=org,
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                    inviter=request.membership,
                    actor=request.user,
                )
                messages.success(request, f"Invitation sent to {created.invitation.email}.")
                return redirect("console_members")
        except DomainError as exc:
            context["form_error"] = exc.detail
    context["form"] = form
    context["members"] = selectors.member_list(organization=org)
    context["invitations"] = selectors.invitation_pending_list(organization=org)
    failed = bool(context.get("form_error") or form.errors)
    return render(request, "console/members.html", context, status=400 if failed else 200)


@require_http_methods(["GET", "POST"])
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """The page an invitation link opens: create an account, or accept with the login you have."""
    try:
        invite = invitations.invitation_from_token(token)
    except invitations.InvitationInvalid as exc:
        return render(request, "console/invitation.html", {"invalid": exc.detail}, status=404)
    form = SignupForm()
    if request.method == "POST":
        try:
            if request.user.is_authenticated:
                membership = invitations.invitation_accept(token=token, user=request.user)
            else:
                form = SignupForm(request.POST)
                if not form.is_valid():
                    raise ValidationFailed("Check the form.")
                user, membership = invitations.invitation_signup(
                    token=token, password=form.cleaned_data["password"]
                )
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")  # type: ignore[arg-type]
            request.session[SESSION_KEY] = membership.organization_id
            messages.success(request, f"Welcome to {invite.organization.name}.")
            return redirect("console_home")
        except invitations.InvitationInvalid as exc:
            return render(request, "console/invitation.html", {"invalid": exc.detail}, status=404)
        except DomainError as exc:
            if not form.errors:
                form.add_error(None, exc.detail)
    context = {"invitation": invite, "form": form, "login_url": f"{reverse('login')}?next={request.path}"}
    return render(request, "console/invitation.html", context, status=400 if form.errors else 200)


@console_view(min_role=Role.ADMIN)
def audit(request: ConsoleRequest) -> HttpResponse:
    org = request.organization
    entries = selectors.audit_list(organization=org, object_type=request.GET.get("object_type") or None)
    return render(request, "console/audit.html", {"entries": entries.select_related("actor_user")[:200]})


@console_view(min_role=Role.ADMIN)
def organization_settings(request: ConsoleRequest) -> HttpResponse:
    org = request.organization
    context: dict = {
        "form": {"name": org.name, "timezone": org.timezone, "brand_color": org.brand_color},
        "errors": {},
    }
    if request.method == "POST":
        context["form"] = request.POST
        try:
            services.organization_update(
                organization=org,
                name=request.POST.get("name", ""),
                timezone_name=request.POST.get("timezone", "").strip(),
                brand_color=request.POST.get("brand_color", "").strip(),
                actor=request.user,
            )
            messages.success(request, "Organization settings saved.")
            return redirect("console_org_settings")
        except ValidationFailed as exc:
            context["errors"] = {e["name"]: e["reason"] for e in exc.errors}
    return render(request, "console/organization.html", context, status=400 if context["errors"] else 200)
