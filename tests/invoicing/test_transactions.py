"""Percentage prices rated transaction by transaction (`invoicing.transactions`) and through the line
engine (`invoicing.lines.item_lines` with a reader of event values). Every amount worked out by hand.
Pure: no database."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from catalog.pricing import PriceInvalid, parse_discounts, parse_price, price_to_json, rate
from invoicing import lines as L
from invoicing.transactions import rate_transactions

D = Decimal
CARD = {
    "type": "percentage",
    "percentage": "2",
    "fixedAmountPerEvent": "0.30",
    "freeEvents": "2",
    "freeAmount": "150",
    "perTransactionMinimumAmount": "0.50",
    "perTransactionMaximumAmount": "5",
}
# event-time order: 100 and 40 free (2 free events, 140 of the 150 free), then each paid event
# 5 -> 0.10 + 0.30 = 0.40 -> raised to 0.50; 500 -> 10.30 -> 5.00; 20 -> 0.70; 1000 -> 20.30 -> 5.00
CARD_VALUES = [D(100), D(40), D(5), D(500), D(20), D(1000)]


def _amounts(rating):
    return {x.kind: x.amount for x in rating.lines}


def test_bounds_and_free_transactions_by_hand():
    rating = rate_transactions(parse_price(CARD), CARD_VALUES)
    assert rating.amount == D("11.20")  # 0.50 + 5.00 + 0.70 + 5.00
    lines = _amounts(rating)
    assert lines["free_transactions"] == 0
    assert lines["percentage"] == D("30.50")  # 2% of 1525 paid volume
    assert lines["per_event"] == D("1.20")  # 4 paid events x 0.30
    assert lines["per_transaction_bounds"] == D("-20.50")  # +0.10 - 5.30 - 15.30
    assert sum(lines.values()) == rating.amount
    # the same events on the period's volume (no per-transaction option): 2% of 1665 + 6 x 0.30 = 35.10
    volume = parse_price({"type": "percentage", "percentage": "2", "fixedAmountPerEvent": "0.30"})
    assert not volume.per_transaction
    assert rate(volume, sum(CARD_VALUES), event_count=6).amount == D("35.10")


def test_lagos_documented_example():
    """1.2% + 0.10, the first 3 events or 500 free: events 200, 100, 100 free; 50 pays 0.60 + 0.10."""
    price = parse_price(
        {
            "type": "percentage",
            "percentage": "1.2",
            "fixedAmountPerEvent": "0.10",
            "freeEvents": "3",
            "freeAmount": "500",
        }
    )
    assert rate_transactions(price, [D(200), D(100), D(100), D(50)]).amount == D("0.70")
    # a fifth event of 1000: 12.00 + 0.10
    assert rate_transactions(price, [D(200), D(100), D(100), D(50), D(1000)]).amount == D("12.80")


def test_free_amount_crossed_inside_a_transaction():
    """10% + 1.00, the first 100 of volume free: 30 and 60 free (10 left); 50 pays 10% of 40 + 1.00 = 5.00;
    20 pays 2.00 + 1.00. Exactly using up what is left is not free (it pays the fixed fee)."""
    price = parse_price(
        {"type": "percentage", "percentage": "10", "fixedAmountPerEvent": "1", "freeAmount": "100"}
    )
    assert rate_transactions(price, [D(30), D(60), D(50), D(20)]).amount == D("8.00")
    assert rate_transactions(price, [D(30), D(70)]).amount == D("1.00")  # 70 uses up 70 left: 0 + 1.00


def test_free_events_only_and_minimum_never_raises_free_ones():
    """5%, the first 2 events free, at least 1.00 a paid transaction: 10, 10 free; 10 -> 0.50 -> 1.00;
    100 -> 5.00."""
    price = parse_price(
        {"type": "percentage", "percentage": "5", "freeEvents": "2", "perTransactionMinimumAmount": "1"}
    )
    assert rate_transactions(price, [D(10), D(10), D(10), D(100)]).amount == D("6.00")
    assert rate_transactions(price, []).amount == 0


def test_discount_comes_off_the_sum():
    price = parse_price(CARD)
    rating = rate_transactions(
        price, CARD_VALUES, discounts=parse_discounts({"percentage": {"percentage": "10"}})
    )
    assert rating.amount == D("10.08")  # 11.20 - 1.12


def test_price_json_round_trip_and_refusals():
    assert price_to_json(parse_price(CARD)) == {
        **CARD,
        "fixedAmountPerEvent": "0.3",
        "perTransactionMinimumAmount": "0.5",
    }
    with pytest.raises(PriceInvalid) as exc:
        parse_price({**CARD, "perTransactionMinimumAmount": "6"})
    assert [e["name"] for e in exc.value.errors] == ["price.perTransactionMaximumAmount"]
    with pytest.raises(PriceInvalid) as exc:
        parse_price({**CARD, "freeEvents": "1.5"})
    assert [e["name"] for e in exc.value.errors] == ["price.freeEvents"]


def _item(price):
    start = datetime(2026, 10, 1, tzinfo=UTC)
    return L.BillableItem(
        item_id="si_1",
        subscription_id="sub_1",
        key="card",
        name="Card payments",
        feature_key="card_payments",
        price=price,
        discounts=None,
        commitments=None,
        payment_term="in_arrears",
        billing_cadence="P1M",
        quantity=D(1),
        currency="USD",
        active_from=start,
        active_to=None,
        anchor=start,
        timezone="UTC",
    )


def test_line_engine_rates_per_transaction_with_a_values_reader():
    at = datetime(2026, 11, 1, tzinfo=UTC)
    asked = []

    def values(feature, start, end):
        asked.append((feature, start, end))
        return CARD_VALUES

    common = dict(
        at=at,
        since=datetime(2026, 10, 1, tzinfo=UTC),
        usage_upto=at,
        progressive=False,
        currency="USD",
        usage=lambda f, s, e: sum(CARD_VALUES),
        count=lambda f, s, e: len(CARD_VALUES),
        ledger=L.Ledger(),
    )
    [line] = [x for x in L.item_lines(_item(CARD), values=values, **common) if x.type == "usage"]
    assert (line.amount, line.quantity) == (D("11.20"), D(1665))
    assert asked == [("card_payments", datetime(2026, 10, 1, tzinfo=UTC), at)]
    # a minimum commitment applies to the per-transaction sum: 20.00 - 11.20 = 8.80 top-up
    lines = L.item_lines(_item({**CARD, "minimumAmount": "20"}), values=values, **common)
    assert [(x.type, x.amount) for x in lines] == [("usage", D("11.20")), ("commitment", D("8.80"))]
