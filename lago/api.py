"""Lago's REST API (v1) under `/lago/api/v1/`, so `lago-python-client` works with
`api_url="https://<host>/lago/"` and one of our API keys.

Each view unwraps Lago's envelope (`{"customer": {...}}`), calls one service or selector of `lago/`, and
answers in Lago's envelope. Errors come out in Lago's shape (`{"status", "error", "code",
"error_details"}`): 422 `validation_errors` with the bad fields, 404 `<object>_not_found`, 401, 403, 405.
These views are not in our OpenAPI schema (`/api/schema/` describes our own API; Lago publishes its own).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions as drf_exc
from rest_framework.request import Request
from rest_framework.response import Response

from core.api_base import TenantAPIView
from core.auth import CachedBearerAuthentication
from core.errors import Conflict, DomainError, NotFound, PayloadTooLarge, Unavailable, ValidationFailed
from invoicing import services as invoicing_services
from invoicing.pdf import invoice_pdf
from lago import (
    invoice_selectors,
    mapping,
    selectors,
    services,
    signing,
    wallet_services,
    webhook_endpoint_services,
    wire,
)
from lago.wire import LagoInvalid, error_body

# --- errors ----------------------------------------------------------------------------------------


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def lago_error(status: int, code: str, details: dict[str, Any] | None = None) -> Response:
    return Response(error_body(status, code, details=details), status=status)


def lago_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every error of this API in Lago's shape."""
    if isinstance(exc, LagoInvalid):
        return lago_error(422, "validation_errors", exc.details)
    if isinstance(exc, NotFound):
        code = (
            exc.detail if exc.detail.endswith("_not_found") or exc.detail.startswith("no_") else "not_found"
        )
        return lago_error(404, code)
    if isinstance(exc, ValidationFailed):
        details: dict[str, list[str]] = {}
        for e in exc.errors or [{"name": exc.field or "base", "reason": exc.detail}]:
            details.setdefault(_snake(e["name"]), []).append(e["reason"])
        return lago_error(422, "validation_errors", details)
    if isinstance(exc, Conflict):
        return lago_error(422, "validation_errors", {_snake(exc.field or "base"): [exc.detail]})
    if isinstance(exc, PayloadTooLarge):
        return lago_error(413, "payload_too_large")
    if isinstance(exc, Unavailable):
        response = lago_error(503, "service_unavailable")
        response["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, DomainError):
        return lago_error(exc.status, exc.code.replace("-", "_"))
    if isinstance(exc, (drf_exc.NotAuthenticated, drf_exc.AuthenticationFailed)):
        return lago_error(401, "unauthorized")
    if isinstance(exc, drf_exc.PermissionDenied):
        return lago_error(403, "forbidden")
    if isinstance(exc, drf_exc.ParseError):
        return lago_error(400, "bad_request", {"body": [str(exc.detail)]})
    if isinstance(exc, drf_exc.MethodNotAllowed):
        return lago_error(405, "method_not_allowed")
    if isinstance(exc, drf_exc.UnsupportedMediaType):
        return lago_error(415, "unsupported_media_type")
    if isinstance(exc, drf_exc.Throttled):
        return lago_error(429, "too_many_requests")
    if isinstance(exc, drf_exc.NotFound):
        return lago_error(404, "not_found")
    if isinstance(exc, drf_exc.APIException):
        return lago_error(exc.status_code, "error")
    return None


def not_found_view(request: HttpRequest, path: str = "") -> HttpResponse:
    """Any other path under /lago/: Lago's 404."""
    return JsonResponse(error_body(404, "not_found"), status=404)


# --- base --------------------------------------------------------------------------------------------


class LagoView(TenantAPIView):
    abstract = True
    schema = None  # type: ignore[assignment]  # Lago describes its API; ours is at /api/schema/
    # Reads need `read`, writes `admin`; any other method is an admin's 405.
    required_scopes: ClassVar[dict[str, str] | None] = {"GET": "read", "*": "admin"}
    root: ClassVar[str] = ""

    def get_exception_handler(self):
        return lago_exception_handler

    def body(self, root: str | None = None) -> Any:
        """The object inside Lago's envelope; a missing envelope is Lago's 400 (`param is missing`)."""
        root = root or self.root
        data = self.request.data
        if not isinstance(data, dict) or root not in data:
            raise drf_exc.ParseError(f"param is missing or the value is empty: {root}")
        return data[root]

    def page(self) -> selectors.Page:
        errors: dict[str, list[str]] = {}
        values = []
        for name, default, top in (("page", 1, 1_000_000), ("per_page", 20, 100)):
            raw = self.request.query_params.get(name)
            try:
                value = int(raw) if raw not in (None, "") else default
            except ValueError:
                errors[name] = ["invalid_value"]
                value = default
            if not 1 <= value <= top:
                errors[name] = ["invalid_value"]
            values.append(value)
        if errors:
            raise LagoInvalid(errors)
        return selectors.Page(values[0], values[1])


class _Listing(LagoView):
    """GET: a page of the resource (`lister`, a selector taking the organization and the page), under its
    plural with Lago's `meta`."""

    abstract = True
    plural: ClassVar[str]
    lister: ClassVar[Callable[..., tuple[list[Any], dict[str, Any]]]]

    def get(self, request: Request) -> Response:
        items, meta = type(self).lister(organization=self.organization, page=self.page())
        return Response({self.plural: items, "meta": meta})


class _ByCode(LagoView):
    """A resource addressed by its code: GET answers it (`reader`); DELETE deletes it (`deleter`) and
    answers it as it was."""

    abstract = True
    reader: ClassVar[Callable[..., dict[str, Any]]]
    deleter: ClassVar[Callable[..., Any]]

    def answer(self, code: str) -> Response:
        return Response({self.root: type(self).reader(organization=self.organization, code=code)})

    def get(self, request: Request, code: str) -> Response:
        return self.answer(code)

    def delete(self, request: Request, code: str) -> Response:
        answer = self.answer(code)
        type(self).deleter(organization=self.organization, code=code, actor=self.actor)
        return answer


# --- billable metrics ------------------------------------------------------------------------------


class BillableMetricsView(_Listing):
    root = "billable_metric"
    plural = "billable_metrics"
    lister = staticmethod(selectors.metric_list)

    def post(self, request: Request) -> Response:
        feature_id = services.metric_create(
            organization=self.organization, data=self.body(), actor=self.actor
        )
        return Response(
            {"billable_metric": selectors.metric_get(organization=self.organization, code=feature_id)}
        )


class BillableMetricView(_ByCode):
    root = "billable_metric"
    reader = staticmethod(selectors.metric_get)
    deleter = staticmethod(services.metric_delete)


# --- plans -------------------------------------------------------------------------------------------


class PlansView(_Listing):
    root = "plan"
    plural = "plans"
    lister = staticmethod(selectors.plan_list)

    def post(self, request: Request) -> Response:
        code = services.plan_create(organization=self.organization, data=self.body(), actor=self.actor)
        return Response({"plan": selectors.plan_get(organization=self.organization, code=code)})


class PlanView(_ByCode):
    root = "plan"
    reader = staticmethod(selectors.plan_get)
    deleter = staticmethod(services.plan_delete)

    def put(self, request: Request, code: str) -> Response:
        selectors.plan_get(organization=self.organization, code=code)
        services.plan_update(organization=self.organization, code=code, data=self.body(), actor=self.actor)
        return self.answer(code)


# --- customers ------------------------------------------------------------------------------------


class CustomersView(_Listing):
    root = "customer"
    plural = "customers"
    lister = staticmethod(selectors.customer_list)

    def post(self, request: Request) -> Response:
        customer = services.customer_upsert(
            organization=self.organization, data=self.body(), actor=self.actor
        )
        return Response({"customer": selectors.customer_json(customer, organization=self.organization)})


class CustomerView(LagoView):
    def get(self, request: Request, external_id: str) -> Response:
        customer = selectors.customer_by_external_id(organization=self.organization, external_id=external_id)
        return Response({"customer": selectors.customer_json(customer, organization=self.organization)})

    def delete(self, request: Request, external_id: str) -> Response:
        customer = selectors.customer_by_external_id(organization=self.organization, external_id=external_id)
        body = selectors.customer_json(customer, organization=self.organization)
        services.customer_delete(organization=self.organization, external_id=customer.id, actor=self.actor)
        return Response({"customer": body})


class CurrentUsageView(LagoView):
    def get(self, request: Request, external_id: str) -> Response:
        customer = selectors.customer_by_external_id(organization=self.organization, external_id=external_id)
        sub_id = request.query_params.get("external_subscription_id")
        if not sub_id:
            raise LagoInvalid({"external_subscription_id": ["value_is_mandatory"]})
        sub = services.subscription_current(organization=self.organization, external_id=sub_id)
        if sub.customer_id != customer.id:
            raise NotFound("subscription_not_found")
        usage = invoice_selectors.current_usage(
            organization=self.organization, customer=customer, subscription=sub
        )
        return Response({"customer_usage": usage})


# --- subscriptions -------------------------------------------------------------------------------

SUBSCRIPTION_STATUSES = ("active", "pending", "terminated", "canceled")


class SubscriptionsView(LagoView):
    root = "subscription"

    def get(self, request: Request) -> Response:
        q = request.query_params
        statuses = q.getlist("status[]") or q.getlist("status")
        if any(s not in SUBSCRIPTION_STATUSES for s in statuses):
            raise LagoInvalid({"status": ["value_is_invalid"]})
        items, meta = selectors.subscription_list(
            organization=self.organization,
            page=self.page(),
            external_customer_id=q.get("external_customer_id", ""),
            plan_code=q.get("plan_code", ""),
            statuses=statuses,
        )
        return Response({"subscriptions": items, "meta": meta})

    def post(self, request: Request) -> Response:
        data = self.body()
        sub = services.subscription_create(organization=self.organization, data=data, actor=self.actor)
        external_id = data.get("external_id") or data.get("external_customer_id")
        return Response({"subscription": selectors.subscription_json(sub, external_id=external_id)})


class SubscriptionView(LagoView):
    root = "subscription"

    def put(self, request: Request, external_id: str) -> Response:
        sub = services.subscription_update(
            organization=self.organization, external_id=external_id, data=self.body(), actor=self.actor
        )
        return Response({"subscription": selectors.subscription_json(sub, external_id=external_id)})

    def get(self, request: Request, external_id: str) -> Response:
        sub = services.subscription_current(organization=self.organization, external_id=external_id)
        return Response({"subscription": selectors.subscription_json(sub, external_id=external_id)})

    def delete(self, request: Request, external_id: str) -> Response:
        sub = services.subscription_terminate(
            organization=self.organization, external_id=external_id, actor=self.actor
        )
        return Response({"subscription": selectors.subscription_json(sub, external_id=external_id)})


# --- events ----------------------------------------------------------------------------------------


class EventsView(LagoView):
    required_scopes = {"POST": "ingest", "GET": "read", "*": "admin"}
    authentication_classes = [CachedBearerAuthentication]
    root = "event"

    def get(self, request: Request) -> Response:
        q = request.query_params
        bounds = {}
        for name in ("timestamp_from", "timestamp_to"):
            raw = q.get(name)
            if raw:
                bounds[name] = wire.parse_datetime(raw) or wire.parse_timestamp(raw)
                if bounds[name] is None:
                    raise LagoInvalid({name: ["invalid_date"]})
        items, meta = selectors.event_list(
            organization=self.organization,
            page=self.page(),
            external_subscription_id=q.get("external_subscription_id") or None,
            code=q.get("code") or None,
            timestamp_from=bounds.get("timestamp_from"),
            timestamp_to=bounds.get("timestamp_to"),
        )
        return Response({"events": items, "meta": meta})

    def post(self, request: Request) -> Response:
        (cloud,) = services.events_ingest(organization=self.organization, events=[self.body()], single=True)
        return Response({"event": selectors.event_json(cloud)})


class EventsBatchView(LagoView):
    required_scopes = {"POST": "ingest", "*": "admin"}
    authentication_classes = [CachedBearerAuthentication]
    root = "events"
    MAX_EVENTS = 100  # Lago's batch limit

    def post(self, request: Request) -> Response:
        events = self.body()
        if not isinstance(events, list) or not events:
            raise LagoInvalid({"events": ["value_is_mandatory"]})
        if len(events) > self.MAX_EVENTS:
            raise LagoInvalid({"events": ["too_many_events"]})
        clouds = services.events_ingest(organization=self.organization, events=events, single=False)
        return Response({"events": [selectors.event_json(c) for c in clouds]})


class EventView(LagoView):
    def get(self, request: Request, transaction_id: str) -> Response:
        return Response(
            {"event": selectors.event_get(organization=self.organization, transaction_id=transaction_id)}
        )


# --- invoices ---------------------------------------------------------------------------------------


class _InvoiceBase(LagoView):
    abstract = True

    def answer(self, invoice: Any, *, with_fees: bool = True) -> dict[str, Any]:
        token = invoice_selectors.invoice_file_token(invoice)
        url = self.request.build_absolute_uri(f"/lago/files/invoices/{token}")
        return invoice_selectors.invoice_json(
            invoice, organization=self.organization, file_url=url, with_fees=with_fees
        )


class InvoicesView(_InvoiceBase):
    def get(self, request: Request) -> Response:
        q = request.query_params
        status = q.get("status", "")
        if status and status not in mapping.INVOICE_STATUS_FILTER:
            raise LagoInvalid({"status": ["value_is_invalid"]})
        qs = invoice_selectors.invoice_list(
            organization=self.organization,
            external_customer_id=q.get("external_customer_id", ""),
            status=status,
        )
        chunk, meta = selectors.paginate(qs, self.page())
        return Response({"invoices": [self.answer(i, with_fees=False) for i in chunk], "meta": meta})


class InvoiceView(_InvoiceBase):
    def get(self, request: Request, invoice_id: str) -> Response:
        invoice = invoice_selectors.invoice_get(organization=self.organization, invoice_id=invoice_id)
        return Response({"invoice": self.answer(invoice)})


class InvoiceDownloadView(_InvoiceBase):
    """Lago answers the invoice with `file_url` (a link to the PDF, valid 7 days, no key needed)."""

    required_scopes = {"POST": "read", "*": "admin"}

    def post(self, request: Request, invoice_id: str) -> Response:
        invoice = invoice_selectors.invoice_get(organization=self.organization, invoice_id=invoice_id)
        if invoice.status == "draft":  # Lago renders no PDF for drafts
            return Response(status=200)
        return Response({"invoice": self.answer(invoice)})


class InvoiceRefreshView(_InvoiceBase):
    """Our drafts are rebuilt from raw usage when they are finalized, so refresh answers the invoice."""

    def put(self, request: Request, invoice_id: str) -> Response:
        invoice = invoice_selectors.invoice_get(organization=self.organization, invoice_id=invoice_id)
        return Response({"invoice": self.answer(invoice)})


class InvoiceFinalizeView(_InvoiceBase):
    def put(self, request: Request, invoice_id: str) -> Response:
        invoice = invoice_selectors.invoice_get(organization=self.organization, invoice_id=invoice_id)
        services.invoice_finalize(organization=self.organization, invoice=invoice, actor=self.actor)
        invoice = invoice_selectors.invoice_get(organization=self.organization, invoice_id=invoice_id)
        return Response({"invoice": self.answer(invoice)})


class InvoiceVoidView(_InvoiceBase):
    """Lago voids finalized invoices; ours voids drafts too (a voided invoice keeps its number)."""

    def post(self, request: Request, invoice_id: str) -> Response:
        invoice = invoice_selectors.invoice_get(organization=self.organization, invoice_id=invoice_id)
        try:
            invoicing_services.invoice_void(organization=self.organization, invoice=invoice, actor=self.actor)
        except Conflict:
            raise LagoInvalid({"invoice": ["not_voidable"]}) from None
        invoice = invoice_selectors.invoice_get(organization=self.organization, invoice_id=invoice_id)
        return Response({"invoice": self.answer(invoice)})


def invoice_file(request: HttpRequest, token: str) -> HttpResponse:
    """The PDF behind `file_url`: the signed token is the credential (like Lago's storage links)."""
    try:
        invoice = invoice_selectors.invoice_from_file_token(token)
    except NotFound:
        return JsonResponse(error_body(404, "invoice_not_found"), status=404)
    response = HttpResponse(invoice_pdf(invoice), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{invoice.number or invoice.id}.pdf"'
    return response


# --- wallets -----------------------------------------------------------------------------------------


class WalletsView(LagoView):
    root = "wallet"

    def get(self, request: Request) -> Response:
        external_customer_id = request.query_params.get("external_customer_id")
        if not external_customer_id:
            raise LagoInvalid({"external_customer_id": ["value_is_mandatory"]})
        items = invoice_selectors.wallet_list(
            organization=self.organization, external_customer_id=external_customer_id
        )
        chunk, meta = selectors.paginate(items, self.page())
        return Response({"wallets": chunk, "meta": meta})

    def post(self, request: Request) -> Response:
        customer, _ = wallet_services.wallet_create(
            organization=self.organization, data=self.body(), actor=self.actor
        )
        return Response(
            {"wallet": invoice_selectors.wallet_json(organization=self.organization, customer=customer)}
        )


class WalletView(LagoView):
    def get(self, request: Request, wallet_id: str) -> Response:
        customer = wallet_services.wallet_customer(organization=self.organization, wallet_id=wallet_id)
        return Response(
            {"wallet": invoice_selectors.wallet_json(organization=self.organization, customer=customer)}
        )

    def delete(self, request: Request, wallet_id: str) -> Response:
        customer = wallet_services.wallet_terminate(
            organization=self.organization, wallet_id=wallet_id, actor=self.actor
        )
        return Response(
            {"wallet": invoice_selectors.wallet_json(organization=self.organization, customer=customer)}
        )


class WalletTransactionsView(LagoView):
    root = "wallet_transaction"

    def post(self, request: Request) -> Response:
        customer, credits = wallet_services.wallet_transaction_create(
            organization=self.organization, data=self.body(), actor=self.actor
        )
        return Response(
            {
                "wallet_transactions": [
                    invoice_selectors.credit_transaction_json(c, customer=customer) for c in credits
                ]
            }
        )


class WalletTransactionListView(LagoView):
    def get(self, request: Request, wallet_id: str) -> Response:
        customer = wallet_services.wallet_customer(organization=self.organization, wallet_id=wallet_id)
        items = invoice_selectors.wallet_transactions(organization=self.organization, customer=customer)
        chunk, meta = selectors.paginate(items, self.page())
        return Response({"wallet_transactions": chunk, "meta": meta})


# --- webhook endpoints ----------------------------------------------------------------------------


class WebhookEndpointsView(_Listing):
    """Lago's webhook endpoints: our endpoints with `format="lago"`. The create answer carries `hmac_key`,
    the signing secret of `X-Lago-Signature` (shown once)."""

    root = "webhook_endpoint"
    plural = "webhook_endpoints"
    lister = staticmethod(selectors.webhook_endpoint_list)

    def post(self, request: Request) -> Response:
        endpoint = webhook_endpoint_services.webhook_endpoint_create(
            organization=self.organization, data=self.body(), actor=self.actor
        )
        return Response(
            {"webhook_endpoint": {**selectors.webhook_endpoint_json(endpoint), "hmac_key": endpoint.secret}}
        )


class WebhookEndpointView(LagoView):
    root = "webhook_endpoint"

    def get(self, request: Request, lago_id: str) -> Response:
        endpoint = webhook_endpoint_services.webhook_endpoint_get(
            organization=self.organization, lago_id=lago_id
        )
        return Response({"webhook_endpoint": selectors.webhook_endpoint_json(endpoint)})

    def put(self, request: Request, lago_id: str) -> Response:
        endpoint = webhook_endpoint_services.webhook_endpoint_update(
            organization=self.organization, lago_id=lago_id, data=self.body(), actor=self.actor
        )
        return Response({"webhook_endpoint": selectors.webhook_endpoint_json(endpoint)})

    def delete(self, request: Request, lago_id: str) -> Response:
        endpoint = webhook_endpoint_services.webhook_endpoint_delete(
            organization=self.organization, lago_id=lago_id, actor=self.actor
        )
        return Response({"webhook_endpoint": selectors.webhook_endpoint_json(endpoint)})


class WebhookPublicKeyView(LagoView):
    """The public key of the organization's JWT webhook signatures, as Lago serves it: Base64 of the PEM,
    as plain text (`/webhooks/public_key`) or as `{"webhook": {"public_key"}}` (`/webhooks/json_public_key`,
    what `client.webhooks.public_key()` reads)."""

    as_json: ClassVar[bool] = False

    def get(self, request: Request) -> HttpResponse:
        key = signing.public_key_base64(organization_id=self.organization.id)
        if self.as_json:
            return Response({"webhook": {"public_key": key}})
        return HttpResponse(key, content_type="text/plain")


class WebhookJsonPublicKeyView(WebhookPublicKeyView):
    as_json = True
