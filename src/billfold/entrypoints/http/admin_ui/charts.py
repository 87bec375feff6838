"""Charts for the console, drawn on the server as SVG: no script, no network, no inline style.

Each function takes plain figures and returns the markup of one ``<svg>`` (``markupsafe.Markup``,
every text escaped): ``role="img"``, an ``aria-label`` and a ``<title>`` that say the figures in
words, a legend, axis titles, and a ``viewBox`` (no fixed size) so that it scales to its column.
Colours are SVG presentation attributes (the console's Content-Security-Policy refuses ``style=``).
Empty figures draw a frame that says "No data yet", never an error.

    stacked_bars     counts per bucket, stacked by series (events by outcome, purchases by kind)
    rate_bars        a rate per bucket, 0 to 100 % (webhook success), gaps where there is none
    horizontal_bars  amounts of money per name (revenue per package or plan), in each currency
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from markupsafe import Markup, escape

from billfold.domain.money import format_money

WIDTH: Final = 480
HEIGHT: Final = 240
LEFT: Final = 64
RIGHT: Final = 472
TOP: Final = 34
BOTTOM: Final = 190
FONT: Final = 12
INK: Final = "#17202f"
MUTED: Final = "#5b6576"
GRID: Final = "#e2e6ee"
EMPTY: Final = "No data yet"

COLORS: Final = {
    "processed": "#16a34a",
    "ignored": "#94a3b8",
    "received": "#3b82f6",
    "failed": "#d97706",
    "dead": "#dc2626",
}
PALETTE: Final = ("#2f54eb", "#16a34a", "#d97706", "#9333ea", "#0891b2", "#dc2626")


@dataclass(frozen=True, slots=True)
class Series:
    """One stacked series: its name (legend), one value per bucket, and its colour."""

    name: str
    values: Sequence[int]
    color: str | None = None


@dataclass(frozen=True, slots=True)
class Bar:
    """One horizontal bar: a name and an amount of money (with what was refunded of it)."""

    name: str
    amount: int
    currency: str | None
    count: int = 0
    refunded: int = 0


def _svg(markup: str) -> Markup:
    """The finished chart. Every text in it went through ``escape`` (``_text``, ``_open`` and
    the ``<title>`` of each bar); the rest is markup written here."""
    return Markup(markup)  # noqa: S704 - built from escaped parts only


def _n(value: float) -> str:
    """A coordinate: at most two decimals, no trailing zeros."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _text(
    x: float,
    y: float,
    body: str,
    *,
    anchor: str = "start",
    cls: str = "",
    fill: str = MUTED,
    size: int = FONT,
) -> str:
    klass = f' class="{escape(cls)}"' if cls else ""
    return (
        f'<text x="{_n(x)}" y="{_n(y)}" font-size="{size}" fill="{fill}" '
        f'text-anchor="{anchor}"{klass}>{escape(body)}</text>'
    )


def _open(summary: str, height: int, name: str) -> str:
    label = escape(summary)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'class="chart" data-chart="{escape(name)}" role="img" aria-label="{label}" '
        f'font-family="system-ui, sans-serif" preserveAspectRatio="xMidYMid meet">'
        f"<title>{label}</title>"
    )


def _legend(items: Sequence[tuple[str, str]], start: float = LEFT) -> str:
    parts, x = [], float(start)
    for name, color in items:
        parts.append(
            f'<rect x="{_n(x)}" y="8" width="10" height="10" rx="2" fill="{escape(color)}"/>'
        )
        parts.append(_text(x + 14, 17, name, fill=INK))
        x += 14 + 8 * len(name) + 14  # room for the larger type of narrow screens
    return f'<g class="legend">{"".join(parts)}</g>'


