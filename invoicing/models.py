"""Invoicing models: invoices and lines, tax rates, numbering, credits, Stripe, webhooks, invoice runs.

Money is `Decimal` (NUMERIC(38,12) for quantities and unit prices; line amounts are already rounded
once to the currency with `core.money.quantize`). Totals are sums of rounded lines.
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from billing.models import Customer
from core.fields import EncryptedTextField
from core.models import TenantModel

ZERO = 0


class InvoiceStatus(models.TextChoices):
    GATHERING = "gathering"
    DRAFT = "draft"
    ISSUED = "issued"
    PAID = "paid"
    PAYMENT_FAILED = "payment_failed"
    OVERDUE = "overdue"
    UNCOLLECTIBLE = "uncollectible"
    VOIDED = "voided"


class LineType(models.TextChoices):
    FLAT_FEE = "flat_fee"
    USAGE = "usage"
    MANUAL = "manual"
    COMMITMENT = "commitment"
    DISCOUNT = "discount"
    CREDIT = "credit"
    TAX = "tax"
    ADJUSTMENT = "adjustment"


class InvoicingSettings(TenantModel):
    """Per-organization invoicing settings and the supplier details printed on invoices."""

    collection_delay_seconds = models.PositiveIntegerField(
        default=3600, help_text="Wait this long after a period ends before drafting (late events)."
    )
    auto_advance = models.BooleanField(default=True, help_text="Issue drafts automatically.")
    draft_period_seconds = models.PositiveIntegerField(
        default=0, help_text="How long a draft stays editable before it is issued automatically."
    )
    due_days = models.PositiveIntegerField(default=30)
    number_prefix = models.CharField(max_length=20, blank=True, default="")
    supplier_name = models.CharField(max_length=200, blank=True, default="")
    supplier_address = models.TextField(blank=True, default="")
    supplier_tax_id = models.CharField(max_length=64, blank=True, default="")
    supplier_email = models.CharField(max_length=320, blank=True, default="")
    payment_instructions = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="invoicing_settings_one_per_org")
        ]


class TaxRate(TenantModel):
    """A tax rate (percent). Exclusive: added on top of the lines. Inclusive: already inside them."""

    name = models.CharField(max_length=100)
    percentage = models.DecimalField(max_digits=7, decimal_places=4)
    inclusive = models.BooleanField(default=False)
    is_default = models.BooleanField(default=False)
    stripe_tax_rate_id = models.CharField(max_length=255, blank=True, default="")
    archived_at = models.DateTimeField(
        null=True, blank=True, help_text="Archived rates stay on old invoices but are no longer offered."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization"], condition=Q(is_default=True), name="invoicing_taxrate_one_default"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.percentage}% ({'inclusive' if self.inclusive else 'exclusive'})"


class NumberSequence(TenantModel):
    """Gapless numbering per organization and series (e.g. `ACME-2026`). Locked only in
    `invoicing.services.invoice_number_assign`, inside the transaction that issues the invoice."""

    series = models.CharField(max_length=64)
    last_value = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "series"], name="invoicing_sequence_unique")
        ]


# the unique key of an invoice in its organization (the constraint below)
NATURAL_KEY = ("customer_id", "currency", "kind", "period_start", "period_end")


def natural_key(of: Any) -> dict[str, Any]:
    """An invoice's natural key (customer, currency, kind, period) as keyword arguments, read off anything
    that carries it: a `DuePeriod`, an `Invoice`, an `InvoiceRunItem`."""
    return {name: getattr(of, name) for name in NATURAL_KEY}


class Invoice(TenantModel):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=20, choices=InvoiceStatus.choices, default=InvoiceStatus.GATHERING)
    kind = models.CharField(max_length=16, default="period")  # period | start | on_demand
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    number = models.CharField(max_length=64, blank=True, default="")
    issued_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    drafted_at = models.DateTimeField(null=True, blank=True)
    draft_until = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    amount = models.DecimalField(default=ZERO, max_digits=38, decimal_places=12)
    discounts_total = models.DecimalField(default=ZERO, max_digits=38, decimal_places=12)
    credits_total = models.DecimalField(default=ZERO, max_digits=38, decimal_places=12)
    taxes_total = models.DecimalField(default=ZERO, max_digits=38, decimal_places=12)
    taxes_inclusive_total = models.DecimalField(default=ZERO, max_digits=38, decimal_places=12)
    total = models.DecimalField(default=ZERO, max_digits=38, decimal_places=12)
    supplier_snapshot = models.JSONField(default=dict, blank=True)
    customer_snapshot = models.JSONField(default=dict, blank=True)
    stripe_invoice_id = models.CharField(max_length=255, blank=True, default="")
    stripe_status = models.CharField(max_length=32, blank=True, default="")
    stripe_hosted_url = models.URLField(max_length=1000, blank=True, default="")
    sync_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-period_start", "-id"]
        constraints = [
            # The natural key that makes invoice runs idempotent (one invoice per billing moment).
            models.UniqueConstraint(
                fields=["organization", "customer", "currency", "kind", "period_start", "period_end"],
                name="invoicing_invoice_natural_key",
            ),
            models.UniqueConstraint(
                fields=["organization", "number"],
                condition=~Q(number=""),
                name="invoicing_invoice_number_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "status", "-period_start"]),
            models.Index(fields=["organization", "customer", "-period_start"]),
            models.Index(fields=["organization", "stripe_invoice_id"]),
        ]

    def __str__(self) -> str:
        return self.number or f"{self.status} {self.id}"


class InvoiceLine(TenantModel):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    type = models.CharField(max_length=16, choices=LineType.choices)
    position = models.PositiveIntegerField(default=0)
    description = models.CharField(max_length=500)
    quantity = models.DecimalField(null=True, blank=True, max_digits=38, decimal_places=12)
    unit_price = models.DecimalField(null=True, blank=True, max_digits=38, decimal_places=12)
    amount = models.DecimalField(max_digits=38, decimal_places=12)  # rounded once with core.money.quantize
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    detail = models.JSONField(default=list, blank=True)  # the pricing engine's detail lines
    key = models.CharField(max_length=300, blank=True, default="")  # progressive billing: item:period:kind
    subscription_id = models.CharField(max_length=64, blank=True, default="")
    subscription_item_id = models.CharField(max_length=64, blank=True, default="")
    rate_card_key = models.CharField(max_length=256, blank=True, default="")
    feature_key = models.CharField(max_length=256, blank=True, default="")
    billing_period_start = models.DateTimeField(null=True, blank=True)
    billing_period_end = models.DateTimeField(null=True, blank=True)
    tax_rate = models.ForeignKey(TaxRate, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    taxable = models.BooleanField(default=True)
    stripe_invoice_item_id = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["organization", "key"])]


class CustomerCredit(TenantModel):
    """Prepaid or promotional money credit for a customer, applied to invoices as negative lines.
    What is left is the amount minus its applications on invoices that are not voided. A voided credit
    (`voided_at`) is never applied again; what it paid stays paid (`invoicing.credits`)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    currency = models.CharField(max_length=3)
    amount = models.DecimalField(max_digits=38, decimal_places=12)
    description = models.CharField(max_length=200, default="Credit")
    priority = models.PositiveSmallIntegerField(default=1)
    expires_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["priority", "expires_at", "created_at", "id"]


