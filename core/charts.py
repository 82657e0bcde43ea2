"""Server-rendered SVG charts (no JS, no CDN). Each bar carries a `<title>` so hovering shows a tooltip.

`bar_chart(bars, ...)` returns a safe SVG string; `bars` are `Bar(label, value, tooltip)`; the y axis is
scaled to a "nice" maximum with three grid lines. Values are Decimals or numbers; nothing here touches
the database.
"""

from __future__ import annotations

import colorsys
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe


@dataclass(frozen=True)
class Bar:
    label: str
    value: Decimal
    tooltip: str = ""


def nice_max(value: Decimal) -> Decimal:
    if value <= 0:
        return Decimal(1)
    exponent = len(str(int(value))) - 1 if value >= 1 else 0
    base = Decimal(10) ** exponent
    for step in (1, 2, 2.5, 5, 10):
        candidate = base * Decimal(str(step))
        if candidate >= value:
            return candidate
    return base * 10


def fmt_number(value: Decimal) -> str:
    value = Decimal(value)
    if value == value.to_integral_value():
        return f"{int(value):,}"
    return f"{value.quantize(Decimal('0.01')).normalize():,}" if abs(value) >= 1 else f"{value.normalize()}"


def compact(value: Decimal) -> str:
    value = Decimal(value)
    for unit, size in (("B", Decimal(10) ** 9), ("M", Decimal(10) ** 6), ("k", Decimal(1000))):
        if abs(value) >= size:
            return f"{(value / size).quantize(Decimal('0.1')).normalize():f}{unit}"
    if value == value.to_integral_value():
        return f"{int(value):,}"
    return f"{value.quantize(Decimal('0.01')).normalize():f}"


def bar_chart(
    bars: Sequence[Bar],
    *,
    width: int = 640,
    height: int = 220,
    color: str = "#3b5bdb",
    label: str = "chart",
    highlight_last: bool = False,
) -> SafeString:
    left, right, top, bottom = 44, 8, 10, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = nice_max(max((Decimal(b.value) for b in bars), default=Decimal(0)))
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
        f'preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i in range(4):
        y = top + plot_h - plot_h * i / 3
        tick = top_value * i / 3
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{escape(compact(tick))}</text>'
        )
    n = max(len(bars), 1)
    slot = plot_w / n
    bar_w = max(slot * 0.7, 1)
    label_every = max(1, round(n / 8))
    for i, bar in enumerate(bars):
        value = Decimal(bar.value)
        h = float(value / top_value) * plot_h if top_value else 0
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h - h
        tooltip = bar.tooltip or f"{bar.label}: {fmt_number(value)}"
        fill = color if not (highlight_last and i == n - 1) else color + "99"
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{max(h, 0):.1f}" '
            f'fill="{fill}" data-value="{escape(str(value))}"><title>{escape(tooltip)}</title></rect>'
        )
        if i % label_every == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{height - 8}" class="axis" text-anchor="middle">'
                f"{escape(bar.label)}</text>"
            )
    if not bars:
        parts.append(
            f'<text x="{width / 2}" y="{height / 2}" class="axis" text-anchor="middle">No usage yet</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped above


def brand_color(seed: str) -> str:
    """A stable, readable brand colour per tenant (hue from the organization id)."""
    hue = int(hashlib.sha256(seed.encode()).hexdigest()[:4], 16) / 0xFFFF
    r, g, b = colorsys.hls_to_rgb(hue, 0.42, 0.55)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"
