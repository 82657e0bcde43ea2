"""What the pricing editor's pages share: plans and add-ons are versioned the same way (`Versioned` says
what differs), the version a URL names, the draft guard, and the POST-then-redirect of a small draft edit.

Viewers read; pricing editors (and above) edit. Domain errors become inline messages next to the field
(status 400), never a 500. A published or archived version renders read-only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from catalog import selectors, services
from catalog.models import AddonVersion, PlanVersion, VersionStatus
from catalog.services import versions
from core.errors import DomainError
from core.forms import add_domain_error, error_map
from core.http import ConsoleRequest
from core.models import Role

EDIT = Role.PRICING_EDITOR


@dataclass(frozen=True)
class Versioned:
    """The console's words and routes for plans or add-ons: the service's `Kind` (its noun, its selector)
    and how the console lists its versions; the URL names follow the kind (`catalog_console_plan`, ...)."""

    service: versions.Kind[Any]
    list_versions: Callable[..., Any]  # (organization=, key=, status=) -> versions, newest first per key

    @property
    def kind(self) -> str:
        """The URL's kind and the audit object type: "plan" / "addon"."""
        return self.service.object_type

    @property
    def page(self) -> str:
        """The version page's URL name."""
        return f"catalog_console_{self.kind}"

    @property
    def list_page(self) -> str:
        return f"{self.page}s"


VERSIONED = {
    spec.kind: spec
    for spec in (
        Versioned(services.PLANS, list_versions=selectors.plan_list),
        Versioned(services.ADDONS, list_versions=selectors.addon_list),
    )
}


def versioned_of(item: PlanVersion | AddonVersion) -> Versioned:
    return VERSIONED["plan" if isinstance(item, PlanVersion) else "addon"]


def version_get(request: ConsoleRequest, kind: str, key: str, version: int | None = None) -> Any:
    """The requested version, or (no version given) the draft if there is one, else the newest; 404 for
    another organization's key."""
    spec = VERSIONED[kind]
    try:
        if version is None:
            draft = spec.list_versions(organization=request.organization, key=key, status="draft").first()
            if draft is not None:
                return draft
        return spec.service.get(organization=request.organization, id_or_key=key, version=version)
    except DomainError:
        raise Http404(f"No such {spec.service.noun.lower()}.") from None


def version_url(item: PlanVersion | AddonVersion) -> str:
    return reverse(versioned_of(item).page, args=[item.key]) + f"?version={item.version}"


def version_links(item: PlanVersion | AddonVersion) -> dict[str, str]:
    """The links of a page about a version (a rate card form, the publish confirmation): back to its list
    and to the version."""
    spec = versioned_of(item)
    return {
        "list_url": reverse(spec.list_page),
        "list_label": f"{spec.service.noun}s",
        "back_url": version_url(item),
    }


def version_write(
    request: ConsoleRequest, write: Callable[..., Any], item: PlanVersion | AddonVersion
) -> Any:
    """A versions-service write on one version (publish, archive, delete a draft) as the request's user."""
    return write(
        versioned_of(item).service, organization=request.organization, version_id=item.id, actor=request.user
    )


def draft_get(request: ConsoleRequest, kind: str, key: str, version: int) -> Any:
    """The draft version, or a redirect back with a message when that version is read-only."""
    item = version_get(request, kind, key, version)
    if item.status != VersionStatus.DRAFT:
        messages.error(
            request, f"Version {item.version} is {item.status} and read-only. Create a new version to edit."
        )
        return redirect(version_url(item))
    return item


def draft_action(
    request: ConsoleRequest, kind: str, key: str, version: int, action: Callable[[Any], object], done: str
) -> HttpResponse:
    """A console POST that changes a draft version: run `action(draft)`, flash `done` or the domain error,
    and go back to the version page."""
    draft = draft_get(request, kind, key, version)
    if isinstance(draft, HttpResponse):
        return draft
    try:
        action(draft)
        messages.success(request, done)
    except DomainError as exc:
        messages.error(request, exc.detail)
    return redirect(version_url(draft))


def draft_edit(
    request: ConsoleRequest,
    kind: str,
    key: str,
    version: int,
    service: Callable[..., object],
    done: str,
    **arguments: Any,
) -> HttpResponse:
    """`draft_action` calling `service(organization=, plan_id=/addon_id=, actor=, **arguments)` on the draft
    (remove a phase, a rate card, an add-on link)."""

    def action(draft: Any) -> object:
        ids = {f"{kind}_id": draft.id}
        return service(organization=request.organization, actor=request.user, **ids, **arguments)

    return draft_action(request, kind, key, version, action, done)


def version_action(
    request: ConsoleRequest, kind: str, key: str, version: int, action: Callable[[Any], object], done: str
) -> HttpResponse:
    """Like `draft_action` for any status (archive, delete a draft): the service says what is allowed."""
    item = version_get(request, kind, key, version)
    try:
        action(item)
        messages.success(request, done.format(item=item))
    except DomainError as exc:
        messages.error(request, exc.detail)
    return redirect(version_url(item))


def form_write(
    form: forms.Form, write: Callable[[dict[str, Any]], Any], *, fields: dict[str, str] | None = None
) -> tuple[Any, dict[str, str]]:
    """Run `write(cleaned_data)` when the form is valid; (its result, {}) or (None, the errors by field)
    with the service's domain errors put on the form's fields."""
    if form.is_valid():
        try:
            return write(form.cleaned_data), {}
        except DomainError as exc:
            add_domain_error(form, exc, fields=fields)
    return None, error_map(form)


def forbidden(request: ConsoleRequest) -> HttpResponse:
    return render(request, "console/forbidden.html", {"needed": Role.PRICING_EDITOR.label}, status=403)


def by_method(**views: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """One URL, one view per HTTP method (a list page and its create form share the URL)."""

    def dispatch(request: ConsoleRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        method = (request.method or "GET").lower()
        view = views.get("get" if method == "head" else method)
        if view is None:
            return HttpResponse(status=405, headers={"Allow": ", ".join(m.upper() for m in views)})
        return view(request, *args, **kwargs)

    return dispatch
