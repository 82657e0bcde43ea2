"""Outbound webhooks, signed with the Standard Webhooks scheme (`standardwebhooks`).

`webhook_event_emit(organization=, type=, payload=)` is the one way any app sends an event: it stores a
`WebhookMessage` and one `WebhookDelivery` per enabled endpoint subscribed to the type, and after commit
queues one Celery task per delivery. The task POSTs the signed body; non-2xx or a network error is
recorded (status code, response snippet, attempts) and retried with exponential backoff.

Server-side request forgery: an endpoint must be a public address. Its host is resolved when the endpoint is
created or changed (an address that is private, loopback, link-local, multicast, reserved or otherwise not
globally routable, IPv4 or IPv6, is refused with 400; a name that does not resolve yet is accepted), and
every delivery checks the address it actually connected to before sending anything (so DNS that changes
after the check cannot point a delivery inward). Redirects are never followed (a 3xx is a failed attempt),
timeouts are short, and at most SNIPPET_CHARS of the answer are kept. `WEBHOOK_ALLOW_PRIVATE_TARGETS=true`
allows private targets for on-premise installations.

Envelopes: an endpoint's `format` picks the body and signature of its deliveries. `standard` (the default) is
the Standard Webhooks envelope above; another app adds a format with `register_envelope(format, render,
accepts=...)` in its `AppConfig.ready()` (the `lago` app registers `lago`, Lago's envelope and signature).
`accepts(type, payload)` says whether an event has a counterpart in that format: an endpoint is given a
delivery only for the events its format accepts. Delivery, retries, the address checks and the delivery log
are the same for every format.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import logging
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.db.models import CharField, Exists, F, OuterRef, Value
from django.db.models.functions import Concat
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from billing.models import NotificationEvent
from core import jobs
from core.audit import Actor, audit_object
from core.enqueue import enqueue_on_commit
from core.errors import NotFound, raise_invalid
from core.models import Organization
from invoicing.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookMessage

DELIVER_TASK = "invoicing.tasks.webhook_deliver"  # queued through core.enqueue: tasks import this module

EVENT_TYPES = (
    "invoice.created",
    "invoice.issued",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.voided",
    "subscription.created",
    "subscription.changed",
    "subscription.canceled",
    "entitlement.balance.threshold",
)
MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 30  # 30 s, 1 min, 2 min, 4 min, ... capped at 6 h
TIMEOUT_SECONDS = 5  # connect, and each read
SNIPPET_CHARS = 200
NOTIFICATION_LOOKBACK_DAYS = 7
FORWARD_JOB = "billing_notifications_forward"
logger = logging.getLogger(__name__)


STANDARD_FORMAT = "standard"
FORMAT_MAX_CHARS = 32

# render(endpoint, message, now) -> (body, headers): the signed request of one delivery in this format.
Render = Callable[[WebhookEndpoint, WebhookMessage, datetime], tuple[bytes, dict[str, str]]]
# accepts(type, payload) -> whether the format has a counterpart for this event (else it is not sent).
Accepts = Callable[[str, dict[str, Any]], bool]


@dataclass(frozen=True)
class Envelope:
    render: Render
    accepts: Accepts


_ENVELOPES: dict[str, Envelope] = {}


def register_envelope(format: str, fn: Render, *, accepts: Accepts | None = None) -> None:
    """Add (or replace) an endpoint format. Call it from an `AppConfig.ready()`."""
    if format == STANDARD_FORMAT or not format or len(format) > FORMAT_MAX_CHARS:
        raise ValueError(f"Cannot register the envelope format {format!r}.")
    _ENVELOPES[format] = Envelope(render=fn, accepts=accepts or (lambda type_, payload: True))


def envelope_formats() -> tuple[str, ...]:
    """The formats an endpoint may have: `standard` and the registered ones."""
    return (STANDARD_FORMAT, *sorted(_ENVELOPES))


def _endpoint_wants(endpoint: WebhookEndpoint, type_: str, payload: dict[str, Any]) -> bool:
    """Whether this endpoint gets a delivery of the event: subscribed to the type (no types = all), and its
    format has a counterpart for it (a format no app registers any more gets nothing)."""
    if endpoint.event_types and type_ not in endpoint.event_types:
        return False
    if endpoint.format == STANDARD_FORMAT:
        return True
    envelope = _ENVELOPES.get(endpoint.format)
    return envelope is not None and envelope.accepts(type_, payload)


def backoff_seconds(attempt: int) -> int:
    return min(BACKOFF_BASE_SECONDS * 2 ** max(attempt - 1, 0), 6 * 3600)


class TargetRefused(OSError):
    """The endpoint's address is not a public one (server-side request forgery guard)."""


