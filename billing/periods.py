"""Billing and usage periods: pure date arithmetic, no database.

A cadence is an ISO 8601 duration (`P1M`, `P1Y`, `P2W`, `P1D`, `PT1H`) or one of OpenMeter's interval
names (`DAY`, `WEEK`, `MONTH`, `YEAR`). Period *k* starts at `anchor + k * cadence`, computed from the
anchor every time (never by stepping from the previous period), in the billing time zone:

- calendar parts (years, months, weeks, days) are added to the anchor's *local* date and wall-clock
  time, and the day of month is clamped to the month's length: anchored on Jan 31, periods start on
  Feb 28 (29 in leap years), Mar 31, Apr 30, May 31, ... (back to the 31st whenever the month has one);
- clock parts (hours, minutes, seconds) are exact elapsed time;
- the local wall-clock result is converted to UTC with the zone's offset on that date, so a monthly
  period anchored at local midnight starts at local midnight on both sides of a DST switch (the period
  is then 1 hour shorter or longer in seconds, which proration accounts for). A wall-clock time that does
  not exist (spring-forward gap) resolves to the instant after the gap.

Periods are half-open: `start <= t < end`. All datetimes in and out are timezone-aware.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

_ISO = re.compile(
    r"^P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)
_NAMED = {"HOUR": "PT1H", "DAY": "P1D", "WEEK": "P1W", "MONTH": "P1M", "QUARTER": "P3M", "YEAR": "P1Y"}


MAX_CADENCE_SECONDS = 36_525 * 86_400  # core.limits.MAX_DURATION_DAYS: 100 years


class InvalidCadence(ValueError):
    pass


@dataclass(frozen=True)
class Cadence:
    months: int = 0  # years are 12 months
    days: int = 0  # weeks are 7 days
    seconds: int = 0  # hours, minutes, seconds

    @classmethod
    def parse(cls, value: str) -> Cadence:
        text = _NAMED.get(value.upper(), value.upper()) if value else ""
        m = _ISO.match(text)
        if not m:
            raise InvalidCadence(f"{value!r} is not an ISO 8601 duration (e.g. P1M) or DAY/WEEK/MONTH/YEAR.")
        g = {k: int(v) if v else 0 for k, v in m.groupdict().items()}
        cadence = cls(
            months=g["years"] * 12 + g["months"],
            days=g["weeks"] * 7 + g["days"],
            seconds=g["hours"] * 3600 + g["minutes"] * 60 + g["seconds"],
        )
        if cadence.approx_seconds() <= 0:
            raise InvalidCadence(f"{value!r} is an empty duration.")
        if cadence.approx_seconds() > MAX_CADENCE_SECONDS:
            raise InvalidCadence(f"{value!r} is longer than 100 years.")
        return cadence

    def approx_seconds(self) -> float:
        return self.months * 30.436875 * 86400 + self.days * 86400 + self.seconds

    def iso(self) -> str:
        out = "P"
        if self.months:
            out += f"{self.months // 12}Y" if self.months % 12 == 0 else f"{self.months}M"
        if self.days:
            out += f"{self.days // 7}W" if self.days % 7 == 0 else f"{self.days}D"
        if self.seconds:
            out += f"T{self.seconds}S"
        return out


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime
    index: int = 0

    def contains(self, at: datetime) -> bool:
        return self.start <= at < self.end

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())


def _tz(tz: str | ZoneInfo | None) -> ZoneInfo:
    if isinstance(tz, ZoneInfo):
        return tz
    return ZoneInfo(tz or "UTC")


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (got naive {value!r}).")


def add_months(day: date, months: int, *, anchor_day: int | None = None) -> date:
    """`day` plus `months` calendar months, with the day clamped to the target month's length."""
    total = day.year * 12 + (day.month - 1) + months
    year, month = divmod(total, 12)
    wanted = anchor_day or day.day
    return date(year, month + 1, min(wanted, calendar.monthrange(year, month + 1)[1]))


def _localize(naive: datetime, zone: ZoneInfo) -> datetime:
    """Wall-clock → aware. Ambiguous times take the first occurrence; times in a gap move past it."""
    aware = naive.replace(tzinfo=zone, fold=0)
    roundtrip = aware.astimezone(UTC).astimezone(zone)
    if roundtrip.replace(tzinfo=None) != naive:  # in a spring-forward gap
        aware = naive.replace(tzinfo=zone, fold=1).astimezone(UTC).astimezone(zone)
    return aware


def period_start(
    anchor: datetime, cadence: Cadence, index: int, tz: str | ZoneInfo | None = None
) -> datetime:
    """Start of period `index` (may be negative) in UTC."""
    _require_aware("anchor", anchor)
    zone = _tz(tz)
    local = anchor.astimezone(zone)
    if cadence.months or cadence.days:
        d = (
            add_months(local.date(), cadence.months * index, anchor_day=local.day)
            if cadence.months
            else local.date()
        )
        d = d + timedelta(days=cadence.days * index)
        naive = datetime.combine(d, local.timetz().replace(tzinfo=None))
        start = _localize(naive, zone) + timedelta(seconds=cadence.seconds * index)
    else:
        start = anchor + timedelta(seconds=cadence.seconds * index)
    return start.astimezone(UTC)


def period_at(
    anchor: datetime, cadence: Cadence | str, at: datetime, tz: str | ZoneInfo | None = None
) -> Period:
    """The period containing `at` (at may be before the anchor: periods extend backwards)."""
    _require_aware("anchor", anchor)
    _require_aware("at", at)
    cad = Cadence.parse(cadence) if isinstance(cadence, str) else cadence
    k = int((at - anchor).total_seconds() // cad.approx_seconds())
    while period_start(anchor, cad, k, tz) > at:
        k -= 1
    while period_start(anchor, cad, k + 1, tz) <= at:
        k += 1
    return Period(period_start(anchor, cad, k, tz), period_start(anchor, cad, k + 1, tz), k)


def periods_between(
    anchor: datetime, cadence: Cadence | str, start: datetime, end: datetime, tz: str | ZoneInfo | None = None
) -> list[Period]:
    """Every period overlapping [start, end), in order (the first and last may extend beyond it)."""
    _require_aware("start", start)
    _require_aware("end", end)
    cad = Cadence.parse(cadence) if isinstance(cadence, str) else cadence
    if end <= start:
        return []
    first = period_at(anchor, cad, start, tz)
    out = [first]
    k = first.index + 1
    while True:
        s = period_start(anchor, cad, k, tz)
        if s >= end:
            break
        out.append(Period(s, period_start(anchor, cad, k + 1, tz), k))
        k += 1
    return out


def boundaries_between(
    anchor: datetime, cadence: Cadence | str, start: datetime, end: datetime, tz: str | ZoneInfo | None = None
) -> list[datetime]:
    """Period starts strictly inside (start, end]: the reset instants a usage period produces."""
    return [
        p.start
        for p in periods_between(anchor, cadence, start, end + timedelta(microseconds=1), tz)
        if start < p.start <= end
    ]


def iter_periods(
    anchor: datetime, cadence: Cadence | str, tz: str | ZoneInfo | None = None, first_index: int = 0
) -> Iterator[Period]:
    cad = Cadence.parse(cadence) if isinstance(cadence, str) else cadence
    k = first_index
    while True:
        yield Period(period_start(anchor, cad, k, tz), period_start(anchor, cad, k + 1, tz), k)
        k += 1
