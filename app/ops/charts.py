"""The operators' funnel page's two charts, drawn on the server as inline SVG.

Why SVG strings built here: the pages are server-rendered and run no JavaScript of their own
for this, and the Content-Security-Policy (`style-src 'self'`, no inline styles) rules out
chart libraries and `style` attributes, so the markup uses only SVG presentation attributes.
The same numbers are in a table on the page for screen readers and keyboard users, so each
chart is a single image (`role="img"`) whose text alternative is its `<title>` and `<desc>`.

Every label comes from user-controlled data (campaign names from marketing links): every text
is escaped with `markupsafe.escape` (even one passed in as `Markup`), every other value goes
through `Markup.format`, which escapes its arguments, and the only markup not escaped is this
module's own literals.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Iterable, Sequence

from markupsafe import Markup, escape

__all__ = ["daily_chart", "funnel_chart"]

_CHART_ID = re.compile(r"[a-z][a-z0-9-]{0,40}")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")

# Colours on white: text 19.6:1; bars 8.6:1 (WCAG 1.4.11 asks for 3:1).
_TEXT = "#0b0c0c"
_BAR = "#1d4f91"
_TRACK = "#f3f2f1"
_FONT = "system-ui, sans-serif"

# Both charts are 320 units wide: in a 290 CSS px column (a 320 px wide page less its
# margins) one unit is about 0.9 px, so 16-unit labels are about 14.5 px and 14-unit ones
# about 12.7 px; a 40rem column scales them up to twice that.
_WIDTH = 320
_LABEL_SIZE = 16
_SMALL_SIZE = 14
# A generous average advance of a system-ui glyph, in ems, to keep text from colliding.
_EM_ADVANCE = 0.6

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# Funnel rows: label line, then the bar below it.
_ROW_LABEL = 17  # baseline of the label, from the top of the row
_ROW_BAR_TOP = 24
_ROW_BAR_HEIGHT = 20
_ROW_GAP = 14

# Daily chart: room for the counts above the columns, the plot, the dates below it.
_DAILY_TOP = 24
_DAILY_BASELINE = 150
_DAILY_HEIGHT = 178
_DAILY_MAX_LABELLED = 14
_DAILY_MAX_BAR = 40
_DAILY_DATE_LABELS = 5
_DAILY_DATE_GAP = 8


def funnel_chart(chart_id: str, title: str, steps: Sequence[tuple[str, int]]) -> Markup:
    """Horizontal bars, one per step in order, each as long as its count relative to the
    largest; above each bar its label and its count, and the percentage of the count of
    the nearest step before it that anyone reached ("80 · 67 %"): a step one channel
    skips (the API has no sign-in) does not make every later one "–"."""
    _check_id(chart_id)
    counts = [_check_count(count) for _, count in steps]
    if not steps:
        return _empty(chart_id, title, "chart chart--funnel")
    largest = max(counts)
    row = _ROW_BAR_TOP + _ROW_BAR_HEIGHT + _ROW_GAP
    height = len(steps) * row - _ROW_GAP + 2
    parts: list[Markup] = []
    described: list[str] = []
    previous: int | None = None
    previous_label = ""
    for index, (raw, count) in enumerate(steps):
        label = _clean(raw)
        top = index * row
        value = _count(count)
        spoken = f"{label} {value}"
        if previous is not None:
            share = percent(count, previous)
            value = f"{value} · {share}"
            if previous:
                spoken = f"{spoken} ({share} of {previous_label})"
        described.append(spoken)
        room = _WIDTH - _text_width(value, _LABEL_SIZE) - 10
        parts.append(_text(0, top + _ROW_LABEL, _fit(label, room, _LABEL_SIZE)))
        parts.append(_text(_WIDTH, top + _ROW_LABEL, value, anchor="end", bold=True))
        bar_top = top + _ROW_BAR_TOP
        parts.append(_rect(0, bar_top, _WIDTH, _ROW_BAR_HEIGHT, _TRACK))
        length = _WIDTH * count / largest if largest else 0.0
        parts.append(_rect(0, bar_top, length, _ROW_BAR_HEIGHT, _BAR, bar=True))
        if count:
            previous, previous_label = count, label
    desc = ", ".join(described) + "."
    return _svg(chart_id, title, desc, height, "chart chart--funnel", parts)


def daily_chart(chart_id: str, title: str, days: Sequence[tuple[datetime.date, int]]) -> Markup:
    """Columns, one per day in order, on a baseline; the count above each column when there
    are few enough days for the counts to fit (otherwise only above the highest), and a few
    dates ("2 Dec") below: the first, the last and some evenly spaced in between."""
    _check_id(chart_id)
    counts = [_check_count(count) for _, count in days]
    if not days:
        return _empty(chart_id, title, "chart chart--daily")
    n = len(days)
    largest = max(counts)
    slot = _WIDTH / n
    bar_width = min(slot * 0.75, _DAILY_MAX_BAR)
    plot_height = _DAILY_BASELINE - _DAILY_TOP
    labels = [_count(count) for count in counts]
    label_all = n <= _DAILY_MAX_LABELLED and all(
        _text_width(label, _SMALL_SIZE) <= slot - 2 for label in labels
    )
    highest = counts.index(largest)
    parts: list[Markup] = []
    for index, count in enumerate(counts):
        centre = slot * (index + 0.5)
        bar_height = plot_height * count / largest if largest else 0.0
        top = _DAILY_BASELINE - bar_height
        parts.append(_rect(centre - bar_width / 2, top, bar_width, bar_height, _BAR, bar=True))
        if label_all or index == highest:
            x = _clamp(centre, _text_width(labels[index], _SMALL_SIZE))
            parts.append(
                _text(x, top - 4, labels[index], anchor="middle", size=_SMALL_SIZE, bold=True)
            )
    # Drawn after the columns so that it shows even where they have no height.
    parts.append(
        Markup('<line x1="0" y1="{y}" x2="{x2}" y2="{y}" stroke="{c}" stroke-width="1.5"/>').format(
            y=_num(_DAILY_BASELINE), x2=_num(_WIDTH), c=_TEXT
        )
    )
    dates = [_short_date(day) for day, _ in days]
    for index in _date_indices(dates, slot):
        centre = slot * (index + 0.5)
        label = dates[index]
        parts.append(
            Markup('<line x1="{x}" y1="{y1}" x2="{x}" y2="{y2}" stroke="{c}"/>').format(
                x=_num(centre), y1=_num(_DAILY_BASELINE), y2=_num(_DAILY_BASELINE + 5), c=_TEXT
            )
        )
        x = _clamp(centre, _text_width(label, _SMALL_SIZE))
        parts.append(_text(x, _DAILY_HEIGHT - 4, label, anchor="middle", size=_SMALL_SIZE))
    desc = _daily_desc(days, counts, highest)
    return _svg(chart_id, title, desc, _DAILY_HEIGHT, "chart chart--daily", parts)


def _daily_desc(
    days: Sequence[tuple[datetime.date, int]], counts: Sequence[int], highest: int
) -> str:
    first, last = days[0][0], days[-1][0]
    span = "1 day" if len(days) == 1 else f"{len(days)} days"
    summary = f"{span} from {_long_date(first)} to {_long_date(last)}: total {_count(sum(counts))}"
    if max(counts) == 0:
        summary += ", every day 0."
    else:
        summary += f", highest {_count(counts[highest])} on {_long_date(days[highest][0])}."
    if len(days) <= _DAILY_MAX_LABELLED:
        summary += " " + ", ".join(f"{_short_date(d)} {_count(c)}" for d, c in days) + "."
    return summary


def _date_indices(labels: Sequence[str], slot: float) -> list[int]:
    """The first day, the last, and up to three evenly spaced between them, leaving out any
    whose label would come closer than `_DAILY_DATE_GAP` to its neighbours'."""
    n = len(labels)
    if n == 1:
        return [0]

    def span(index: int) -> tuple[float, float]:
        width = _text_width(labels[index], _SMALL_SIZE)
        x = _clamp(slot * (index + 0.5), width)
        return x - width / 2, x + width / 2

    step = math.ceil((n - 1) / (_DAILY_DATE_LABELS - 1))
    chosen = [0]
    last = span(n - 1)
    for index in range(step, n - 1, step):
        left, right = span(index)
        if left >= span(chosen[-1])[1] + _DAILY_DATE_GAP and right + _DAILY_DATE_GAP <= last[0]:
            chosen.append(index)
    return [*chosen, n - 1]


