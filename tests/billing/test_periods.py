"""Billing periods and proration: pure functions, no database."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.periods import Cadence, InvalidCadence, boundaries_between, period_at, periods_between
from billing.proration import prorate, proration_fraction


def d(*args, tz=UTC):
    return datetime(*args, tzinfo=tz)


def test_anchor_on_31st_clamps_and_returns():
    starts = [
        p.start.date().isoformat()
        for p in periods_between(d(2026, 1, 31), "P1M", d(2026, 1, 31), d(2027, 1, 31))
    ]
    assert starts == [
        "2026-01-31",
        "2026-02-28",
        "2026-03-31",
        "2026-04-30",
        "2026-05-31",
        "2026-06-30",
        "2026-07-31",
        "2026-08-31",
        "2026-09-30",
        "2026-10-31",
        "2026-11-30",
        "2026-12-31",
    ]


def test_leap_year_february():
    p = period_at(d(2028, 1, 31), "MONTH", d(2028, 2, 15))
    assert (p.start, p.end) == (d(2028, 1, 31), d(2028, 2, 29))
    assert period_at(d(2028, 1, 31), "P1M", d(2028, 2, 29)).end == d(2028, 3, 31)


def test_half_open_boundaries():
    p = period_at(d(2026, 1, 1), "P1M", d(2026, 2, 1))
    assert p.start == d(2026, 2, 1) and p.contains(d(2026, 2, 1)) and not p.contains(d(2026, 3, 1))
    assert period_at(d(2026, 1, 1), "P1M", d(2026, 2, 1) - timedelta(microseconds=1)).start == d(2026, 1, 1)


def test_periods_before_anchor():
    p = period_at(d(2026, 3, 31), "P1M", d(2026, 3, 1))
    assert (p.start, p.end) == (d(2026, 2, 28), d(2026, 3, 31)) and p.index == -1


def test_customer_timezone_and_dst():
    ny = ZoneInfo("America/New_York")
    anchor = datetime(2026, 1, 1, tzinfo=ny)  # local midnight
    periods = periods_between(anchor, "P1M", anchor, d(2026, 12, 1), "America/New_York")
    for p in periods:
        local = p.start.astimezone(ny)
        assert (local.day, local.hour, local.minute) == (1, 0, 0)
    march = next(p for p in periods if p.start.astimezone(ny).month == 3)
    assert march.seconds == 31 * 86400 - 3600  # spring forward: one hour short
    november = next(p for p in periods if p.start.astimezone(ny).month == 11)
    assert november.seconds == 30 * 86400 + 3600
    # the same anchor computed in UTC gives UTC midnights (05:00 local in winter)
    utc = period_at(d(2026, 1, 1, 5), "P1M", d(2026, 7, 2), "UTC")
    assert utc.start == d(2026, 7, 1, 5)


def test_daily_periods_across_dst_are_local_days():
    berlin = ZoneInfo("Europe/Berlin")
    anchor = datetime(2026, 3, 28, tzinfo=berlin)
    ps = periods_between(anchor, "DAY", anchor, datetime(2026, 3, 31, tzinfo=berlin), berlin)
    assert [p.seconds for p in ps] == [86400, 82800, 86400]


def test_cadence_parsing():
    assert Cadence.parse("P1M") == Cadence(months=1)
    assert Cadence.parse("YEAR") == Cadence(months=12)
    assert Cadence.parse("P2W") == Cadence(days=14)
    assert Cadence.parse("PT1H") == Cadence(seconds=3600)
    for bad in ("", "P", "1M", "PT", "P0D", "monthly"):
        with pytest.raises(InvalidCadence):
            Cadence.parse(bad)
    with pytest.raises(ValueError):
        period_at(datetime(2026, 1, 1), "P1M", d(2026, 1, 1))  # naive anchor


def test_boundaries_between():
    assert boundaries_between(d(2026, 1, 31), "P1M", d(2026, 2, 1), d(2026, 3, 31)) == [
        d(2026, 2, 28),
        d(2026, 3, 31),
    ]


@settings(max_examples=200, deadline=None)
@given(
    day=st.integers(1, 31),
    month=st.integers(1, 12),
    k=st.integers(-30, 60),
    tz=st.sampled_from(["UTC", "America/New_York", "Europe/Berlin", "Australia/Sydney", "Asia/Kolkata"]),
)
def test_periods_tile_time_and_keep_the_anchor_day(day, month, k, tz):
    zone = ZoneInfo(tz)
    import calendar

    day = min(day, calendar.monthrange(2026, month)[1])
    anchor = datetime(2026, month, day, 9, 30, tzinfo=zone)
    at = anchor + timedelta(days=k * 17.3)
    p = period_at(anchor, "P1M", at, tz)
    assert p.start <= at < p.end
    nxt = period_at(anchor, "P1M", p.end, tz)
    assert nxt.start == p.end  # contiguous, no gaps or overlaps
    local = p.start.astimezone(zone)
    assert local.day == min(day, calendar.monthrange(local.year, local.month)[1])
    assert (local.hour, local.minute) == (9, 30)


def test_proration_is_seconds_exact_and_rounded_once():
    start, end = d(2026, 2, 1), d(2026, 3, 1)  # 28 days
    f = proration_fraction(span_start=d(2026, 2, 15), span_end=end, period_start=start, period_end=end)
    assert f == Fraction(1, 2)
    assert prorate(amount=Decimal("10.00"), fraction=f, currency="USD") == Decimal("5.00")
    f3 = proration_fraction(
        span_start=d(2026, 2, 1, 0, 0, 1), span_end=end, period_start=start, period_end=end
    )
    assert f3 == Fraction(28 * 86400 - 1, 28 * 86400)
    assert prorate(amount=Decimal("99.99"), fraction=f3, currency="USD") == Decimal("99.99")
    assert prorate(amount=Decimal("100"), fraction=Fraction(1, 3), currency="USD") == Decimal("33.33")
    assert prorate(amount=Decimal("1000"), fraction=Fraction(1, 3), currency="JPY") == Decimal("333")
    assert prorate(amount=Decimal("0.05"), fraction=Fraction(1, 2), currency="USD") == Decimal(
        "0.03"
    )  # half up
    # clipped to the period; a span outside it is worth nothing
    assert (
        proration_fraction(
            span_start=d(2026, 1, 1), span_end=d(2026, 4, 1), period_start=start, period_end=end
        )
        == 1
    )
    assert (
        proration_fraction(
            span_start=d(2026, 4, 1), span_end=d(2026, 5, 1), period_start=start, period_end=end
        )
        == 0
    )
