"""The batched invoice run: a few hundred billing moments of one organization built in one transaction.

The lines come from `invoicing.builder.InvoiceBuilder`, the same code the single path
(`services.invoice_draft_for_period` then `services.invoice_issue`) uses; only the reads and writes are
in bulk (docs/invoicing.md "Invoice runs"):

1. upsert the batch's invoices on the natural key (`INSERT … ON CONFLICT DO NOTHING`), lock them
   (`SELECT … FOR UPDATE` ordered by id); invoices already past `gathering` are left as they are;
2. the builder reads items, the ledger of billed lines, tax rates and which customers have credits, one
   query each for the whole batch, and the usage of every (customer, feature, span) through
   `sources.usage_bulk` (one grouped metering query per span);
3. lines in memory in due order (a customer's earlier moment is booked before its later one); a moment
   with nothing due gets no invoice;
4. `bulk_create` lines, credit applications, audit rows and webhook messages; one `UPDATE … FROM
   unnest(…)` for the invoices;
5. reserve the batch's invoice numbers in one locked step (`UPDATE … SET last_value = last_value + n
   RETURNING`) at the very end, so the sequence row is held as briefly as possible; a rollback gives
   every number back (gapless).

A crash anywhere rolls the whole batch back: nothing is left half built and no number is lost; the
rerun (or the per-item fallback in `runs.invoice_run_batch_process`) finds the same natural keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from billing.models import Customer
from core.audit import audit_object, audit_record_many
from core.enqueue import enqueue_on_commit
from core.models import AuditLog, Organization
from invoicing import lines as L
from invoicing import sources
from invoicing.builder import Build, InvoiceBuilder, customers_lock
from invoicing.models import (
    CreditApplication,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LineType,
    StripeSettings,
    natural_key,
)
from invoicing.numbering import invoice_numbers_reserve
from invoicing.services.build import invoice_moment, invoice_payload, line_rows
from invoicing.services.lifecycle import customer_snapshot, supplier_snapshot
from invoicing.services.settings import invoicing_settings_get
from invoicing.sources import DuePeriod
from invoicing.webhooks import webhook_events_emit_bulk

S = InvoiceStatus
ACTOR = "invoice_run"


@dataclass
class BatchResult:
    invoices: dict[DuePeriod, Invoice | None]  # every key of the batch → its invoice (None: nothing due)
    built: int
    issued: int


def invoice_batch_build(
    *, organization: Organization, periods: list[DuePeriod], now: datetime | None = None
) -> BatchResult:
    """Draft (and, with auto-advance and no draft period, issue) the invoices of `periods` (one
    organization) in one transaction. Idempotent on the natural key. A moment with nothing due gets no
    invoice."""
    now = now or timezone.now()
    periods = sorted(set(periods), key=sources.due_order)
    cfg = invoicing_settings_get(organization=organization)
    issue = cfg.auto_advance and cfg.draft_period_seconds == 0
    with transaction.atomic():
        # 1. upsert on the natural key, then lock (ordered by id: no deadlock between batches)
        Invoice.objects.bulk_create(
            [Invoice(organization=organization, **natural_key(p), status=S.GATHERING) for p in periods],
            ignore_conflicts=True,
        )
        customer_ids = sorted({p.customer_id for p in periods})
        customers_lock(organization=organization, customer_ids=customer_ids)
        wanted = set(periods)
        candidates = Invoice.objects.filter(
            organization=organization,
            customer_id__in=customer_ids,
            period_start__in={p.period_start for p in periods},
        ).values_list("id", "customer_id", "currency", "period_start", "period_end", "kind")
        ids = [row[0] for row in candidates if DuePeriod(*row[1:]) in wanted]
        locked = list(Invoice.objects.select_for_update().filter(id__in=ids).order_by("id"))
        by_key: dict[DuePeriod, Invoice | None] = {
            DuePeriod(i.customer_id, i.currency, i.period_start, i.period_end, i.kind): i for i in locked
        }
        todo = [p for p in periods if (inv := by_key[p]) is not None and inv.status == S.GATHERING]
        if not todo:
            return BatchResult(by_key, 0, 0)

        # 2. bulk reads and usage (a few grouped metering queries for the whole batch)
        builder = InvoiceBuilder(
            organization=organization,
            customer_ids=sorted({p.customer_id for p in todo}),
            moments=[p.moment for p in todo],
        )
        moments = {p: invoice_moment(by_key[p]) for p in todo}  # type: ignore[arg-type]
        builder.prefetch(list(moments.values()))
        manual: dict[str, list[InvoiceLine]] = {}
        for line in InvoiceLine.objects.filter(
            organization=organization,
            invoice_id__in=[by_key[p].id for p in todo],  # type: ignore[union-attr]
            type=LineType.MANUAL,
        ):
            manual.setdefault(line.invoice_id, []).append(line)

        # 3. lines in memory, in due order (each build is booked in the builder's ledger)
        builds: list[tuple[Invoice, Build]] = []
        empty: list[Invoice] = []
        for p in todo:
            invoice = by_key[p]
            assert invoice is not None
            build = builder.build(moments[p], manual=manual.get(invoice.id, []))
            if build.empty and not manual.get(invoice.id):
                empty.append(invoice)
                by_key[p] = None
            else:
                builds.append((invoice, build))
        if empty:
            Invoice.objects.filter(id__in=[i.id for i in empty]).delete()

        # 4. writes
        InvoiceLine.objects.filter(invoice_id__in=[b[0].id for b in builds]).exclude(
            type=LineType.MANUAL
        ).delete()
        rows: list[InvoiceLine] = []
        for invoice, build in builds:
            start = 1000 if manual.get(invoice.id) else 0
            rows += line_rows(organization=organization, invoice=invoice, drafts=build.lines, start=start)
        created = InvoiceLine.objects.bulk_create(rows, batch_size=2000)
        by_draft: dict[int, InvoiceLine] = {}
        it = iter(created)
        for _invoice, build in builds:
            for d in build.lines:
                by_draft[id(d)] = next(it)
        applications = [
            CreditApplication(organization=organization, credit=credit, line=by_draft[id(draft)], amount=take)
            for _invoice, build in builds
            for draft, credit, take in build.credits
        ]
        if applications:
            CreditApplication.objects.bulk_create(applications)

        customers = {
            c.id: c
            for c in Customer.objects.filter(
                organization=organization, id__in=sorted({i.customer_id for i, _b in builds})
            )
        }
        supplier = supplier_snapshot(organization) if issue else {}
        numbers = (
            invoice_numbers_reserve(
                organization=organization,
                prefix=cfg.number_prefix or organization.slug.upper(),
                at=now,
                count=len(builds),
            )
            if issue
            else []
        )
        audits: list[AuditLog] = []
        events: list[tuple[str, dict[str, Any]]] = []
        for n, (invoice, build) in enumerate(builds):
            for name, value in L.totals([*build.lines, *manual.get(invoice.id, [])]).fields().items():
                setattr(invoice, name, value)
            invoice.status = S.DRAFT
            invoice.drafted_at = now
            invoice.draft_until = now + timedelta(seconds=cfg.draft_period_seconds)
            invoice.updated_at = now
            created_payload = invoice_payload(invoice)
            audits.append(audit_object(invoice, "invoice.created", ACTOR, after=created_payload, save=False))
            events.append(("invoice.created", created_payload))
            if issue:
                invoice.status = S.ISSUED
                invoice.number = numbers[n]
                invoice.issued_at = now
                invoice.due_at = now + timedelta(days=cfg.due_days)
                invoice.supplier_snapshot = supplier
                invoice.customer_snapshot = customer_snapshot(customers[invoice.customer_id])
                issued_payload = invoice_payload(invoice)
                audits.append(
                    audit_object(invoice, "invoice.issued", ACTOR, after=issued_payload, save=False)
                )
                events.append(("invoice.issued", issued_payload))
        if builds:
            _invoices_update([b[0] for b in builds])
        audit_record_many(audits)
        webhook_events_emit_bulk(organization=organization, events=events)
        if (
            issue
            and builds
            and StripeSettings.objects.filter(organization=organization, enabled=True).exists()
        ):
            for invoice, _build in builds:
                enqueue_on_commit("invoicing.tasks.invoice_stripe_push", invoice.id)
    return BatchResult(by_key, len(builds), len(builds) if issue else 0)


def _invoices_update(invoices: list[Invoice]) -> None:
    """One `UPDATE … FROM unnest(…)` for the batch (Django's bulk_update builds a CASE per row and field,
    which costs seconds of Python for a few hundred rows)."""
    cols = {
        "id": ("text", [i.id for i in invoices]),
        "status": ("text", [i.status for i in invoices]),
        "amount": ("numeric", [i.amount for i in invoices]),
        "discounts_total": ("numeric", [i.discounts_total for i in invoices]),
        "credits_total": ("numeric", [i.credits_total for i in invoices]),
        "taxes_total": ("numeric", [i.taxes_total for i in invoices]),
        "taxes_inclusive_total": ("numeric", [i.taxes_inclusive_total for i in invoices]),
        "total": ("numeric", [i.total for i in invoices]),
        "drafted_at": ("timestamptz", [i.drafted_at for i in invoices]),
        "draft_until": ("timestamptz", [i.draft_until for i in invoices]),
        "updated_at": ("timestamptz", [i.updated_at for i in invoices]),
        "number": ("text", [i.number for i in invoices]),
        "issued_at": ("timestamptz", [i.issued_at for i in invoices]),
        "due_at": ("timestamptz", [i.due_at for i in invoices]),
        "supplier_snapshot": (
            "jsonb",
            [json.dumps(i.supplier_snapshot, cls=DjangoJSONEncoder) for i in invoices],
        ),
        "customer_snapshot": (
            "jsonb",
            [json.dumps(i.customer_snapshot, cls=DjangoJSONEncoder) for i in invoices],
        ),
    }
    names = list(cols)
    arrays = ", ".join(f"%s::{'text' if t == 'jsonb' else t}[]" for t, _ in cols.values())
    sets = ", ".join(f"{n} = v.{n}" + ("::jsonb" if cols[n][0] == "jsonb" else "") for n in names[1:])
    with connection.cursor() as cur:
        cur.execute(
            f"UPDATE invoicing_invoice i SET {sets} FROM unnest({arrays}) AS v({', '.join(names)}) "  # noqa: S608 - constant column names
            "WHERE i.id = v.id AND i.status = 'gathering'",
            [values for _, values in cols.values()],  # type: ignore[misc]
        )
        assert cur.rowcount == len(invoices), "a locked gathering invoice changed under the batch"