def address_problem(address: str) -> str | None:
    """Why a delivery may not go to this IP address (None when it may): only globally routable unicast
    addresses, unless WEBHOOK_ALLOW_PRIVATE_TARGETS."""
    if settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        return None
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if not ip.is_global or ip.is_multicast:
        return (
            f"{ip} is not a public address (private, loopback, link-local, multicast and reserved "
            "addresses are refused; WEBHOOK_ALLOW_PRIVATE_TARGETS allows them on premises)"
        )
    return None


def _resolve(host: str, port: int) -> list[str]:
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


def target_problem(url: str) -> str | None:
    """Why an endpoint URL is refused at create/update time: a host that resolves to a non-public address.
    A name that does not resolve (yet) is accepted; each delivery checks the address it connects to."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        return "Credentials in the URL are not allowed; use the signing secret to authenticate."
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "The port is not valid."
    try:
        addresses = _resolve(host, port)
    except (OSError, UnicodeError):
        return None
    for address in addresses:
        problem = address_problem(address)
        if problem:
            return f"The host resolves to {problem}."
    return None


def _endpoint_clean(
    *, url: str | None, event_types: list[str] | None, description: str | None, format: str | None = None
) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    if url is not None:
        try:
            if not url.startswith(("http://", "https://")) or len(url) > 2000 or "\x00" in url:
                raise DjangoValidationError("scheme")
            URLValidator(schemes=["http", "https"])(url)
        except DjangoValidationError:
            errors.append({"name": "url", "reason": "An http:// or https:// URL is required."})
        else:
            problem = target_problem(url)
            if problem:
                errors.append({"name": "url", "reason": problem})
    if event_types is not None:
        unknown = sorted({str(t) for t in event_types} - set(EVENT_TYPES))
        if unknown:
            errors.append(
                {
                    "name": "eventTypes",
                    "reason": f"Unknown event types: {', '.join(unknown)} (known: {', '.join(EVENT_TYPES)}).",
                }
            )
    if description is not None and len(description) > 200:
        errors.append({"name": "description", "reason": "At most 200 characters."})
    if format is not None and format not in envelope_formats():
        errors.append(
            {"name": "format", "reason": f"Unknown format (known: {', '.join(envelope_formats())})."}
        )
    return errors


def _endpoint_audit(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """What the audit log keeps of an endpoint: never its signing secret."""
    return {
        "url": endpoint.url,
        "eventTypes": list(endpoint.event_types),
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "format": endpoint.format,
    }


def webhook_endpoint_create(
    *,
    organization: Organization,
    url: str,
    event_types: list[str] | None = None,
    description: str = "",
    format: str = STANDARD_FORMAT,
    actor: Actor = None,
) -> WebhookEndpoint:
    """A new endpoint with a fresh `whsec_` signing secret (show it to the caller once). `format` picks the
    envelope of its deliveries (`envelope_formats()`)."""
    url = (url or "").strip()
    raise_invalid(
        _endpoint_clean(url=url, event_types=event_types or [], description=description, format=format)
    )
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            organization=organization,
            url=url,
            event_types=list(dict.fromkeys(event_types or [])),
            description=description,
            format=format,
            secret=secret,
        )
        audit_object(
            endpoint,
            "webhook_endpoint.created",
            actor,
            after={**_endpoint_audit(endpoint), "secret": "set"},
        )
    return endpoint


def webhook_endpoint_update(
    *,
    organization: Organization,
    endpoint_id: str,
    url: str | None = None,
    event_types: list[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
    format: str | None = None,
    actor: Actor = None,
) -> WebhookEndpoint:
    """Change an endpoint (None keeps a value). The signing secret never changes here."""
    url = url.strip() if url is not None else None
    raise_invalid(_endpoint_clean(url=url, event_types=event_types, description=description, format=format))
    with transaction.atomic():
        endpoint = (
            WebhookEndpoint.objects.select_for_update()
            .filter(organization=organization, id=endpoint_id)
            .first()
        )
        if endpoint is None:
            raise NotFound(f"No webhook endpoint {endpoint_id}.")
        before = _endpoint_audit(endpoint)
        if url is not None:
            endpoint.url = url
        if event_types is not None:
            endpoint.event_types = list(dict.fromkeys(event_types))
        if description is not None:
            endpoint.description = description
        if enabled is not None:
            endpoint.enabled = bool(enabled)
        if format is not None:
            endpoint.format = format
        after = _endpoint_audit(endpoint)
        if after != before:
            endpoint.save()
            audit_object(
                endpoint,
                "webhook_endpoint.updated",
                actor,
                before=before,
                after=after,
            )
    return endpoint


def webhook_endpoint_delete(*, organization: Organization, endpoint_id: str, actor: Actor = None) -> None:
    """Delete an endpoint and its delivery log (OpenMeter's behaviour); the messages stay."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.filter(organization=organization, id=endpoint_id).first()
        if endpoint is None:
            raise NotFound(f"No webhook endpoint {endpoint_id}.")
        before = _endpoint_audit(endpoint)
        endpoint.delete()
        audit_object(endpoint, "webhook_endpoint.deleted", actor, object_id=endpoint_id, before=before)


def webhook_event_emit(
    *, organization: Organization, type: str, payload: dict[str, Any], source_ref: str = ""
) -> WebhookMessage | None:
    """Send an event to every endpoint of the organization subscribed to `type`.

    Call it inside your write transaction: the message is stored with it and delivered after commit.
    `source_ref` (optional) makes emitting idempotent: a second call with the same ref is ignored and
    returns None. `payload` must be JSON-serializable (Decimal and datetime are turned into strings).
    """
    if type not in EVENT_TYPES:
        raise ValueError(f"Unknown webhook event type {type!r}.")
    body = json.loads(json.dumps(payload, cls=DjangoJSONEncoder))
    try:
        with transaction.atomic():
            message = WebhookMessage.objects.create(
                organization=organization, type=type, payload=body, source_ref=source_ref
            )
    except IntegrityError:
        return None
    endpoints = [
        e
        for e in WebhookEndpoint.objects.filter(organization=organization, enabled=True)
        if _endpoint_wants(e, type, body)
    ]
    deliveries = WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(organization=organization, endpoint=e, message=message) for e in endpoints]
    )
    for delivery in deliveries:
        enqueue_on_commit(DELIVER_TASK, delivery.id)
    return message


