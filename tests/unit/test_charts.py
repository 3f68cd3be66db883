"""The funnel page's SVG charts: well-formed, proportional, labelled, escaped, CSP-safe."""

from __future__ import annotations

import datetime
import re
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from app.ops.charts import daily_chart, funnel_chart

pytestmark = pytest.mark.unit

SVG = "{http://www.w3.org/2000/svg}"
STEPS = [
    ("Link opened", 120),
    ("Checkout started", 80),
    ("Offer chosen", 40),
    ("Signed in", 0),
    ("Confirmed", 12),
]
HOSTILE = ["<script>alert(1)</script>", '"&<>', "' onload='alert(1)", "]]><x/>"]


def parse(markup: Markup) -> ET.Element:
    assert isinstance(markup, Markup)
    return ET.fromstring(str(markup))


def bars(root: ET.Element) -> list[ET.Element]:
    return [rect for rect in root.iter(f"{SVG}rect") if rect.get("class") == "chart__bar"]


def texts(root: ET.Element) -> list[str]:
    return [text.text or "" for text in root.iter(f"{SVG}text")]


def days(count: int, value=lambda i: (i * 37) % 50) -> list[tuple[datetime.date, int]]:
    start = datetime.date(2024, 12, 2)
    return [(start + datetime.timedelta(days=i), value(i)) for i in range(count)]


def assert_image_with_text_alternative(root: ET.Element, chart_id: str) -> None:
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("width") == "100%"
    assert root.get("height") is None
    assert re.fullmatch(r"0 0 \d+(\.\d)? \d+(\.\d)?", root.get("viewBox", ""))
    assert root.get("preserveAspectRatio", "").endswith(" meet")
    assert root.get("font-family") == "system-ui, sans-serif"
    assert root.get("aria-labelledby") == f"{chart_id}-title {chart_id}-desc"
    title, desc = root[0], root[1]
    assert (title.tag, title.get("id")) == (f"{SVG}title", f"{chart_id}-title")
    assert (desc.tag, desc.get("id")) == (f"{SVG}desc", f"{chart_id}-desc")
    assert title.text and desc.text
    ids = [element.get("id") for element in root.iter() if element.get("id")]
    assert ids == [f"{chart_id}-title", f"{chart_id}-desc"]


def assert_csp_safe_and_readable(root: ET.Element) -> None:
    assert not list(root.iter(f"{SVG}style"))
    assert not list(root.iter(f"{SVG}script"))
    assert not list(root.iter(f"{SVG}foreignObject"))
    for element in root.iter():
        assert "style" not in element.attrib
        assert not [name for name in element.attrib if name.lower().startswith("on")]
        size = element.get("font-size")
        if size is not None:
            assert float(size) >= 13
    width = float(root.get("viewBox", "").split()[2])
    assert 320 <= width <= 400


def test_funnel_bars_are_proportional_to_the_largest_count_and_zero_has_no_width():
    root = parse(funnel_chart("funnel", "Checkout funnel", STEPS))
    widths = [float(bar.get("width", "")) for bar in bars(root)]
    assert len(widths) == len(STEPS)
    assert widths[0] == max(widths) > 0
    assert widths[3] == 0
    for (_, count), width in zip(STEPS, widths, strict=True):
        assert width == pytest.approx(widths[0] * count / 120, abs=0.05)


def test_funnel_writes_each_count_and_the_share_of_the_last_step_anyone_reached():
    root = parse(funnel_chart("funnel", "Checkout funnel", STEPS))
    shown = texts(root)
    assert shown == [
        "Link opened",
        "120",
        "Checkout started",
        "80 · 67 %",
        "Offer chosen",
        "40 · 50 %",
        "Signed in",
        "0 · 0 %",
        "Confirmed",
        "12 · 30 %",  # of the step before that anyone reached: Offer chosen
    ]


def test_funnel_shares_round_half_up_and_a_tiny_share_is_not_written_as_zero():
    root = parse(funnel_chart("f", "t", [("a", 8), ("b", 1), ("c", 1), ("d", 0), ("e", 5)]))
    assert texts(root)[1::2] == ["8", "1 · 13 %", "1 · 100 %", "0 · 0 %", "5 · 500 %"]
    root = parse(funnel_chart("f", "t", [("a", 1_000_000), ("b", 1)]))
    assert texts(root)[1::2] == ["1,000,000", "1 · <1 %"]


def test_funnel_labels_are_above_their_bars_not_beside_them():
    root = parse(funnel_chart("funnel", "Checkout funnel", STEPS))
    labels = list(root.iter(f"{SVG}text"))[0::2]
    for label, bar in zip(labels, bars(root), strict=True):
        assert float(label.get("x", "")) == float(bar.get("x", "")) == 0
        assert float(label.get("y", "")) < float(bar.get("y", ""))


