"""The batched invoice run: a few hundred customer periods of one organization built in one transaction.

Same rules and the same line computation as the single path (`services.invoice_draft_for_period` then
`services.invoice_issue`), with the reads and writes done in bulk (docs/invoicing.md "Invoice runs"):

1. upsert the batch's invoices on the natural key (`INSERT … ON CONFLICT DO NOTHING`), lock them
   (`SELECT … FOR UPDATE` ordered by id); invoices already past `gathering` are left as they are;
2. read subscription items, billed line keys (this and the previous period), previous period invoices,
   manual lines, customers, tax rates and credits, each in one query for the whole batch;
3. usage of every (customer, feature, span) through `sources.usage_bulk`: one grouped metering query per
   (feature, span) for all the batch's customers;
4. compute lines in memory (`invoicing.lines`), `bulk_create` lines, credit applications, audit rows
   and webhook messages, `bulk_update` the invoices;
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
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from billing.models import Customer
from core.audit import audit_build, audit_record_many
from core.models import AuditLog, Organization
from invoicing import lines as L
from invoicing import sources
from invoicing.models import (
    CreditApplication,
    CustomerCredit,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LineType,
    NumberSequence,
    StripeSettings,
)
from invoicing.services import (
    BILLED_STATUSES,
    _build_finish,
    _customer_snapshot,
    _line_rows,
    _supplier_snapshot,
    _tax_specs,
    invoice_payload,
    invoicing_settings_get,
)
from invoicing.sources import DuePeriod, UsageRequest
from invoicing.webhooks import webhook_events_emit_bulk

S = InvoiceStatus
ACTOR = "invoice_run"


def invoice_numbers_reserve(
    *, organization: Organization, prefix: str, at: datetime, count: int
) -> list[str]:
    """`count` consecutive gapless numbers of the series `<PREFIX>-<YYYY>` in one locked step.

    Must run inside the transaction that issues the invoices: the sequence row stays locked until it
    commits (a rollback gives the whole block back; concurrent batches and single issues queue)."""
    if count <= 0:
        return []
    series = f"{prefix}-{at:%Y}"
    NumberSequence.objects.get_or_create(organization=organization, series=series)
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE invoicing_numbersequence SET last_value = last_value + %s "
            "WHERE organization_id = %s AND series = %s RETURNING last_value",
            [count, organization.id, series],
        )
        last = int(cur.fetchone()[0])
    return [f"{series}-{n:06d}" for n in range(last - count + 1, last + 1)]


def _billed_bulk(
    *, organization: Organization, customer_ids: list[str], period_starts: set[datetime]
) -> dict[tuple[str, datetime | None, str], dict[str, L.Billed]]:
    """{(customer, billing period start, invoice id): {key: Billed}} per invoice; callers sum the
    invoices other than the one being built (what `services._billed` does with `exclude_invoice_id`)."""
    rows = (
        InvoiceLine.objects.filter(
            organization=organization,
            invoice__customer_id__in=customer_ids,
            invoice__status__in=BILLED_STATUSES,
            billing_period_start__in=list(period_starts),
        )
        .exclude(key="")
        .values_list(
            "invoice__customer_id",
            "billing_period_start",
            "invoice_id",
            "key",
            "amount",
            "quantity",
            "period_end",
        )
    )
    out: dict[tuple[str, datetime | None, str], dict[str, L.Billed]] = {}
    for cid, bps, inv_id, key, amount, qty, until in rows:
        book = out.setdefault((cid, bps, inv_id), {})
        prev = book.get(key, L.Billed())
        book[key] = L.Billed(
            prev.amount + amount,
            prev.quantity + (qty or 0),
            max(until, prev.until) if prev.until and until else (until or prev.until),
        )
    return out


def _billed_for(
    billed: dict[tuple[str, datetime | None, str], dict[str, L.Billed]],
    customer_id: str,
    period_start: datetime,
    exclude: str,
) -> dict[str, L.Billed]:
    out: dict[str, L.Billed] = {}
    for (cid, bps, inv_id), book in billed.items():
        if cid != customer_id or bps != period_start or inv_id == exclude:
            continue
        for key, b in book.items():
            prev = out.get(key, L.Billed())
            out[key] = L.Billed(
                prev.amount + b.amount,
                prev.quantity + b.quantity,
                max(b.until, prev.until) if prev.until and b.until else (b.until or prev.until),
            )
    return out


def _usage_requests(
    customer_id: str, items: list[sources.BillableItem], *, only_keys: set[str] | None = None
) -> list[UsageRequest]:
    out = []
    for item in items:
        if not item.price or item.price.get("type") == "flat" or not item.feature_key:
            continue
        if only_keys is not None and f"{item.item_id}:{item.period_start.isoformat()}:usage" not in only_keys:
            continue
        if item.span_end > item.span_start:
            out.append(UsageRequest(customer_id, item.feature_key, item.span_start, item.span_end))
    return out


@dataclass
class BatchResult:
    invoices: dict[DuePeriod, Invoice]  # every key of the batch → its invoice (built now or before)
    built: int
    issued: int


def invoice_batch_build(
    *, organization: Organization, periods: list[DuePeriod], now: datetime | None = None
) -> BatchResult:
    """Draft (and, with auto-advance and no draft period, issue) the period invoices of `periods` (one
    organization) in one transaction. Idempotent on the natural key."""
    now = now or timezone.now()
    periods = sorted(set(periods), key=lambda p: (p.customer_id, p.currency, p.period_start))
    cfg = invoicing_settings_get(organization=organization)
    issue = cfg.auto_advance and cfg.draft_period_seconds == 0
    with transaction.atomic():
        # 1. upsert on the natural key, then lock (ordered by id: no deadlock between batches)
        Invoice.objects.bulk_create(
            [
                Invoice(
                    organization=organization,
                    customer_id=p.customer_id,
                    currency=p.currency,
                    period_start=p.period_start,
                    period_end=p.period_end,
                    status=S.GATHERING,
                    kind="period",
                )
                for p in periods
            ],
            ignore_conflicts=True,
        )
        customer_ids = sorted({p.customer_id for p in periods})
        wanted = set(periods)
        candidates = Invoice.objects.filter(
            organization=organization,
            customer_id__in=customer_ids,
            period_start__in={p.period_start for p in periods},
        ).values_list("id", "customer_id", "currency", "period_start", "period_end")
        ids = [row[0] for row in candidates if DuePeriod(*row[1:]) in wanted]
        locked = list(Invoice.objects.select_for_update().filter(id__in=ids).order_by("id"))
        by_key = {DuePeriod(i.customer_id, i.currency, i.period_start, i.period_end): i for i in locked}
        todo = [p for p in periods if by_key[p].status == S.GATHERING]
        if not todo:
            return BatchResult(by_key, 0, 0)
        todo_cids = sorted({p.customer_id for p in todo})

        # 2. bulk reads
        items = sources.billable_items_bulk(organization=organization, periods=todo)
        prev_invoices = {
            (i.customer_id, i.currency, i.period_end): i
            for i in Invoice.objects.filter(
                organization=organization,
                customer_id__in=todo_cids,
                period_end__in={p.period_start for p in todo},
                status__in=BILLED_STATUSES,
                kind="period",
            ).order_by("period_start")
        }
        prev_keys = {
            p: DuePeriod(p.customer_id, p.currency, prev.period_start, prev.period_end)
            for p in todo
            if (prev := prev_invoices.get((p.customer_id, p.currency, p.period_start))) is not None
            and prev.id != by_key[p].id
        }
        prev_items = sources.billable_items_bulk(
            organization=organization, periods=list(set(prev_keys.values()))
        )
        billed = _billed_bulk(
            organization=organization,
            customer_ids=todo_cids,
            period_starts={p.period_start for p in todo} | {k.period_start for k in prev_keys.values()},
        )
        manual: dict[str, list[InvoiceLine]] = {}
        for line in InvoiceLine.objects.filter(
            organization=organization, invoice_id__in=[by_key[p].id for p in todo], type=LineType.MANUAL
        ):
            manual.setdefault(line.invoice_id, []).append(line)
        default_tax, rates = _tax_specs(organization)
        with_credit = set(
            CustomerCredit.objects.filter(organization=organization, customer_id__in=todo_cids)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
            .values_list("customer_id", "currency")
        )

        # 3. usage, a few grouped metering queries for the whole batch
        requests: list[UsageRequest] = []
        prev_billed: dict[DuePeriod, dict[str, L.Billed]] = {}
        for p in todo:
            requests += _usage_requests(p.customer_id, items[p])
            if p in prev_keys:
                pk = prev_keys[p]
                prev_billed[p] = _billed_for(billed, p.customer_id, pk.period_start, by_key[p].id)
                requests += _usage_requests(p.customer_id, prev_items[pk], only_keys=set(prev_billed[p]))
        usage = sources.usage_bulk(organization=organization, requests=list(dict.fromkeys(requests)))

        # 4. lines in memory
        builds: list[
            tuple[DuePeriod, Invoice, list[L.LineDraft], list[tuple[L.LineDraft, CustomerCredit, Decimal]]]
        ] = []
        for p in todo:
            invoice = by_key[p]

            def usage_fn(
                feature_key: str, start: datetime, end: datetime, _cid: str = p.customer_id
            ) -> Decimal:
                req = UsageRequest(_cid, feature_key, start, end)
                if req in usage:
                    return usage[req]
                return sources.usage(
                    organization=organization, customer_id=_cid, feature_key=feature_key, start=start, end=end
                )

            book = _billed_for(billed, p.customer_id, p.period_start, invoice.id)
            drafts: list[L.LineDraft] = []
            for item in items[p]:
                drafts.extend(
                    L.item_lines(
                        item, upto=p.period_end, final=True, currency=p.currency, usage=usage_fn, billed=book
                    )
                )
            if p in prev_keys:
                drafts.extend(
                    L.adjustment_lines(
                        prev_items[prev_keys[p]], currency=p.currency, usage=usage_fn, billed=prev_billed[p]
                    )
                )
            build = _build_finish(
                organization=organization,
                customer_id=p.customer_id,
                currency=p.currency,
                drafts=drafts,
                manual=manual.get(invoice.id, []),
                default_tax=default_tax,
                rates=rates,
                apply_credits=(p.customer_id, p.currency) in with_credit,
                at=p.period_end,
            )
            builds.append((p, invoice, build.lines, build.credits))

        # 5. writes
        InvoiceLine.objects.filter(invoice_id__in=[b[1].id for b in builds]).exclude(
            type=LineType.MANUAL
        ).delete()
        rows: list[InvoiceLine] = []
        for _p, invoice, drafts, _credits in builds:
            start = 1000 if manual.get(invoice.id) else 0
            rows += _line_rows(organization=organization, invoice=invoice, drafts=drafts, start=start)
        created = InvoiceLine.objects.bulk_create(rows, batch_size=2000)
        by_draft: dict[int, InvoiceLine] = {}
        it = iter(created)
        for _p, _invoice, drafts, _credits in builds:
            for d in drafts:
                by_draft[id(d)] = next(it)
        applications = [
            CreditApplication(organization=organization, credit=credit, line=by_draft[id(draft)], amount=take)
            for _p, _invoice, _drafts, credits in builds
            for draft, credit, take in credits
        ]
        if applications:
            CreditApplication.objects.bulk_create(applications)

        customers = {c.id: c for c in Customer.objects.filter(organization=organization, id__in=todo_cids)}
        supplier = _supplier_snapshot(organization) if issue else {}
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
        for n, (_p, invoice, drafts, _credits) in enumerate(builds):
            for name, value in L.totals([*drafts, *manual.get(invoice.id, [])]).fields().items():
                setattr(invoice, name, value)
            invoice.status = S.DRAFT
            invoice.drafted_at = now
            invoice.draft_until = now + timedelta(seconds=cfg.draft_period_seconds)
            invoice.updated_at = now
            created_payload = invoice_payload(invoice)
            audits.append(_audit(organization, "invoice.created", invoice.id, created_payload))
            events.append(("invoice.created", created_payload))
            if issue:
                invoice.status = S.ISSUED
                invoice.number = numbers[n]
                invoice.issued_at = now
                invoice.due_at = now + timedelta(days=cfg.due_days)
                invoice.supplier_snapshot = supplier
                invoice.customer_snapshot = _customer_snapshot(customers[invoice.customer_id])
                issued_payload = invoice_payload(invoice)
                audits.append(_audit(organization, "invoice.issued", invoice.id, issued_payload))
                events.append(("invoice.issued", issued_payload))
        _invoices_update([b[1] for b in builds])
        audit_record_many(audits)
        webhook_events_emit_bulk(organization=organization, events=events)
        if issue and StripeSettings.objects.filter(organization=organization, enabled=True).exists():
            from invoicing.tasks import invoice_stripe_push

            issued_ids = [b[1].id for b in builds]
            transaction.on_commit(lambda: [invoice_stripe_push.delay(i) for i in issued_ids])
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


def _audit(organization: Organization, action: str, invoice_id: str, after: dict[str, Any]) -> AuditLog:
    return audit_build(
        organization=organization,
        actor=ACTOR,
        action=action,
        object_type="invoice",
        object_id=invoice_id,
        after=after,
    )