def _svg(
    chart_id: str, title: str, desc: str, height: float, classes: str, parts: Iterable[Markup]
) -> Markup:
    head = Markup(
        '<svg xmlns="http://www.w3.org/2000/svg" class="{classes}" width="100%"'
        ' viewBox="0 0 {w} {h}" preserveAspectRatio="xMinYMin meet" role="img"'
        ' aria-labelledby="{id}-title {id}-desc" font-family="{font}" font-size="{size}"'
        ' fill="{text}">'
        '<title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>'
    ).format(
        classes=classes,
        w=_num(_WIDTH),
        h=_num(height),
        id=chart_id,
        font=_FONT,
        size=_LABEL_SIZE,
        text=_TEXT,
        title=_escape(_clean(title)),
        desc=_escape(desc),
    )
    return head + Markup("").join(parts) + Markup("</svg>")


def _empty(chart_id: str, title: str, classes: str) -> Markup:
    parts = [_text(0, _LABEL_SIZE + 2, "No data")]
    return _svg(chart_id, title, "No data.", _LABEL_SIZE + 8, classes, parts)


def _text(
    x: float,
    y: float,
    content: str,
    *,
    anchor: str = "start",
    size: int = _LABEL_SIZE,
    bold: bool = False,
) -> Markup:
    extra = Markup("")
    if anchor != "start":
        extra += Markup(' text-anchor="{}"').format(anchor)
    if size != _LABEL_SIZE:
        extra += Markup(' font-size="{}"').format(size)
    if bold:
        extra += Markup(' font-weight="700"')
    return Markup('<text x="{x}" y="{y}"{extra}>{content}</text>').format(
        x=_num(x), y=_num(y), extra=extra, content=_escape(content)
    )