def test_funnel_has_a_title_and_a_description_in_words():
    root = parse(funnel_chart("signup-funnel", "Checkout funnel", STEPS))
    assert_image_with_text_alternative(root, "signup-funnel")
    assert root[0].text == "Checkout funnel"
    assert root[1].text == (
        "Link opened 120, Checkout started 80 (67 % of Link opened), "
        "Offer chosen 40 (50 % of Checkout started), Signed in 0 (0 % of Offer chosen), "
        "Confirmed 12 (30 % of Offer chosen)."
    )


def test_funnel_with_every_count_zero_or_no_steps_at_all():
    root = parse(funnel_chart("funnel", "Nothing yet", [("Link opened", 0), ("Confirmed", 0)]))
    assert [bar.get("width") for bar in bars(root)] == ["0", "0"]
    assert texts(root) == ["Link opened", "0", "Confirmed", "0"]  # no step before reached
    root = parse(funnel_chart("funnel", "Nothing yet", []))
    assert_image_with_text_alternative(root, "funnel")
    assert texts(root) == ["No data"]


def test_a_long_label_is_cut_short_on_the_chart_and_whole_in_the_description():
    label = "Spring campaign for the whole family and all of their friends"
    root = parse(funnel_chart("funnel", "Long", [(label, 1_234_567)]))
    shown = texts(root)[0]
    assert shown.endswith("…") and label.startswith(shown[:-1])
    assert len(shown) * 16 * 0.6 + len("1,234,567") * 16 * 0.6 <= 320
    assert root[1].text == f"{label} 1,234,567."


@pytest.mark.parametrize("hostile", HOSTILE)
def test_labels_and_titles_come_out_escaped_and_read_back_as_they_went_in(hostile):
    for markup in (
        funnel_chart("funnel", hostile, [(hostile, 3), ("Confirmed", 1)]),
        funnel_chart("funnel", Markup(hostile), [(Markup(hostile), 3)]),
    ):
        assert "<script" not in str(markup)
        assert "<x/>" not in str(markup)
        root = parse(markup)
        assert root[0].text == hostile
        assert texts(root)[0] == hostile
        assert root[1].text is not None and root[1].text.startswith(f"{hostile} 3")
        assert [element.tag for element in root.iter()].count(f"{SVG}text") == len(texts(root))
    root = parse(daily_chart("daily", hostile, days(3)))
    assert root[0].text == hostile


@settings(max_examples=200, deadline=None)
@given(label=st.text(max_size=30), title=st.text(max_size=30))
def test_any_text_at_all_still_makes_well_formed_svg(label, title):
    root = parse(funnel_chart("funnel", title, [(label, 2), ("b", 1)]))
    assert len(bars(root)) == 2
    assert_csp_safe_and_readable(root)
    printable = "".join(c if c.isprintable() or c == " " else " " for c in label)
    if label == printable and not label.startswith(" ") and "  " not in label:
        assert texts(root)[0] == label


def test_no_style_attribute_or_element_and_text_large_enough_to_read_at_320_px():
    for markup in (
        funnel_chart("funnel", "Funnel", STEPS),
        daily_chart("daily", "Daily", days(7)),
        daily_chart("daily", "Daily", days(92)),
    ):
        assert "style" not in str(markup)
        root = parse(markup)
        assert_csp_safe_and_readable(root)
        for rect in bars(root):
            assert rect.get("fill") == "#1d4f91"
        assert root.get("fill") == "#0b0c0c"


@pytest.mark.parametrize(
    "chart_id",
    [
        "",
        "Funnel",
        "1funnel",
        "-funnel",
        "funnel_1",
        "funnel chart",
        "a" * 42,
        "funnel\n",
        'x" onload="alert(1)',
        "fünnel",
    ],
)
def test_an_invalid_chart_id_is_refused(chart_id):
    with pytest.raises(ValueError):
        funnel_chart(chart_id, "Funnel", STEPS)
    with pytest.raises(ValueError):
        daily_chart(chart_id, "Daily", days(3))


@pytest.mark.parametrize("chart_id", ["a", "funnel", "daily-2024-12", "a" * 41])
def test_a_valid_chart_id_is_used_as_given(chart_id):
    assert_image_with_text_alternative(parse(funnel_chart(chart_id, "t", STEPS)), chart_id)
    assert_image_with_text_alternative(parse(daily_chart(chart_id, "t", days(3))), chart_id)


def test_a_negative_count_is_refused():
    with pytest.raises(ValueError):
        funnel_chart("funnel", "Funnel", [("a", 1), ("b", -1)])
    with pytest.raises(ValueError):
        daily_chart("daily", "Daily", [(datetime.date(2024, 12, 2), -1)])