def webhook_events_emit_bulk(*, organization: Organization, events: list[tuple[str, dict[str, Any]]]) -> int:
    """`webhook_event_emit` for many (type, payload) at once (the batched invoice run): one insert for the
    messages, one for the deliveries, delivered after commit. Returns the number of messages."""
    if not events:
        return 0
    for type_, _ in events:
        if type_ not in EVENT_TYPES:
            raise ValueError(f"Unknown webhook event type {type_!r}.")
    messages = WebhookMessage.objects.bulk_create(
        [
            WebhookMessage(
                organization=organization,
                type=type_,
                payload=json.loads(json.dumps(payload, cls=DjangoJSONEncoder)),
            )
            for type_, payload in events
        ]
    )
    endpoints = list(WebhookEndpoint.objects.filter(organization=organization, enabled=True))
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(organization=organization, endpoint=e, message=m)
            for m in messages
            for e in endpoints
            if _endpoint_wants(e, m.type, m.payload)
        ]
    )
    for delivery in deliveries:
        enqueue_on_commit(DELIVER_TASK, delivery.id)
    return len(messages)


def _envelope(message: WebhookMessage) -> bytes:
    return json.dumps(
        {"type": message.type, "timestamp": message.created_at.isoformat(), "data": message.payload},
        separators=(",", ":"),
    ).encode()