def _rect(
    x: float, y: float, width: float, height: float, fill: str, *, bar: bool = False
) -> Markup:
    klass = Markup(' class="chart__bar"') if bar else Markup("")
    return Markup('<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="{f}"{k}/>').format(
        x=_num(x), y=_num(y), w=_num(width), h=_num(height), f=fill, k=klass
    )


def _clean(text: str) -> str:
    """`text` as a plain `str`, with what XML cannot carry (control characters, lone
    surrogates) and what SVG text would only collapse (tabs, line breaks) as spaces."""
    return _UNSAFE.sub(" ", str(text))


def _escape(text: str) -> Markup:
    """`text` escaped, even when it is already `Markup`: no caller's string is trusted."""
    return escape(str(text))


def _check_id(chart_id: str) -> None:
    if not isinstance(chart_id, str) or not _CHART_ID.fullmatch(chart_id):
        raise ValueError(f"chart_id must match ^[a-z][a-z0-9-]{{0,40}}$, not {chart_id!r}")


def _check_count(count: int) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"a count must be a whole number of at least 0, not {count!r}")
    return count


def _num(value: float) -> str:
    """A coordinate rounded to one decimal, without a trailing ".0" or a "-0"."""
    text = f"{round(value, 1):.1f}".removesuffix(".0")
    return "0" if text == "-0" else text


def _count(count: int) -> str:
    return f"{count:,}"


def percent(count: int, previous: int) -> str:
    """`count` as a share of `previous`: "67 %", "<1 %", or "–" when `previous` is 0."""
    if previous == 0:
        return "–"
    # Rounded half up, in whole numbers, with no float in between.
    whole = (200 * count + previous) // (2 * previous)
    if whole == 0 and count > 0:
        return "<1 %"
    return f"{whole} %"


def _text_width(text: str, size: int) -> float:
    return len(text) * size * _EM_ADVANCE


def _fit(text: str, room: float, size: int) -> str:
    """The text, cut short with an ellipsis when it would not fit in `room` units (the full
    label is in the chart's description and in the table)."""
    most = max(1, int(room / (size * _EM_ADVANCE)))
    return text if len(text) <= most else text[: most - 1].rstrip() + "…"


def _clamp(centre: float, width: float) -> float:
    """The x of a middle-anchored text as close to `centre` as keeps it inside the chart."""
    half = width / 2
    return min(max(centre, half), _WIDTH - half)


def _short_date(day: datetime.date) -> str:
    return f"{day.day} {_MONTHS[day.month - 1]}"


def _long_date(day: datetime.date) -> str:
    return f"{_short_date(day)} {day.year}"