@pytest.mark.parametrize(
    ("count", "dates"),
    [
        (1, ["2 Dec"]),
        (7, ["2 Dec", "4 Dec", "6 Dec", "8 Dec"]),
        (31, ["2 Dec", "10 Dec", "18 Dec", "1 Jan"]),
        (92, ["2 Dec", "25 Dec", "17 Jan", "9 Feb", "3 Mar"]),
    ],
)
def test_daily_chart_draws_one_column_per_day_on_a_baseline_with_a_few_dates(count, dates):
    data = days(count, lambda i: i % 9 + 1)
    root = parse(daily_chart("daily", "Links opened per day", data))
    assert_image_with_text_alternative(root, "daily")
    assert_csp_safe_and_readable(root)
    width = float(root.get("viewBox", "").split()[2])
    columns = bars(root)
    assert len(columns) == count
    lefts = [float(column.get("x", "")) for column in columns]
    assert lefts == sorted(lefts) and lefts[0] >= 0
    assert lefts[-1] + float(columns[-1].get("width", "")) <= width
    heights = [float(column.get("height", "")) for column in columns]
    largest = max(value for _, value in data)
    for (_, value), height in zip(data, heights, strict=True):
        assert height == pytest.approx(max(heights) * value / largest, abs=0.1)
    baselines = [line for line in root.iter(f"{SVG}line") if line.get("x1") == "0"]
    assert len(baselines) == 1
    assert float(baselines[0].get("x2", "")) == width
    baseline = float(baselines[0].get("y1", ""))
    for column in columns:
        bottom = float(column.get("y", "")) + float(column.get("height", ""))
        assert bottom == pytest.approx(baseline, abs=0.1)
    assert [text for text in texts(root) if not text.isdigit()] == dates


def test_daily_chart_labels_every_column_for_up_to_two_weeks_and_only_the_highest_after():
    root = parse(daily_chart("daily", "Daily", days(7, lambda i: [3, 40, 27, 14, 51, 38, 25][i])))
    counts = [text for text in texts(root) if text.isdigit()]
    assert counts == ["3", "40", "27", "14", "51", "38", "25"]
    root = parse(daily_chart("daily", "Daily", days(31, lambda i: 49 if i == 20 else i % 7)))
    counts = [text for text in texts(root) if text.isdigit()]
    assert counts == ["49"]


def test_daily_count_labels_sit_above_their_columns_and_inside_the_chart():
    root = parse(daily_chart("daily", "Daily", days(92, lambda i: 1_221 if i == 91 else i)))
    width = float(root.get("viewBox", "").split()[2])
    labels = [text for text in root.iter(f"{SVG}text") if text.text == "1,221"]
    assert len(labels) == 1
    x = float(labels[0].get("x", ""))
    assert len("1,221") * 14 * 0.6 / 2 <= x <= width - len("1,221") * 14 * 0.6 / 2
    top = float(bars(root)[-1].get("y", ""))
    assert float(labels[0].get("y", "")) < top


def test_daily_chart_with_every_day_zero_keeps_its_axis_and_divides_by_nothing():
    root = parse(daily_chart("daily", "Nothing yet", days(10, lambda i: 0)))
    assert [column.get("height") for column in bars(root)] == ["0"] * 10
    assert [line for line in root.iter(f"{SVG}line") if line.get("x1") == "0"]
    assert root[1].text is not None and "total 0, every day 0." in root[1].text
    root = parse(daily_chart("daily", "Nothing yet", days(92, lambda i: 0)))
    assert [column.get("height") for column in bars(root)] == ["0"] * 92
    root = parse(daily_chart("daily", "Nothing yet", []))
    assert texts(root) == ["No data"]


def test_daily_description_summarises_the_days_in_words():
    root = parse(daily_chart("daily", "Daily", days(3, lambda i: [5, 0, 7][i])))
    assert root[1].text == (
        "3 days from 2 Dec 2024 to 4 Dec 2024: total 12, highest 7 on 4 Dec 2024. "
        "2 Dec 5, 3 Dec 0, 4 Dec 7."
    )
    root = parse(daily_chart("daily", "Daily", days(1, lambda i: 4)))
    assert root[1].text == (
        "1 day from 2 Dec 2024 to 2 Dec 2024: total 4, highest 4 on 2 Dec 2024. 2 Dec 4."
    )
    root = parse(daily_chart("daily", "Daily", days(92, lambda i: i)))
    assert root[1].text == (
        "92 days from 2 Dec 2024 to 3 Mar 2025: total 4,186, highest 91 on 3 Mar 2025."
    )


def test_coordinates_have_at_most_one_decimal():
    for markup in (
        funnel_chart("funnel", "Funnel", [("a", 3), ("b", 1), ("c", 2)]),
        daily_chart("daily", "Daily", days(7, lambda i: i * 3 + 1)),
        daily_chart("daily", "Daily", days(92)),
    ):
        root = parse(markup)
        for element in root.iter(f"{SVG}*"):
            if element.tag == f"{SVG}svg":
                continue
            for name in ("x", "y", "width", "height", "x1", "x2", "y1", "y2"):
                value = element.get(name)
                if value is not None:
                    assert re.fullmatch(r"\d+(\.\d)?", value), (name, value)


def test_the_same_data_makes_the_same_markup():
    assert funnel_chart("funnel", "Funnel", STEPS) == funnel_chart("funnel", "Funnel", list(STEPS))
    assert daily_chart("daily", "Daily", days(31)) == daily_chart("daily", "Daily", days(31))
    assert daily_chart("daily", "Daily", days(7)) != daily_chart("daily", "Daily", days(8))