def signed_request(
    endpoint: WebhookEndpoint, message: WebhookMessage, *, now: datetime
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one signed delivery, in the endpoint's format (Standard Webhooks by default)."""
    if endpoint.format != STANDARD_FORMAT:
        envelope = _ENVELOPES.get(endpoint.format)
        if envelope is None:
            raise ValueError(f"No envelope is registered for the format {endpoint.format!r}.")
        return envelope.render(endpoint, message, now)
    body = _envelope(message)
    msg_id = f"msg_{message.id}"
    signature = Webhook(endpoint.secret).sign(msg_id, now, body.decode())
    headers = {
        "content-type": "application/json",
        "user-agent": "Meterline-Webhooks/1.0",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    return body, headers


def _guarded_connection(
    address: tuple[str, int], timeout: Any = None, source_address: Any = None
) -> socket.socket:
    """socket.create_connection that refuses (before sending a byte) a peer that is not a public address."""
    sock = socket.create_connection(address, timeout, source_address)
    problem = address_problem(sock.getpeername()[0])
    if problem:
        sock.close()
        raise TargetRefused(f"Refused to deliver: {problem}.")
    return sock


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    """POST once, never following redirects; (status code, the first SNIPPET_CHARS of the answer)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http(s) URL")
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname, parts.port, timeout=TIMEOUT_SECONDS)
    conn._create_connection = _guarded_connection  # type: ignore[attr-defined]
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        raw = response.read(SNIPPET_CHARS * 4)
        return response.status, _snippet(raw)
    finally:
        conn.close()


def _snippet(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    text = "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in text)
    return text[:SNIPPET_CHARS]


def webhook_delivery_attempt(*, delivery_id: str) -> bool:
    """POST one delivery once. Returns True when delivered (2xx) or nothing is left to do."""
    delivery = WebhookDelivery.objects.select_related("endpoint", "message").filter(id=delivery_id).first()
    if delivery is None or delivery.status == DeliveryStatus.SUCCEEDED:
        return True
    now = timezone.now()
    status_code: int | None = None
    snippet = ""
    error = ""
    try:
        body, headers = signed_request(delivery.endpoint, delivery.message, now=now)
        status_code, snippet = _post(delivery.endpoint.url, body, headers)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        error = (str(exc) or type(exc).__name__)[:SNIPPET_CHARS]
    except Exception as exc:  # anything else (a secret that cannot be read, a payload that cannot be signed):
        # this delivery records it and backs off like a failed attempt; no other delivery is affected
        logger.exception("webhook delivery %s failed before sending", delivery.id)
        error = f"{type(exc).__name__}: {exc}"[:SNIPPET_CHARS]
    ok = status_code is not None and 200 <= status_code < 300
    attempts = delivery.attempts + 1
    if ok:
        status = DeliveryStatus.SUCCEEDED
        next_at = None
    elif attempts >= MAX_ATTEMPTS:
        status = DeliveryStatus.FAILED
        next_at = None
    else:
        status = DeliveryStatus.PENDING
        next_at = now + timedelta(seconds=backoff_seconds(attempts))
    WebhookDelivery.objects.filter(id=delivery.id).update(
        attempts=F("attempts") + 1,
        status=status,
        last_status_code=status_code,
        response_snippet=snippet,
        last_error=error or ("" if ok else f"HTTP {status_code}"),
        last_attempt_at=now,
        next_attempt_at=next_at,
    )
    return ok or status == DeliveryStatus.FAILED


def webhook_delivery_resend(
    *, organization: Organization, delivery_id: str, actor: Actor = None
) -> WebhookDelivery:
    """A new delivery of the same message to the same endpoint (the console's resend button)."""
    old = WebhookDelivery.objects.filter(organization=organization, id=delivery_id).first()
    if old is None:
        raise NotFound("No such delivery.")
    with transaction.atomic():
        new = WebhookDelivery.objects.create(
            organization=organization, endpoint_id=old.endpoint_id, message_id=old.message_id
        )
        audit_object(
            new,
            "webhook_delivery.resent",
            actor,
            before={"id": old.id},
        )
        enqueue_on_commit(DELIVER_TASK, new.id)
    return new


def billing_notifications_forward(*, organization: Organization | None = None, limit: int = 1000) -> int:
    """Consume billing's stored notification events (`entitlements.balance.threshold`) as webhooks,
    once each (`source_ref` = the notification's id). Returns how many were new."""
    since = timezone.now() - timedelta(days=NOTIFICATION_LOOKBACK_DAYS)
    # Already-forwarded notifications are excluded in SQL (served by the unique (organization,
    # source_ref) index), so the scan never stalls behind a growing backlog of forwarded ones.
    forwarded = WebhookMessage.objects.filter(
        organization_id=OuterRef("organization_id"),
        source_ref=Concat(Value("billing-notification:"), OuterRef("id"), output_field=CharField()),
    )
    qs = (
        NotificationEvent.objects.filter(created_at__gte=since)
        .filter(~Exists(forwarded))
        .select_related("organization")
        .order_by("created_at")
    )
    if organization is not None:
        qs = qs.filter(organization=organization)
    # a notification that cannot be forwarded is recorded and quarantined (core.jobs); the others go on
    skip = jobs.quarantined(FORWARD_JOB, "notification")
    if skip:
        qs = qs.exclude(id__in=skip)
    count = 0
    for event in qs[:limit]:
        ref = f"billing-notification:{event.id}"
        type_ = "entitlement.balance.threshold" if "threshold" in event.type else event.type
        if type_ not in EVENT_TYPES:
            continue
        with (
            jobs.isolated(
                FORWARD_JOB,
                organization_id=event.organization_id,
                object_type="notification",
                object_id=str(event.id),
                was_failing=str(event.id) in skip.failing,
            ) as outcome,
            transaction.atomic(),
        ):
            emitted = webhook_event_emit(
                organization=event.organization, type=type_, payload=event.payload, source_ref=ref
            )
        if not outcome.failed and emitted:
            count += 1
        if count >= limit:
            break
    return count
