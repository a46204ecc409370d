"""Small SVG charts, standard library only: horizontal bars and lines, stacked in panels.

A :class:`Figure` is a title, a legend and panels drawn one under the other, 720 px wide
(the documentation's column). The output is a pure function of the figure (no clock, no
randomness, fixed number formats), so that the same data always draws the same file.

Colours read on a white and on a dark page: the series use mid-tone hues, and text, axes
and grid switch with ``prefers-color-scheme``, which inside an ``<img>`` follows the page's
own colour scheme (Material for MkDocs sets it with its light/dark toggle).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

WIDTH = 720
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
STYLE = (
    "text{font-family:" + FONT + ";font-size:13px;fill:#2e323b}"
    ".title{font-size:16px;font-weight:600}.sub{fill:#5b6270}.small{font-size:12px}"
    ".axis{stroke:#7d8491;stroke-width:1}.grid{stroke:#d9dce1;stroke-width:1}"
    ".ref{stroke:#6b7280;stroke-width:1.5;stroke-dasharray:5 4}"
    ".halo{paint-order:stroke;stroke:#ffffff;stroke-width:3px;stroke-linejoin:round}"
    "@media (prefers-color-scheme: dark){text{fill:#e3e5ea}.sub{fill:#aab0bc}"
    ".grid{stroke:#3d424d}.axis{stroke:#8b92a0}.ref{stroke:#a3a9b5}.halo{stroke:#1e2129}}"
)
# Mid-tone hues with enough contrast on white and on Material's dark slate.
COLORS = {
    "ours": "#3b7ddd",
    "ours-light": "#8fb8f0",
    "segment": "#e08a1e",
    "segment-light": "#f2c27f",
    "raw": "#2fa37a",
    "ideal": "#8c93a0",
    "baseline": "#9a6fd6",
    "alert": "#d9534f",
    "alt": "#c9669b",
}


@dataclass(frozen=True)
class Series:
    """One series: its legend name and colour; ``dash`` draws a line dashed."""

    name: str
    color: str
    dash: bool = False


@dataclass(frozen=True)
class Bars:
    """A panel of horizontal bars: ``groups`` of ``(label, values)``, one value per series
    (``None``: no bar), on one linear axis from 0."""

    title: str
    series: Sequence[Series]
    groups: Sequence[tuple[str, Sequence[float | None]]]
    unit: str = ""
    digits: int = 1
    # Vertical dashed lines: (value, label).
    refs: Sequence[tuple[float, str]] = ()


@dataclass(frozen=True)
class Lines:
    """A panel of lines over time: ``points`` per series, ``(x, y)`` with ``None`` gaps."""

    title: str
    series: Sequence[Series]
    points: Sequence[Sequence[tuple[float, float | None]]]
    x_label: str = "seconds from the first call"
    y_label: str = ""
    height: int = 190
    # Only the points up to this x (None: all).
    x_max: float | None = None
    # Horizontal dashed lines: (value, label).
    refs: Sequence[tuple[float, str]] = ()


@dataclass(frozen=True)
class Figure:
    title: str
    subtitle: str
    panels: Sequence[Bars | Lines]
    legend: Sequence[Series] = field(default_factory=tuple)


def fmt(value: float, digits: int = 1) -> str:
    """A value as the page writes it: thousands separated, ``digits`` below 1,000."""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``top``."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    ticks = [0.0]
    while ticks[-1] < top - 1e-9:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _tick_label(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:g}"


def _text(x: float, y: float, content: str, cls: str = "", anchor: str = "start") -> str:
    klass = f' class="{cls}"' if cls else ""
    end = "" if anchor == "start" else f' text-anchor="{anchor}"'
    return f'<text x="{x:.1f}" y="{y:.1f}"{klass}{end}>{escape(content)}</text>'


def _attr(value: str) -> str:
    return escape(value, {'"': "&quot;"})


def _line(x1: float, y1: float, x2: float, y2: float, cls: str) -> str:
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" class="{cls}"/>'


class _Canvas:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.y = 0.0

    def add(self, *parts: str) -> None:
        self.parts.extend(parts)


def _legend(canvas: _Canvas, series: Sequence[Series], left: float = 16) -> None:
    x, y = left, canvas.y + 14
    for item in series:
        width = 14 + 6 + len(item.name) * 7.2 + 18
        if x + width > WIDTH - 10:
            x, y = left, y + 20
        if item.dash:
            canvas.add(
                f'<line x1="{x:.1f}" y1="{y - 4:.1f}" x2="{x + 14:.1f}" y2="{y - 4:.1f}" '
                f'stroke="{item.color}" stroke-width="2.5" stroke-dasharray="4 3"/>'
            )
        else:
            canvas.add(
                f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="14" height="12" rx="2" '
                f'fill="{item.color}"/>'
            )
        canvas.add(_text(x + 20, y, item.name))
        x += width
    canvas.y = y + 14


def _bars(canvas: _Canvas, panel: Bars) -> None:
    label_width, right_pad = 150.0, 86.0
    left, right = label_width, WIDTH - right_pad
    bar, gap, group_gap = 12.0, 2.0, 10.0
    canvas.add(_text(16, canvas.y + 16, panel.title, "sub"))
    canvas.y += 28
    values = [v for _, row in panel.groups for v in row if v is not None]
    top = max([*values, *(value for value, _ in panel.refs), 0.0])
    ticks = nice_ticks(top)
    scale = (right - left) / ticks[-1]
    plot_top = canvas.y
    heights = [sum(1 for v in row if v is not None) for _, row in panel.groups]
    plot_height = sum(n * (bar + gap) - gap for n in heights) + group_gap * (len(heights) + 1)
    for tick in ticks:
        x = left + tick * scale
        canvas.add(_line(x, plot_top, x, plot_top + plot_height, "grid"))
    y = plot_top + group_gap
    for (label, row), count in zip(panel.groups, heights):
        block = count * (bar + gap) - gap
        canvas.add(_text(left - 10, y + block / 2 + 4.5, label, "", "end"))
        for value, series in zip(row, panel.series):
            if value is None:
                continue
            length = max(value * scale, 0.0)
            canvas.add(
                f'<rect x="{left:.1f}" y="{y:.1f}" width="{length:.1f}" height="{bar:.0f}" '
                f'fill="{series.color}"><title>{escape(series.name)}: '
                f"{fmt(value, panel.digits)}{escape(panel.unit)}</title></rect>",
                _text(left + length + 5, y + bar - 2.5, fmt(value, panel.digits), "small halo"),
            )
            y += bar + gap
        y += group_gap - gap
    bottom = plot_top + plot_height
    canvas.add(
        _line(left, plot_top, left, bottom, "axis"), _line(left, bottom, right, bottom, "axis")
    )
    for tick in ticks:
        canvas.add(_text(left + tick * scale, bottom + 15, _tick_label(tick), "small", "middle"))
    for value, label in panel.refs:
        x = left + value * scale
        canvas.add(_line(x, plot_top - 4, x, bottom, "ref"))
        anchor = "end" if x > (left + right) / 2 else "start"
        canvas.add(
            _text(x + (-4 if anchor == "end" else 4), plot_top + 8, label, "small halo", anchor)
        )
    if panel.unit:
        canvas.add(_text(right, bottom + 30, panel.unit.strip(), "small sub", "end"))
    canvas.y = bottom + 40


def _lines(canvas: _Canvas, panel: Lines) -> None:
    left, right = 56.0, WIDTH - 20.0
    canvas.add(_text(16, canvas.y + 16, panel.title, "sub"))
    canvas.y += 30
    top_y, bottom = canvas.y, canvas.y + panel.height
    limit = panel.x_max if panel.x_max is not None else math.inf
    shown = [[(x, y) for x, y in series if x <= limit + 1e-9] for series in panel.points]
    xs = [x for series in shown for x, _ in series]
    ys = [y for series in shown for _, y in series if y is not None]
    x_ticks = nice_ticks(max(xs, default=1.0), 8)
    y_ticks = nice_ticks(max([*ys, *(value for value, _ in panel.refs), 0.0]), 4)
    x_scale = (right - left) / x_ticks[-1]
    y_scale = panel.height / y_ticks[-1]

    def point(x: float, y: float) -> str:
        return f"{left + x * x_scale:.1f},{bottom - y * y_scale:.1f}"

    for tick in y_ticks:
        y = bottom - tick * y_scale
        canvas.add(
            _line(left, y, right, y, "grid"),
            _text(left - 8, y + 4, _tick_label(tick), "small", "end"),
        )
    for tick in x_ticks:
        x = left + tick * x_scale
        canvas.add(_line(x, bottom, x, bottom + 4, "axis"))
        canvas.add(_text(x, bottom + 17, _tick_label(tick), "small", "middle"))
    for value, label in panel.refs:
        y = bottom - value * y_scale
        canvas.add(
            _line(left, y, right, y, "ref"), _text(right - 4, y - 5, label, "small halo", "end")
        )
    for series, points in zip(panel.series, shown):
        runs: list[list[str]] = [[]]
        for x, y in points:
            if y is None:
                if runs[-1]:
                    runs.append([])
                continue
            runs[-1].append(point(x, y))
        dash = ' stroke-dasharray="5 4"' if series.dash else ""
        width = 2 if len(points) <= 200 else 1.5
        for run in runs:
            if len(run) == 1:
                x, y = run[0].split(",")
                canvas.add(f'<circle cx="{x}" cy="{y}" r="2" fill="{series.color}"/>')
            elif run:
                canvas.add(
                    f'<polyline points="{" ".join(run)}" fill="none" stroke="{series.color}" '
                    f'stroke-width="{width}" stroke-linejoin="round"{dash}/>'
                )
    canvas.add(_line(left, top_y, left, bottom, "axis"), _line(left, bottom, right, bottom, "axis"))
    canvas.add(_text(right, bottom + 33, panel.x_label, "small sub", "end"))
    if panel.y_label:
        canvas.add(_text(left, top_y - 6, panel.y_label, "small sub"))
    canvas.y = bottom + 42


def render(figure: Figure) -> str:
    """The figure as a standalone SVG document."""
    canvas = _Canvas()
    canvas.add(_text(16, 24, figure.title, "title"))
    canvas.y = 30
    if figure.subtitle:
        canvas.add(_text(16, 48, figure.subtitle, "sub small"))
        canvas.y = 54
    if figure.legend:
        canvas.y += 4
        _legend(canvas, figure.legend)
    for panel in figure.panels:
        if isinstance(panel, Bars):
            _bars(canvas, panel)
        else:
            _lines(canvas, panel)
    height = math.ceil(canvas.y)
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{_attr(figure.title)}">'
        f"<title>{escape(figure.title)}</title><style>{STYLE}</style>"
    )
    return head + "\n" + "\n".join(canvas.parts) + "\n</svg>\n"
