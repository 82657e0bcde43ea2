"""Domain errors and their one mapping to RFC 7807 problem+json.

Services raise `DomainError` subclasses; the DRF exception handler and the console turn them
into problem documents or friendly messages. Every API error body has `type`, `title`,
`status`, `detail`; validation errors add `invalid_params`: [{"name": <field path>, "reason": ...}],
where the path looks like `phases[1].rateCards[0].price.tiers[2].upToAmount`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import IntegrityError, transaction
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf_exc
from rest_framework.response import Response

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "https://meterline.dev/problems/"


class DomainError(Exception):
    status = 400
    code = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, *, field: str | None = None, extra: dict[str, Any] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra or {}


class ValidationFailed(DomainError):
    status = 400
    code = "validation-error"
    title = "Invalid request"

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        errors: list[dict[str, str]] | None = None,
        extra: dict[str, Any] | None = None,
    ):
        super().__init__(detail, field=field, extra=extra)
        self.errors = errors or ([{"name": field, "reason": detail}] if field else [])


class NotFound(DomainError):
    status = 404
    code = "not-found"
    title = "Not found"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict"


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload-too-large"
    title = "Payload too large"


class Unavailable(DomainError):
    """Cannot take the request now (e.g. ingest backlog full); the client retries after `retry_after` s."""

    status = 503
    code = "unavailable"
    title = "Service unavailable"

    def __init__(self, detail: str, *, retry_after: int, extra: dict[str, Any] | None = None):
        super().__init__(detail, extra=extra)
        self.retry_after = retry_after


@contextmanager
def conflict_on_duplicate(detail: str, *, field: str) -> Iterator[None]:
    """One transaction for a create and its audit row; a unique constraint it breaks (a duplicate key or
    slug) becomes a 409 Conflict naming `field`, and nothing is written.

        with conflict_on_duplicate(f"A meter with slug {slug!r} already exists.", field="slug"):
            meter = Meter.objects.create(...)
            audit_record(...)
    """
    try:
        with transaction.atomic():
            yield
    except IntegrityError:
        raise Conflict(detail, field=field) from None


# --- collecting every problem of a document before refusing it ----------------------------------------


def errors_summary(errors: list[dict[str, str]]) -> str:
    """`name: reason; name: reason`, the detail line of a refusal listing several fields."""
    return "; ".join(f"{e['name']}: {e['reason']}" for e in errors)


def raise_invalid(errors: list[dict[str, str]]) -> None:
    """Refuse with every collected problem ([{"name": path, "reason": ...}]) at once; nothing when empty."""
    if errors:
        raise ValidationFailed(errors_summary(errors), field=errors[0]["name"], errors=errors)


def merge_problems(*reports: list[dict[str, str]]) -> list[dict[str, str]]:
    """Several checks' reports on one document as one list, naming each field once: a name an earlier
    report gave is left out of the later ones (e.g. the domain's rules before a serializer's fields)."""
    merged: list[dict[str, str]] = []
    for report in reports:
        named = {e["name"] for e in merged}
        merged.extend(e for e in report if e["name"] not in named)
    return merged


class ErrorList:
    """The problems found while validating a whole document, reported together (`raise_invalid`).

    `prefix` goes before each name (`[2].` for the third entry of a batch), `suffix` after each reason."""

    def __init__(self, prefix: str = "", suffix: str = "") -> None:
        self.prefix = prefix
        self.suffix = suffix
        self.items: list[dict[str, str]] = []

    def add(self, name: str, reason: str) -> None:
        self.items.append({"name": f"{self.prefix}{name}", "reason": f"{reason}{self.suffix}"})

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        raise_invalid(self.items)


def problem(status: int, title: str, detail: str, *, code: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (code or title.lower().replace(" ", "-")),
        "title": title,
        "status": status,
        "detail": detail,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    response = Response(body, status=body["status"], headers=headers, content_type=PROBLEM_CONTENT_TYPE)
    return response


def flatten_errors(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """Turn DRF's nested error structure into [{"name": "a.b[2].c", "reason": "..."}]."""
    out: list[dict[str, str]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):  # ListField/DictField child errors are keyed by index
                path = f"{prefix}[{key}]"
            else:
                name = "" if key == "non_field_errors" else str(key)
                path = f"{prefix}.{name}" if prefix and name else (prefix or name)
            out.extend(flatten_errors(value, path))
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            for item in detail:
                out.append({"name": prefix or "body", "reason": str(item)})
        else:
            for index, item in enumerate(detail):
                if item in ({}, [], None):
                    continue
                out.extend(flatten_errors(item, f"{prefix}[{index}]"))
    else:
        out.append({"name": prefix or "body", "reason": str(detail)})
    return out


def domain_error_body(exc: DomainError) -> dict[str, Any]:
    extra = dict(exc.extra)
    if isinstance(exc, ValidationFailed) and exc.errors:
        extra["invalid_params"] = exc.errors
    elif exc.field:
        extra["invalid_params"] = [{"name": exc.field, "reason": exc.detail}]
    return problem(exc.status, exc.title, exc.detail, code=exc.code, **extra)


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        retry = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Unavailable) else None
        return problem_response(domain_error_body(exc), headers=retry)
    if isinstance(exc, Http404):
        return problem_response(problem(404, "Not found", str(exc) or "Not found.", code="not-found"))
    if isinstance(exc, DjangoPermissionDenied):
        return problem_response(problem(403, "Forbidden", str(exc) or "Forbidden.", code="forbidden"))
    if isinstance(exc, drf_exc.ValidationError):
        errors = flatten_errors(exc.detail)
        summary = "; ".join(f"{e['name']}: {e['reason']}" for e in errors[:5]) or "Invalid request."
        return problem_response(
            problem(400, "Invalid request", summary, code="validation-error", invalid_params=errors)
        )
    if isinstance(exc, drf_exc.ParseError):
        return problem_response(
            problem(
                400,
                "Malformed request body",
                str(exc.detail),
                code="malformed-body",
                invalid_params=[{"name": "body", "reason": str(exc.detail)}],
            )
        )
    if isinstance(exc, drf_exc.APIException):
        headers: dict[str, str] = {}
        if isinstance(exc, (drf_exc.NotAuthenticated, drf_exc.AuthenticationFailed)):
            headers["WWW-Authenticate"] = 'Bearer realm="api"'
            status = 401
        else:
            status = exc.status_code
        wait = getattr(exc, "wait", None)
        if wait:
            headers["Retry-After"] = str(int(wait))
        titles = {
            401: "Unauthorized",
            403: "Forbidden",
            404: "Not found",
            405: "Method not allowed",
            406: "Not acceptable",
            415: "Unsupported media type",
            429: "Too many requests",
        }
        title = titles.get(status, "Error")
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return problem_response(
            problem(status, title, str(detail), code=title.lower().replace(" ", "-")), headers=headers
        )
    return None


def json_problem(status: int, title: str, detail: str, **extra: Any) -> JsonResponse:
    """A problem+json response outside DRF (Django's 404/500 handlers under /api/)."""
    return JsonResponse(
        problem(status, title, detail, **extra), status=status, content_type=PROBLEM_CONTENT_TYPE
    )