class CreditApplication(TenantModel):
    credit = models.ForeignKey(CustomerCredit, on_delete=models.CASCADE, related_name="applications")
    line = models.ForeignKey(InvoiceLine, on_delete=models.CASCADE, related_name="credit_applications")
    amount = models.DecimalField(max_digits=38, decimal_places=12)


# --- Stripe -------------------------------------------------------------------------------------------
class StripeSettings(TenantModel):
    # Encrypted at rest (core.crypto, FIELD_ENCRYPTION_KEY); read and written in clear by the code.
    secret_key = EncryptedTextField()
    webhook_secret = EncryptedTextField(blank=True, default="")
    api_version = models.CharField(max_length=64, default="2026-10-28.endive")
    enabled = models.BooleanField(default=True)
    collection_method = models.CharField(max_length=32, default="send_invoice")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization"], name="invoicing_stripe_one_per_org")]


class StripeEvent(TenantModel):
    """A Stripe webhook event, stored once (unique Stripe event id) before it is processed."""

    stripe_event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    result = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "stripe_event_id"], name="invoicing_stripe_event_once"
            )
        ]


# --- outbound webhooks ------------------------------------------------------------------------------
class WebhookEndpoint(TenantModel):
    url = models.URLField(max_length=1000)
    description = models.CharField(max_length=200, blank=True, default="")
    secret = models.CharField(max_length=100)  # whsec_<base64>
    event_types = ArrayField(models.CharField(max_length=100), default=list, blank=True)  # empty = all
    enabled = models.BooleanField(default=True)
    # the envelope and signature of its deliveries: `standard` (Standard Webhooks) or a format another app
    # registers with `invoicing.webhooks.register_envelope` (`lago`)
    format = models.CharField(max_length=32, default="standard")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]


