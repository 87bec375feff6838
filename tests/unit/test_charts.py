"""The console's SVG charts: valid XML, bars in proportion to the figures, every text escaped,
words for screen readers, and a clear "No data yet" for empty figures."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from markupsafe import Markup

from billfold.entrypoints.http.admin_ui import charts
from billfold.entrypoints.http.admin_ui.dashboard_page import age, days_of

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: Markup) -> ET.Element:
    assert isinstance(markup, Markup)
    root = ET.fromstring(str(markup))  # noqa: S314 - markup this module made
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("viewBox", "").startswith("0 0 ")
    assert root.get("width") is None  # scales to its column
    assert root.get("height") is None
    assert "style" not in str(markup)  # the console's CSP refuses inline styles
    title = root.find(f"{SVG}title")
    assert title is not None
    assert title.text == root.get("aria-label")
    return root


def rects(root: ET.Element, **attrs: str) -> list[ET.Element]:
    return [
        r
        for r in root.iter(f"{SVG}rect")
        if r.get("data-value") is not None and all(r.get(k) == v for k, v in attrs.items())
    ]


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_stacked_bars_are_as_tall_as_their_values_and_summarised_in_words() -> None:
    chart = charts.stacked_bars(
        "Events per hour",
        ["08:00", "09:00", "10:00"],
        [
            charts.Series("processed", [2, 4, 0], "#16a34a"),
            charts.Series("failed", [1, 0, 0], "#d97706"),
        ],
        y_title="events",
        x_title="Hour (UTC)",
    )
    root = parse(chart)
    label = root.get("aria-label")
    assert label == "Events per hour: 6 processed, 1 failed (total 7)"
    processed = rects(root, **{"data-series": "processed"})
    assert [r.get("data-value") for r in processed] == ["2", "4"]
    heights = [float(r.get("height", "0")) for r in processed]
    assert abs(heights[1] - 2 * heights[0]) < 0.02
    [failed] = rects(root, **{"data-series": "failed"})
    assert abs(float(failed.get("height", "0")) * 2 - heights[0]) < 0.02
    # stacked: the failed hour 08:00 sits on top of its processed bar
    assert (
        abs(
            float(failed.get("y", "0"))
            + float(failed.get("height", "0"))
            - float(processed[0].get("y", "0"))
        )
        < 0.02
    )
    words = texts(root)
    assert {"processed", "failed", "events", "Hour (UTC) →", "08:00", "0", "5"} <= set(words)
    assert [t.text for t in processed[0].iter(f"{SVG}title")] == ["08:00: 2 processed"]


def test_every_text_is_escaped() -> None:
    hostile = '<script>alert("x")</script> & "quotes"'
    chart = charts.stacked_bars(
        hostile, [hostile], [charts.Series(hostile, [3])], y_title=hostile, x_title=hostile
    )
    root = parse(chart)
    assert "<script>" not in str(chart)
    assert root.get("aria-label", "").startswith(hostile)
    assert hostile in texts(root)
    bars = charts.horizontal_bars(hostile, [charts.Bar(hostile, 100, "usd", count=1)])
    assert "<script>" not in str(bars)
    root = parse(bars)
    assert root.get("aria-label", "").startswith(f"{hostile}: {hostile} $1.00")
    assert [g.get("data-label") for g in root.iter(f"{SVG}g") if g.get("class") == "bar"] == [
        hostile
    ]


def test_empty_figures_draw_no_data_yet() -> None:
    for chart in (
        charts.stacked_bars(
            "Purchases",
            ["Nov 01"],
            [charts.Series("checkout", [0])],
            y_title="orders",
            x_title="Day",
        ),
        charts.stacked_bars("Purchases", [], [], y_title="", x_title=""),
        charts.rate_bars("Success", ["Nov 01"], [None], overall=None, y_title="", x_title=""),
        charts.horizontal_bars("Revenue by plan", []),
    ):
        root = parse(chart)
        assert "No data yet" in texts(root)
        assert root.get("aria-label", "").endswith(": no data yet")
        assert rects(root) == []


def test_rates_are_bars_from_0_to_100_percent_with_gaps() -> None:
    chart = charts.rate_bars(
        "Webhook success",
        ["Nov 01", "Nov 02", "Nov 03"],
        [1.0, None, 0.5],
        overall=0.75,
        y_title="success",
        x_title="Day (UTC)",
    )
    root = parse(chart)
    assert root.get("aria-label") == "Webhook success: 75% overall; Nov 01 100%, Nov 03 50%"
    full, half = rects(root)
    assert (full.get("data-value"), half.get("data-value")) == ("100%", "50%")
    assert abs(float(full.get("height", "0")) - 2 * float(half.get("height", "0"))) < 0.02
    assert {"100%", "50%", "0%"} <= set(texts(root))


def test_revenue_bars_are_money_in_proportion_within_each_currency() -> None:
    chart = charts.horizontal_bars(
        "Revenue by package",
        [
            charts.Bar("professional", 2999, "usd", count=1, refunded=1000),
            charts.Bar("starter", 998, "usd", count=2),
            charts.Bar("yen pack", 500, "jpy", count=1),
        ],
    )
    root = parse(chart)
    assert root.get("aria-label") == (
        "Revenue by package: professional $29.99 (1 order, $10.00 refunded), "
        "starter $9.98 (2 orders), yen pack ¥500 (1 order)"
    )
    pro, starter, yen = rects(root)
    assert abs(float(starter.get("width", "0")) / float(pro.get("width", "0")) - 998 / 2999) < 1e-3
    assert yen.get("width") == pro.get("width")  # the largest of its own currency
    assert "$29.99 · $10.00 refunded" in texts(root)
    [refund] = [r for r in root.iter(f"{SVG}rect") if r.get("data-refunded")]
    ratio = float(refund.get("width", "0")) / float(pro.get("width", "0"))
    assert abs(ratio - 1000 / 2999) < 1e-3


def test_many_buckets_label_only_some_of_them() -> None:
    labels = [f"{h:02d}:00" for h in range(25)]
    chart = charts.stacked_bars(
        "Events", labels, [charts.Series("processed", [1] * 25)], y_title="e", x_title="h"
    )
    shown = [t for t in texts(parse(chart)) if t in labels]
    assert 3 <= len(shown) <= 9
    assert len(rects(parse(chart))) == 25


def test_the_page_helpers() -> None:
    assert [age(s) for s in (None, 0, 59, 100, 3_600, 3_660, 90_000, 200_000)] == [
        "—",
        "0 s",
        "59 s",
        "1 min 40 s",
        "1 h",
        "1 h 1 min",
        "25 h",
        "2 d 7 h",
    ]
    assert [days_of(v) for v in (None, "", "30", "0", "91", "x")] == [7, 7, 30, 7, 7, 7]
    assert charts.nice_ceiling(0) == 1
    assert [charts.nice_ceiling(v) for v in (1, 3, 7, 11, 49, 51)] == [1, 5, 10, 20, 50, 100]