def _empty(summary: str, name: str, height: int = HEIGHT) -> Markup:
    return _svg(
        _open(f"{summary}: no data yet", height, name)
        + f'<rect x="1" y="1" width="{WIDTH - 2}" height="{height - 2}" rx="8" fill="none" '
        f'stroke="{GRID}"/>'
        + _text(WIDTH / 2, height / 2 + 5, EMPTY, anchor="middle", cls="chart-empty", size=15)
        + "</svg>"
    )


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... at least ``value`` (1 for nothing)."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def _every(count: int, most: int) -> int:
    """Label every n-th bucket so that at most ``most`` labels show."""
    return max(1, -(-count // most))


def _axes(
    top_label: str, mid_label: str | None, zero_label: str, y_title: str, x_title: str
) -> str:
    mid = (TOP + BOTTOM) / 2
    parts = [
        f'<line x1="{LEFT}" y1="{TOP}" x2="{RIGHT}" y2="{TOP}" stroke="{GRID}"/>',
        f'<line x1="{LEFT}" y1="{BOTTOM}" x2="{RIGHT}" y2="{BOTTOM}" stroke="{MUTED}"/>',
        _text(LEFT - 6, TOP + 4, top_label, anchor="end"),
        _text(LEFT - 6, BOTTOM + 4, zero_label, anchor="end"),
        _text(LEFT, HEIGHT - 6, f"{x_title} →", cls="axis-title"),
        f'<text x="14" y="{_n(mid)}" font-size="{FONT}" fill="{MUTED}" text-anchor="middle" '
        f'transform="rotate(-90 14 {_n(mid)})" class="axis-title">{escape(y_title)}</text>',
    ]
    if mid_label is not None:
        parts.insert(
            1,
            f'<line x1="{LEFT}" y1="{_n(mid)}" x2="{RIGHT}" y2="{_n(mid)}" '
            f'stroke="{GRID}" stroke-dasharray="3 3"/>',
        )
        parts.append(_text(LEFT - 6, mid + 4, mid_label, anchor="end"))
    return f'<g class="axes">{"".join(parts)}</g>'


def _x_labels(labels: Sequence[str], slot: float) -> str:
    """Labels under the bars, as many as fit; every other one is marked ``x-odd`` (a narrow
    screen, drawing the chart smaller, hides those: see ``admin.css``)."""
    every = _every(len(labels), max(1, int((RIGHT - LEFT) // 48)))
    shown = [i for i in range(len(labels)) if i % every == 0]
    parts = []
    for n, i in enumerate(shown):
        x, anchor = LEFT + slot * (i + 0.5), "middle"
        if x > RIGHT - 24:  # a label centred there would run past the edge
            x, anchor = float(WIDTH - 2), "end"
        cls = "x-odd" if n % 2 and len(shown) > 4 else ""
        parts.append(_text(x, BOTTOM + 16, labels[i], anchor=anchor, cls=cls))
    return f'<g class="x-labels">{"".join(parts)}</g>'


def stacked_bars(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    y_title: str,
    x_title: str,
    name: str = "stacked",
) -> Markup:
    """One bar per label, its series stacked bottom up; heights in proportion to the totals."""
    totals = {s.name: sum(s.values) for s in series}
    summary = f"{title}: " + ", ".join(f"{totals[s.name]:,} {s.name}" for s in series)
    summary += f" (total {sum(totals.values()):,})"
    if not labels or not any(totals.values()):
        return _empty(title, name)
    colors = [s.color or PALETTE[i % len(PALETTE)] for i, s in enumerate(series)]
    peak = max(sum(s.values[i] for s in series) for i in range(len(labels)))
    top = nice_ceiling(peak)
    scale = (BOTTOM - TOP) / top
    slot = (RIGHT - LEFT) / len(labels)
    width = max(1.0, slot * 0.7)
    bars = []
    for i, label in enumerate(labels):
        x, y, rects = LEFT + slot * i + (slot - width) / 2, float(BOTTOM), []
        for s, color in zip(series, colors, strict=True):
            value = s.values[i]
            if value <= 0:
                continue
            height = value * scale
            y -= height
            rects.append(
                f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(width)}" height="{_n(height)}" '
                f'fill="{escape(color)}" data-series="{escape(s.name)}" data-value="{value}">'
                f"<title>{escape(f'{label}: {value:,} {s.name}')}</title></rect>"
            )
        bars.append(f'<g class="bar" data-label="{escape(label)}">{"".join(rects)}</g>')
    half = f"{top // 2:,}" if top >= 2 and top % 2 == 0 else None
    return _svg(
        _open(summary, HEIGHT, name)
        + _legend([(s.name, c) for s, c in zip(series, colors, strict=True)])
        + _axes(f"{top:,}", half, "0", y_title, x_title)
        + f'<g class="bars">{"".join(bars)}</g>'
        + _x_labels(labels, slot)
        + "</svg>"
    )


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{round(rate * 100)}%"


def rate_bars(
    title: str,
    labels: Sequence[str],
    rates: Sequence[float | None],
    *,
    overall: float | None,
    y_title: str,
    x_title: str,
    name: str = "rate",
) -> Markup:
    """One bar per label from 0 to 100 %; a label without a rate (nothing finished) is a gap
    marked with a dash."""
    known = [(label, r) for label, r in zip(labels, rates, strict=True) if r is not None]
    if not known:
        return _empty(title, name)
    if len(known) <= 14:
        detail = ", ".join(f"{label} {percent(r)}" for label, r in known)
    else:
        low_label, low = min(known, key=lambda k: k[1])
        detail = f"lowest {percent(low)} on {low_label}"
    summary = f"{title}: {percent(overall)} overall; {detail}"
    slot = (RIGHT - LEFT) / len(labels)
    width = max(1.0, slot * 0.6)
    color = COLORS["processed"]
    bars = []
    for i, (label, rate) in enumerate(zip(labels, rates, strict=True)):
        x = LEFT + slot * i + (slot - width) / 2
        if rate is None:
            bars.append(
                f'<g class="bar" data-label="{escape(label)}">'
                + _text(x + width / 2, BOTTOM - 4, "\u2013", anchor="middle")
                + "</g>"
            )
            continue
        height = max(0.0, min(1.0, rate)) * (BOTTOM - TOP)
        fill = color if rate >= 0.95 else COLORS["failed"] if rate >= 0.8 else COLORS["dead"]
        bars.append(
            f'<g class="bar" data-label="{escape(label)}">'
            f'<rect x="{_n(x)}" y="{_n(BOTTOM - height)}" width="{_n(width)}" '
            f'height="{_n(height)}" fill="{fill}" data-value="{percent(rate)}">'
            f"<title>{escape(f'{label}: {percent(rate)}')}</title></rect></g>"
        )
    legend = [("≥ 95 %", color), ("80\u201395 %", COLORS["failed"]), ("< 80 %", COLORS["dead"])]
    return _svg(
        _open(summary, HEIGHT, name)
        + _legend(legend)
        + _axes("100%", "50%", "0%", y_title, x_title)
        + f'<g class="bars">{"".join(bars)}</g>'
        + _x_labels(labels, slot)
        + "</svg>"
    )


def _money(amount: int, currency: str | None) -> str:
    return format_money(amount, currency) if currency else f"{amount:,}"


def horizontal_bars(title: str, bars: Sequence[Bar], *, name: str = "revenue") -> Markup:
    """One row per name: the name and its amount written above a bar as long as the amount,
    in proportion to the largest amount of the same currency; what was refunded of it drawn
    over the bar's start."""
    if not bars:
        return _empty(title, name, height=120)

    def said(b: Bar) -> str:
        orders = f"{b.count:,} order{'' if b.count == 1 else 's'}"
        text = f"{b.name} {_money(b.amount, b.currency)} ({orders}"
        return text + (f", {_money(b.refunded, b.currency)} refunded)" if b.refunded else ")")

    summary = f"{title}: " + ", ".join(said(b) for b in bars)
    peaks: dict[str | None, int] = {}
    for b in bars:
        peaks[b.currency] = max(peaks.get(b.currency, 0), b.amount)
    row, top = 40, 30
    height = top + row * len(bars) + 22
    span = RIGHT - 8
    rows = []
    for i, b in enumerate(bars):
        y = top + row * i
        peak = peaks[b.currency] or 1
        length = span * max(0, b.amount) / peak
        refunded = span * min(max(0, b.refunded), max(0, b.amount)) / peak
        shown = b.name if len(b.name) <= 28 else b.name[:27] + "…"
        value = _money(b.amount, b.currency) + (
            f" · {_money(b.refunded, b.currency)} refunded" if b.refunded else ""
        )
        parts = [
            _text(8, y + 12, shown, fill=INK),
            _text(RIGHT, y + 12, value, anchor="end", fill=INK),
            f'<rect x="8" y="{y + 18}" width="{_n(span)}" height="12" rx="3" fill="#eef1f6"/>',
            f'<rect x="8" y="{y + 18}" width="{_n(length)}" height="12" rx="3" '
            f'fill="{PALETTE[0]}" data-value="{b.amount}"><title>{escape(said(b))}</title></rect>',
        ]
        if refunded:
            parts.append(
                f'<rect x="8" y="{y + 18}" width="{_n(refunded)}" height="12" rx="3" '
                f'fill="{COLORS["dead"]}" data-refunded="{b.refunded}"/>'
            )
        rows.append(f'<g class="bar" data-label="{escape(b.name)}">{"".join(parts)}</g>')
    foot = "Bars: each in proportion to the largest amount in its currency"
    return _svg(
        _open(summary, height, name)
        + _legend([("Revenue", PALETTE[0]), ("Refunded", COLORS["dead"])], start=8)
        + f'<g class="bars">{"".join(rows)}</g>'
        + _text(8, height - 6, foot, cls="axis-title", size=11)
        + "</svg>"
    )
