"""Pricing simulation: what customers would have paid under a (draft) plan version, against what they
were invoiced, over a past period, computed from their real usage.

Same engine as invoicing: for each rate card of the plan's final (steady-state) phase we build an
`invoicing.lines.BillableItem` over the whole period and ask `invoicing.lines.item_lines` for the
lines it would put on a final invoice, with usage from `invoicing.sources.usage_of` (feature → meter +
filters → `metering` rollups), then `invoicing.lines.totals`. Taxes are left out on both sides: the
comparison is net of tax (lines of type flat_fee/usage/commitment/discount/adjustment).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Sum

from analytics.models import SimulationRun
from core.models import Organization
from invoicing import lines as invoicing_lines
from invoicing import sources as invoicing_sources
from invoicing.models import InvoiceLine

NET_LINE_TYPES = ("flat_fee", "usage", "commitment", "discount", "adjustment")


@dataclass(frozen=True)
class CustomerResult:
    customer_id: str
    name: str
    simulated: Decimal
    actual: Decimal
    lines: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {
            "customerId": self.customer_id,
            "name": self.name,
            "simulated": str(self.simulated),
            "actual": str(self.actual),
            "difference": str(self.simulated - self.actual),
            "lines": self.lines,
        }


def plan_simulate_customer(
    *, organization: Organization, plan, customer_id: str, period_start: datetime, period_end: datetime
) -> tuple[Decimal, list[dict[str, Any]]]:
    """(net total, lines) the invoicing engine would bill this customer for [start, end) on `plan`."""
    phases = plan.phases or []
    if not phases:
        return Decimal(0), []
    phase = phases[-1]
    currency = plan.currency

    def usage(feature_key: str, start: datetime, end: datetime, measure: str = "value") -> Decimal:
        request = invoicing_sources.UsageRequest(customer_id, feature_key, start, end, measure)
        return invoicing_sources.usage_of(organization=organization, request=request)

    drafts = []
    for card in phase.get("rateCards", []):
        if not card.get("price"):
            continue
        item = invoicing_lines.BillableItem(
            item_id=f"sim:{card['key']}",
            subscription_id="simulation",
            key=card["key"],
            name=card.get("name") or card["key"],
            feature_key=card.get("featureKey") or "",
            price=card["price"],
            discounts=card.get("discounts"),
            commitments=card.get("commitments"),
            payment_term=card.get("paymentTerm") or card["price"].get("paymentTerm") or "in_advance",
            billing_cadence=card.get("billingCadence") or "",
            quantity=Decimal(1),
            currency=currency,
            active_from=period_start,
            active_to=period_end,
            anchor=period_start,
            timezone="UTC",
            plan_cadence=plan.billing_cadence or "P1M",
        )
        drafts.extend(
            invoicing_lines.item_lines(
                item,
                at=period_end,
                since=period_start,
                usage_upto=period_end,
                progressive=False,
                currency=currency,
                usage=usage,
                count=lambda f, s, e: int(usage(f, s, e, measure="count")),
                ledger=invoicing_lines.Ledger(),
            )
        )
    net = [d for d in drafts if d.type in NET_LINE_TYPES]
    total = invoicing_lines.totals(net)
    lines = [
        {
            "description": d.description,
            "type": d.type,
            "quantity": str(d.quantity) if d.quantity is not None else "",
            "amount": str(d.amount),
        }
        for d in net
    ]
    return total.amount - total.discounts_total, lines


def actual_billed(
    *, organization: Organization, customer_ids: list[str], period_start: datetime, period_end: datetime
) -> dict[str, Decimal]:
    """Net (pre-tax) amounts invoiced per customer for service inside [start, end). One query."""
    rows = (
        InvoiceLine.objects.filter(
            organization=organization, invoice__customer_id__in=customer_ids, type__in=NET_LINE_TYPES
        )
        .exclude(invoice__status__in=("voided",))
        .filter(period_start__gte=period_start, period_end__lte=period_end)
        .values("invoice__customer_id")
        .annotate(total=Sum("amount"))
    )
    return {r["invoice__customer_id"]: r["total"] or Decimal(0) for r in rows}


def run_totals(run: SimulationRun) -> dict[str, Decimal]:
    simulated = sum((Decimal(r["simulated"]) for r in run.results), Decimal(0))
    actual = sum((Decimal(r["actual"]) for r in run.results), Decimal(0))
    return {"simulated": simulated, "actual": actual, "difference": simulated - actual}
