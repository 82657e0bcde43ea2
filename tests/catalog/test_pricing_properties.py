"""Property tests for the pricing engine (hypothesis)."""

from decimal import Context, Decimal, localcontext

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from catalog.pricing import (
    Discounts,
    PackagePrice,
    Tier,
    TieredPrice,
    UnitPrice,
    parse_price,
    price_to_json,
    price_total,
    rate,
    rate_graduated,
    rate_volume,
)

D = Decimal

# Quantities: zero, tiny decimals with many places, and huge values (10^18 tokens).
quantities = st.one_of(
    st.just(D(0)),
    st.integers(min_value=0, max_value=10**18).map(D),
    st.decimals(min_value=0, max_value=10**12, places=9, allow_nan=False, allow_infinity=False),
)
amounts = st.decimals(min_value=0, max_value=10**6, places=12, allow_nan=False, allow_infinity=False)
bounds = st.lists(
    st.decimals(min_value=D("0.001"), max_value=10**9, places=3, allow_nan=False, allow_infinity=False),
    min_size=0,
    max_size=5,
    unique=True,
).map(sorted)


@st.composite
def tiered(draw, mode):
    ups = draw(bounds)
    tiers = []
    for up in [*ups, None]:
        unit = draw(st.one_of(st.none(), amounts))
        flat = draw(st.one_of(st.none(), amounts)) if unit is not None else draw(amounts)
        tiers.append(Tier(up_to=up, unit_price=unit, flat_price=flat))
    return TieredPrice(mode=mode, tiers=tuple(tiers))


def lines_sum(r):
    with localcontext(Context(prec=100)):
        return sum((line.amount for line in r.lines), D(0)) == r.amount


@settings(max_examples=300, deadline=None)
@given(tiered("graduated"), quantities, quantities)
def test_graduated_non_negative_monotone_and_explained(price, q1, q2):
    lo, hi = sorted((q1, q2))
    r_lo, r_hi = rate_graduated(price, lo), rate_graduated(price, hi)
    assert r_lo.amount >= 0
    assert r_lo.amount <= r_hi.amount
    assert lines_sum(r_lo) and lines_sum(r_hi)
    # units across the tier lines add up to the quantity when every tier has a unit price
    if all(t.unit_price is not None for t in price.tiers):
        assert sum(line.quantity for line in r_hi.lines if line.kind == "tier_unit") == hi
    # round trip through JSON changes nothing
    assert rate_graduated(parse_price(price_to_json(price)), hi) == r_hi


@settings(max_examples=300, deadline=None)
@given(tiered("graduated"), st.data())
def test_graduated_boundaries_exact(price, data):
    """At a bound b the tier is still the lower one; just above b the next tier's flat is charged."""
    bounded = [t for t in price.tiers if t.up_to is not None]
    assume(bounded)
    index = data.draw(st.integers(0, len(bounded) - 1))
    b = bounded[index].up_to
    at = rate_graduated(price, b)
    assert max((line.tier for line in at.lines), default=0) <= index + 1
    nxt = price.tiers[index + 1]
    eps = D("1E-9")
    above = rate_graduated(price, b + eps)
    with localcontext(Context(prec=100)):  # the test's own arithmetic must not round either
        expected = at.amount + (nxt.flat_price or 0) + (nxt.unit_price or 0) * eps
    assert above.amount == expected


@settings(max_examples=300, deadline=None)
@given(tiered("volume"), quantities)
def test_volume_whole_quantity_in_one_tier(price, q):
    r = rate_volume(price, q)
    assert r.amount >= 0 and lines_sum(r)
    if q == 0:
        assert r.amount == 0
    else:
        tier_numbers = {line.tier for line in r.lines}
        assert len(tier_numbers) == 1
        tier = price.tiers[tier_numbers.pop() - 1]
        with localcontext(Context(prec=100)):
            assert r.amount == (tier.flat_price or 0) + q * (tier.unit_price or 0)
        assert tier.up_to is None or q <= tier.up_to


@settings(max_examples=300, deadline=None)
@given(amounts, quantities, quantities)
def test_unit_monotone_and_exact(unit, q1, q2):
    lo, hi = sorted((q1, q2))
    price = UnitPrice(amount=unit)
    assert 0 <= rate(price, lo).amount <= rate(price, hi).amount
    with localcontext(Context(prec=100)):
        assert rate(price, hi).amount == hi * unit  # exact, no hidden rounding
    assert rate(price, D(0)).amount == 0


@settings(max_examples=300, deadline=None)
@given(amounts, st.decimals(min_value=D("0.001"), max_value=10**6, places=3), quantities, quantities)
def test_package_monotone_and_rounds_up(amount, per, q1, q2):
    lo, hi = sorted((q1, q2))
    price = PackagePrice(amount=amount, quantity_per_package=per)
    r_lo, r_hi = rate(price, lo), rate(price, hi)
    assert 0 <= r_lo.amount <= r_hi.amount
    packages = r_hi.lines[0].quantity
    assert packages * per >= hi > (packages - 1) * per or (hi == 0 and packages == 0)


@settings(max_examples=200, deadline=None)
@given(tiered("graduated"), quantities, st.decimals(min_value=1, max_value=10**6, places=2))
def test_discounts_never_increase_or_go_negative(price, q, free):
    plain = rate(price, q)
    discounted = rate(price, q, discounts=Discounts(usage_quantity=free, percentage=D(10)))
    assert 0 <= discounted.amount <= plain.amount
    assert lines_sum(discounted)


@settings(max_examples=200, deadline=None)
@given(tiered("graduated"), quantities)
def test_total_is_rounded_once_to_currency(price, q):
    r = rate(price, q)
    total = price_total(r, "USD")
    assert total.as_tuple().exponent == -2
    assert abs(total - r.amount) <= D("0.005")
