"""Lago's webhook endpoints, written as our webhook endpoints (`invoicing.webhooks`) with the format
`lago` (`signature_algo: hmac`) or `lago_jwt` (`jwt`); `name` is the endpoint's description."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from core.audit import Actor
from core.errors import NotFound, ValidationFailed
from core.models import Organization
from invoicing import webhooks as invoicing_webhooks
from invoicing.models import WebhookEndpoint
from lago.mapping import FORMAT as LAGO_FORMAT
from lago.mapping import FORMATS, LAGO_EVENT_TYPES, our_event_types
from lago.wire import LagoInvalid

# --- webhook endpoints ------------------------------------------------------------------------------

_ENDPOINT_FIELDS = {"url": "webhook_url", "description": "name", "eventTypes": "event_types"}


def _webhook_endpoint_fields(data: Any, *, partial: bool) -> dict[str, Any]:
    """Lago's `webhook_endpoint` → the arguments of our endpoint services; `signature_algo` (`hmac`, the
    default, or `jwt`) picks the endpoint's format."""
    if not isinstance(data, dict):
        raise LagoInvalid({"webhook_endpoint": ["invalid_value"]})
    errors: dict[str, list[str]] = {}
    fields: dict[str, Any] = {}
    url = data.get("webhook_url")
    if url is None:
        if not partial:
            errors["webhook_url"] = ["value_is_mandatory"]
    elif not isinstance(url, str) or not url.strip():
        errors["webhook_url"] = ["url_is_invalid"]
    else:
        fields["url"] = url.strip()
    algo = data.get("signature_algo")
    if algo is not None:
        if not isinstance(algo, str) or algo not in FORMATS:
            errors["signature_algo"] = ["value_is_invalid"]
        else:
            fields["format"] = FORMATS[algo]
    name = data.get("name")
    if name is not None:
        if not isinstance(name, str) or len(name) > 200:
            errors["name"] = ["value_is_invalid"]
        else:
            fields["description"] = name
    types = data.get("event_types")
    if types is not None:
        if not isinstance(types, list) or not all(
            isinstance(t, str) and t in LAGO_EVENT_TYPES for t in types
        ):
            errors["event_types"] = ["value_is_invalid"]
        else:
            fields["event_types"] = our_event_types(types)
    if errors:
        raise LagoInvalid(errors)
    return fields


def _endpoint_invalid(exc: ValidationFailed) -> LagoInvalid:
    details: dict[str, list[str]] = {}
    for e in exc.errors or [{"name": exc.field or "base", "reason": exc.detail}]:
        name = _ENDPOINT_FIELDS.get(e["name"], e["name"])
        details.setdefault(name, []).append("url_is_invalid" if name == "webhook_url" else "value_is_invalid")
    return LagoInvalid(details)


@contextmanager
def _lago_validation() -> Iterator[None]:
    """An endpoint write's validation errors in Lago's terms (`_endpoint_invalid`)."""
    try:
        yield
    except ValidationFailed as exc:
        raise _endpoint_invalid(exc) from None


def webhook_endpoint_get(*, organization: Organization, lago_id: str) -> WebhookEndpoint:
    """One of the organization's Lago-format endpoints (the others are not Lago's to see)."""
    endpoint = WebhookEndpoint.objects.filter(
        organization=organization, id=lago_id.upper(), format__in=list(FORMATS.values())
    ).first()
    if endpoint is None:
        raise NotFound("webhook_endpoint_not_found")
    return endpoint


def webhook_endpoint_create(*, organization: Organization, data: Any, actor: Actor = None) -> WebhookEndpoint:
    fields = _webhook_endpoint_fields(data, partial=False)
    with _lago_validation():
        return invoicing_webhooks.webhook_endpoint_create(
            organization=organization,
            url=fields["url"],
            event_types=fields.get("event_types"),
            description=fields.get("description", ""),
            format=fields.get("format", LAGO_FORMAT),
            actor=actor,
        )


def webhook_endpoint_update(
    *, organization: Organization, lago_id: str, data: Any, actor: Actor = None
) -> WebhookEndpoint:
    endpoint = webhook_endpoint_get(organization=organization, lago_id=lago_id)
    fields = _webhook_endpoint_fields(data, partial=True)
    with _lago_validation():
        return invoicing_webhooks.webhook_endpoint_update(
            organization=organization,
            endpoint_id=endpoint.id,
            url=fields.get("url"),
            event_types=fields.get("event_types"),
            description=fields.get("description"),
            format=fields.get("format"),
            actor=actor,
        )


def webhook_endpoint_delete(
    *, organization: Organization, lago_id: str, actor: Actor = None
) -> WebhookEndpoint:
    endpoint = webhook_endpoint_get(organization=organization, lago_id=lago_id)
    invoicing_webhooks.webhook_endpoint_delete(
        organization=organization, endpoint_id=endpoint.id, actor=actor
    )
    return endpoint
