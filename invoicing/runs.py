"""Invoice runs: the clock finds due customer periods and fans out one task per batch of customers.

`invoice_runs_schedule` (beat) records an `InvoiceRun` per organization with one `InvoiceRunItem` per
due (customer, currency, period) and returns the item ids to queue; `invoice_runs_schedule_batches`
cuts them into batches of `BATCH_SIZE` items of one organization. `invoice_run_batch_process` (one
Celery task per batch, `acks_late`) builds the whole batch in one transaction (`invoicing.batch`); if
that fails, it processes the batch's items one by one (`invoice_run_item_process`, the single path),
so one bad customer fails alone and is recorded with its error. Both paths go through the natural key,
so running twice, or again after a worker died half way, yields exactly one invoice per period.
Progress and failures are rows, shown on the console's "Invoice runs" page (retry button).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from core.enqueue import enqueue_on_commit
from core.errors import NotFound
from core.models import Organization
from invoicing import sources
from invoicing.batch import invoice_batch_build
from invoicing.models import Invoice, InvoiceRun, InvoiceRunItem, InvoiceStatus, RunStatus, natural_key
from invoicing.services import invoice_draft_for_period, invoice_issue, invoicing_settings_get

logger = logging.getLogger(__name__)
STALE_PENDING = timedelta(hours=1)  # a pending item older than this is scheduled again
BATCH_SIZE = 500  # customer periods per task


def invoice_runs_schedule(
    *,
    now: datetime | None = None,
    organization: Organization | None = None,
    customer_id: str | None = None,
) -> list[str]:
    """Record the due customer periods of every organization (or of one customer, `customer_id`);
    returns the run item ids to process."""
    now = now or timezone.now()
    orgs = [organization] if organization else list(Organization.objects.all())
    item_ids: list[str] = []
    for org in orgs:
        cfg = invoicing_settings_get(organization=org)
        cutoff = now - timedelta(seconds=cfg.collection_delay_seconds)
        due = sources.due_periods(organization=org, cutoff=cutoff, now=now)
        if customer_id is not None:
            due = [d for d in due if d.customer_id == customer_id]
        if not due:
            continue
        earliest = min(d.period_start for d in due)
        # done: an invoice past gathering, or a run item done without one (nothing was due)
        done = set(
            Invoice.objects.filter(organization=org, period_start__gte=earliest, kind__in=("period", "start"))
            .exclude(status=InvoiceStatus.GATHERING)
            .values_list("customer_id", "currency", "period_start", "period_end", "kind")
        ) | set(
            InvoiceRunItem.objects.filter(
                organization=org, period_start__gte=earliest, status="done", invoice__isnull=True
            ).values_list("customer_id", "currency", "period_start", "period_end", "kind")
        )
        in_flight = set(
            InvoiceRunItem.objects.filter(
                organization=org,
                period_start__gte=earliest,
                status="pending",
                updated_at__gt=now - STALE_PENDING,
            ).values_list("customer_id", "currency", "period_start", "period_end", "kind")
        )
        todo = [
            d
            for d in due
            if (key := (d.customer_id, d.currency, d.period_start, d.period_end, d.kind)) not in done
            and key not in in_flight
        ]
        if not todo:
            continue
        with transaction.atomic():
            run = InvoiceRun.objects.create(organization=org, started_at=now, total=len(todo))
            items = InvoiceRunItem.objects.bulk_create(
                [InvoiceRunItem(organization=org, run=run, **natural_key(d)) for d in todo]
            )
        item_ids.extend(i.id for i in items)
    return item_ids


def invoice_runs_schedule_batches(
    *,
    now: datetime | None = None,
    organization: Organization | None = None,
    batch_size: int = BATCH_SIZE,
    customer_id: str | None = None,
) -> list[list[str]]:
    """`invoice_runs_schedule`, cut into batches of run item ids (each batch within one run)."""
    ids = invoice_runs_schedule(now=now, organization=organization, customer_id=customer_id)
    runs: dict[str, list[str]] = {}
    for item_id, run_id in (
        InvoiceRunItem.objects.filter(id__in=ids).order_by("id").values_list("id", "run_id")
    ):
        runs.setdefault(run_id, []).append(item_id)
    return [chunk[i : i + batch_size] for chunk in runs.values() for i in range(0, len(chunk), batch_size)]


def invoice_run_batch_process(*, item_ids: list[str], now: datetime | None = None) -> int:
    """Build (and issue) the invoices of a batch of run items of one run in one transaction. Idempotent.
    On failure, falls back to the items one by one (each records its own error). Returns items done."""
    items = list(
        InvoiceRunItem.objects.filter(id__in=item_ids).exclude(status="done").select_related("organization")
    )
    if not items:
        return 0
    by_run: dict[str, list[InvoiceRunItem]] = {}
    for item in items:
        by_run.setdefault(item.run_id, []).append(item)
    done = 0
    for run_id, group in by_run.items():
        org = group[0].organization
        InvoiceRunItem.objects.filter(id__in=[i.id for i in group]).update(attempts=F("attempts") + 1)
        keys = {
            i.id: sources.DuePeriod(i.customer_id, i.currency, i.period_start, i.period_end, i.kind)
            for i in group
        }
        group.sort(key=lambda i: sources.due_order(keys[i.id]))
        try:
            with transaction.atomic():
                result = invoice_batch_build(organization=org, periods=list(keys.values()), now=now)
                changed = InvoiceRunItem.objects.filter(id__in=[i.id for i in group]).exclude(status="done")
                was_failed = changed.filter(status="failed").count()
                with connection.cursor() as cur:
                    cur.execute(
                        "UPDATE invoicing_invoicerunitem r SET status = 'done', error = '', invoice_id = v.inv, "
                        "updated_at = now() FROM unnest(%s::text[], %s::text[]) AS v(id, inv) "
                        "WHERE r.id = v.id AND r.status <> 'done'",
                        [[i.id for i in group], [_invoice_id(result.invoices[keys[i.id]]) for i in group]],
                    )
                    count = cur.rowcount
                InvoiceRun.objects.filter(id=run_id).update(
                    done=F("done") + count, failed=F("failed") - was_failed
                )
            done += count
        except Exception:
            logger.exception("invoice batch of run %s failed; processing its items one by one", run_id)
            for item in group:
                try:
                    invoice_run_item_process(item_id=item.id, now=now)
                    done += 1
                except Exception:  # recorded on the item by invoice_run_item_process
                    logger.exception("invoice run item %s failed", item.id)
        _finish_if_complete(run_id)
    return done


def _invoice_id(invoice: Invoice | None) -> str | None:
    return invoice.id if invoice is not None else None


def _finish_if_complete(run_id: str) -> None:
    now = timezone.now()
    base = InvoiceRun.objects.filter(id=run_id, total__lte=F("done") + F("failed"))
    base.filter(failed=0).update(status=RunStatus.DONE, finished_at=now)
    base.filter(failed__gt=0).update(status=RunStatus.FAILED, finished_at=now)


def invoice_run_item_process(*, item_id: str, now: datetime | None = None) -> Invoice | None:
    """Build (and, with auto-advance and no draft period, issue) one customer's invoice. Idempotent."""
    item = InvoiceRunItem.objects.select_related("organization").filter(id=item_id).first()
    if item is None or item.status == "done":
        return None
    InvoiceRunItem.objects.filter(id=item.id).update(attempts=F("attempts") + 1)
    org = item.organization
    try:
        invoice = invoice_draft_for_period(
            organization=org, due=sources.DuePeriod(**natural_key(item)), now=now
        )
        cfg = invoicing_settings_get(organization=org)
        if (
            invoice is not None
            and invoice.status == InvoiceStatus.DRAFT
            and cfg.auto_advance
            and cfg.draft_period_seconds == 0
        ):
            invoice = invoice_issue(organization=org, invoice=invoice, actor="invoice_run", now=now)
    except Exception as exc:
        with transaction.atomic():
            changed = InvoiceRunItem.objects.filter(id=item.id, status="pending").update(
                status="failed", error=f"{type(exc).__name__}: {exc}"[:2000]
            )
            if changed:
                InvoiceRun.objects.filter(id=item.run_id).update(failed=F("failed") + 1)
        _finish_if_complete(item.run_id)
        raise
    with transaction.atomic():
        previous = InvoiceRunItem.objects.filter(id=item.id).values_list("status", flat=True).first()
        changed = (
            InvoiceRunItem.objects.filter(id=item.id)
            .exclude(status="done")
            .update(status="done", invoice=invoice, error="")
        )
        if changed:
            InvoiceRun.objects.filter(id=item.run_id).update(
                done=F("done") + 1, **({"failed": F("failed") - 1} if previous == "failed" else {})
            )
    _finish_if_complete(item.run_id)
    return invoice


def invoice_run_item_retry(*, organization: Organization, item_id: str) -> InvoiceRunItem:
    """Console retry button: a failed item goes back to pending and is queued again."""
    with transaction.atomic():
        item = InvoiceRunItem.objects.filter(organization=organization, id=item_id).first()
        if item is None:
            raise NotFound("No such run item.")
        if InvoiceRunItem.objects.filter(id=item.id, status="failed").update(status="pending"):
            InvoiceRun.objects.filter(id=item.run_id).update(
                failed=F("failed") - 1, status=RunStatus.RUNNING, finished_at=None
            )
        enqueue_on_commit("invoicing.tasks.invoice_run_item", item.id)
    item.refresh_from_db()
    return item


def invoice_run_retry_failed(*, organization: Organization, run_id: str) -> int:
    ids = list(
        InvoiceRunItem.objects.filter(organization=organization, run_id=run_id, status="failed").values_list(
            "id", flat=True
        )
    )
    for item_id in ids:
        invoice_run_item_retry(organization=organization, item_id=item_id)
    return len(ids)
