"""Gapless document numbers per organization and series (`NumberSequence`): invoices `<PREFIX>-<YYYY>-NNNNNN`,
credit notes `<PREFIX>-CN-<YYYY>-NNNNNN`. The sequence row is locked only here, inside the transaction that
issues the documents: a rollback gives the numbers back and concurrent issues queue instead of skipping."""

from __future__ import annotations

from datetime import datetime

from django.db import connection

from core.models import Organization
from invoicing.models import InvoicingSettings, NumberSequence

CREDIT_NOTE_SERIES = "CN"


def number_prefix(organization: Organization, settings: InvoicingSettings | None) -> str:
    """The organization's document prefix: its invoicing settings' prefix, else its slug in capitals."""
    return (settings.number_prefix if settings is not None else "") or organization.slug.upper()


def invoice_number_assign(*, organization: Organization, prefix: str, at: datetime) -> str:
    """Next gapless number of the series `<PREFIX>-<YYYY>` (e.g. ACME-2026-000123)."""
    return invoice_numbers_reserve(organization=organization, prefix=prefix, at=at, count=1)[0]


def invoice_numbers_reserve(
    *, organization: Organization, prefix: str, at: datetime, count: int
) -> list[str]:
    """`count` consecutive gapless numbers of the series `<PREFIX>-<YYYY>` in one locked step (the
    `UPDATE … RETURNING` locks the sequence row until the transaction ends)."""
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