class WebhookMessage(TenantModel):
    """One emitted event. `source_ref` dedupes events consumed from elsewhere (billing notifications)."""

    type = models.CharField(max_length=100)
    payload = models.JSONField()
    source_ref = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "source_ref"],
                condition=~Q(source_ref=""),
                name="invoicing_message_source_once",
            )
        ]


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WebhookDelivery(TenantModel):
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    message = models.ForeignKey(WebhookMessage, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    response_snippet = models.TextField(blank=True, default="")
    last_error = models.TextField(blank=True, default="")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"])]


# --- invoice runs -----------------------------------------------------------------------------------
class RunStatus(models.TextChoices):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class InvoiceRun(TenantModel):
    """One tick of the invoice clock for one organization: the due customer periods it fanned out."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at", "-id"]


class InvoiceRunItem(TenantModel):
    run = models.ForeignKey(InvoiceRun, on_delete=models.CASCADE, related_name="items")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    currency = models.CharField(max_length=3)
    kind = models.CharField(max_length=16, default="period")  # the invoice kind: period | start
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    status = models.CharField(max_length=16, default="pending")  # pending | done | failed
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    invoice = models.ForeignKey(Invoice, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "run", "customer", "currency", "kind", "period_start", "period_end"],
                name="invoicing_runitem_unique",
            )
        ]
        indexes = [models.Index(fields=["organization", "customer", "period_start", "status"])]


class InvoicePayment(TenantModel):
    """A payment that settled an invoice outside Stripe (bank transfer, cheque), recorded by a person
    when they mark the invoice paid: amount, the date it was received and a reference."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="payments")
    amount = models.DecimalField(max_digits=38, decimal_places=12)
    currency = models.CharField(max_length=3)
    paid_at = models.DateTimeField()
    reference = models.CharField(max_length=256, blank=True, default="")
    method = models.CharField(max_length=32, default="manual")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["paid_at", "id"]


class EmailRow(TenantModel):
    """A document's e-mail to the customer (PDF attached): one row per document, claimed by a conditional
    update before sending, so a sweep and a retry never send it twice (`invoicing/emails.py`)."""

    to = models.CharField(max_length=320, blank=True, default="")
    status = models.CharField(max_length=16, default="pending")  # pending|sending|sent|failed|skipped
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class InvoiceEmail(EmailRow):
    """The e-mail of an issued invoice."""

    invoice = models.OneToOneField(Invoice, on_delete=models.CASCADE, related_name="email")


class CreditNote(TenantModel):
    """The document that cancels an issued invoice when it is voided (`invoicing/credit_notes.py`): its
    own gapless number (`<PREFIX>-CN-<YYYY>-NNNNNN`), the invoice's total credited in full, the reason, and
    the invoice it cancels (one credit note per invoice)."""

    invoice = models.OneToOneField(Invoice, on_delete=models.PROTECT, related_name="credit_note")
    number = models.CharField(max_length=64)
    currency = models.CharField(max_length=3)
    total = models.DecimalField(max_digits=38, decimal_places=12)
    reason = models.CharField(max_length=500, blank=True, default="")
    issued_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-issued_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "number"], name="invoicing_credit_note_number_unique"
            )
        ]

    def __str__(self) -> str:
        return self.number


class CreditNoteEmail(EmailRow):
    """The e-mail of a credit note."""

    credit_note = models.OneToOneField(CreditNote, on_delete=models.CASCADE, related_name="email")
