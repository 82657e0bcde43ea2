"""Human words for pricing: a price and a rate card in one line, and the rows of a version diff (publish
confirmation and side-by-side compare)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from catalog.rate_card_json import CADENCES


def price_summary(price: dict[str, Any] | None) -> str:
    if not price:
        return "Free"
    kind = price.get("type")
    if kind == "flat":
        return f"{price['amount']} flat, {price.get('paymentTerm', 'in_advance').replace('_', ' ')}"
    if kind == "unit":
        text = f"{price['amount']} per unit"
    elif kind == "tiered":
        parts = []
        for tier in price.get("tiers", []):
            bound = f"up to {tier['upToAmount']}" if tier.get("upToAmount") else "above"
            bits = []
            if tier.get("unitPrice"):
                bits.append(f"{tier['unitPrice']['amount']}/unit")
            if tier.get("flatPrice"):
                bits.append(f"+{tier['flatPrice']['amount']} flat")
            parts.append(f"{bound}: {' '.join(bits)}")
        text = f"{price.get('mode', '').title()}: " + "; ".join(parts)
    elif kind == "package":
        text = f"{price['amount']} per {price['quantityPerPackage']} units"
    elif kind == "dynamic":
        text = f"cost x {price.get('multiplier', '1')}"
    elif kind == "percentage":
        text = f"{price['percentage']}%"
        if price.get("fixedAmountPerEvent"):
            text += f" + {price['fixedAmountPerEvent']} per event"
    else:
        text = str(kind)
    if price.get("minimumAmount"):
        text += f" (min {price['minimumAmount']})"
    if price.get("maximumAmount"):
        text += f" (max {price['maximumAmount']})"
    return text


def card_summary(card: dict[str, Any]) -> str:
    """One line describing everything a subscriber gets charged for on this card."""
    bits = [price_summary(card.get("price"))]
    cadence = dict(CADENCES).get(card.get("billingCadence") or "", card.get("billingCadence") or "")
    bits.append(cadence.lower())
    if card.get("featureKey"):
        bits.append(f"feature {card['featureKey']}")
    discounts = card.get("discounts") or {}
    if discounts.get("usage"):
        bits.append(f"first {discounts['usage']['quantity']} free")
    if discounts.get("percentage"):
        bits.append(f"{discounts['percentage']['percentage']}% off")
    ent = card.get("entitlementTemplate")
    if ent:
        bits.append(f"entitlement {ent['type']}")
    return " · ".join(b for b in bits if b)


@dataclass
class DiffRow:
    phase: str
    key: str
    name: str
    left: str | None
    right: str | None

    @property
    def change(self) -> str:
        if self.left is None:
            return "added"
        if self.right is None:
            return "removed"
        return "changed" if self.left != self.right else "same"


def version_rows(left: Any, right: Any) -> tuple[list[DiffRow], list[DiffRow]]:
    """(settings rows, rate-card rows) comparing two plan or add-on versions (either may be None).

    An add-on's rate cards are shown as one phase keyed "" (no phase row)."""
    settings_rows = []
    both = [v for v in (left, right) if v is not None]
    for label, attr in (
        ("Name", "name"),
        ("Currency", "currency"),
        ("Billing cadence", "billing_cadence"),
        ("Instance type", "instance_type"),
        ("Description", "description"),
    ):
        if not any(hasattr(v, attr) for v in both):
            continue
        settings_rows.append(
            DiffRow(
                "",
                attr,
                label,
                getattr(left, attr, None) if left else None,
                getattr(right, attr, None) if right else None,
            )
        )

    def cards(plan: Any) -> dict[tuple[str, str], tuple[str, str]]:
        out: dict[tuple[str, str], tuple[str, str]] = {}
        if plan is None:
            return out
        phases = getattr(plan, "phases", None)
        if phases is None:
            phases = [{"key": "", "rateCards": plan.rate_cards}]
        for phase in phases:
            if phase["key"]:
                dur = phase.get("duration") or "open-ended"
                out[(phase["key"], "")] = (f"{phase['name']} ({dur})", f"Phase {phase['name']} · {dur}")
            for card in phase["rateCards"]:
                out[(phase["key"], card["key"])] = (card["name"], card_summary(card))
        return out

    lc, rc = cards(left), cards(right)
    order = list(lc) + [k for k in rc if k not in lc]
    rows = [
        DiffRow(
            phase,
            key or "(phase)",
            (rc.get((phase, key)) or lc[(phase, key)])[0],
            lc[(phase, key)][1] if (phase, key) in lc else None,
            rc[(phase, key)][1] if (phase, key) in rc else None,
        )
        for phase, key in order
    ]
    return settings_rows, rows
