"""Charts as inline SVG: numeric axes, one line per series, one panel per quantity.

Gradio's plots infer each column's type from the data they are handed (an empty or mixed frame
makes every value its own category) and draw into a canvas a test cannot read. These charts are
plain SVG built from numbers: every line is a `<path class="rr-line" data-series=…>`, every bar a
`<rect class="rr-bar" data-series=…>`, every tick label a `<text class="rr-tick">` holding a
number, so a browser test can count what was drawn. Quantities of different scale (loss,
learning rate, rewards) each get their own panel and y axis. All text is escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#ca8a04")
WIDTH, HEIGHT = 420, 220
LEFT, RIGHT, TOP, BOTTOM = 62, 12, 26, 34

Points = Sequence[tuple[float, float]]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2, 2.5 or 5 times a power of ten apart)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high == low:
        pad = abs(high) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 12))
    return ticks


def tick_label(value: float) -> str:
    """A short numeric label: 0.00015 → 0.00015, 2.5e-05 → 2.5e-05, 1200 → 1200, 0.25 → 0.25."""
    if value == 0:
        return "0"
    return f"{value:.3g}" if abs(value) < 1e-3 or abs(value) >= 1e5 else f"{value:.4g}"


def _scale(value: float, low: float, high: float, start: float, end: float) -> float:
    return start + (value - low) / ((high - low) or 1.0) * (end - start)


def _axes(xticks: list[float] | None, yticks: list[float], title: str, x_label: str, width: int = WIDTH) -> list[str]:
    plot_w, plot_h = width - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = [
        f'<text x="{LEFT}" y="16" class="rr-chart-title" font-size="13" font-weight="600">{html.escape(title)}</text>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#9ca3af"/>',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" stroke="#9ca3af"/>',
    ]
    for value in yticks:
        y = _scale(value, yticks[0], yticks[-1], TOP + plot_h, TOP)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#eef0f3"/>')
        parts.append(
            f'<text class="rr-tick rr-tick-y" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" '
            f'font-size="11">{tick_label(value)}</text>'
        )
    for value in xticks or []:
        x = _scale(value, xticks[0], xticks[-1], LEFT, LEFT + plot_w)
        parts.append(
            f'<text class="rr-tick rr-tick-x" x="{x:.1f}" y="{TOP + plot_h + 15}" text-anchor="middle" '
            f'font-size="11">{tick_label(value)}</text>'
        )
    if x_label:
        parts.append(
            f'<text x="{LEFT + plot_w / 2:.0f}" y="{HEIGHT - 3}" text-anchor="middle" font-size="11" '
            f'fill="#6b7280">{html.escape(x_label)}</text>'
        )
    return parts


def _legend(names: Sequence[str], colours: Mapping[str, str] | None = None) -> str:
    items = "".join(
        f'<span style="margin-right:12px;white-space:nowrap"><span style="display:inline-block;width:12px;'
        f'height:3px;vertical-align:middle;background:{(colours or {}).get(n, PALETTE[i % len(PALETTE)])}"></span> '
        f"{html.escape(n)}</span>"
        for i, n in enumerate(names)
    )
    return f'<div class="rr-legend" style="font-size:12px">{items}</div>'


def _svg(parts: list[str], title: str, width: int = WIDTH) -> str:
    return (
        f'<svg class="rr-chart" role="img" aria-label="{html.escape(title)}" viewBox="0 0 {width} {HEIGHT}" '
        f'width="{width}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'
    )


def line_panel(
    title: str, series: Mapping[str, Points], x_label: str = "step", colours: Mapping[str, str] | None = None
) -> str:
    """One panel: a numeric x and y axis and one line per series (a lone point is a dot)."""
    points = [point for line in series.values() for point in line]
    if not points:
        return ""
    xs, ys = [x for x, _ in points], [y for _, y in points]
    xticks, yticks = nice_ticks(min(xs), max(xs)), nice_ticks(min(ys), max(ys))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = _axes(xticks, yticks, title, x_label)
    for index, (name, line) in enumerate(series.items()):
        colour = (colours or {}).get(name, PALETTE[index % len(PALETTE)])
        coords = [
            (_scale(x, xticks[0], xticks[-1], LEFT, LEFT + plot_w), _scale(y, yticks[0], yticks[-1], TOP + plot_h, TOP))
            for x, y in sorted(line)
        ]
        path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(coords))
        parts.append(
            f'<path class="rr-line" data-series="{html.escape(name)}" data-points="{len(coords)}" d="{path}" '
            f'fill="none" stroke="{colour}" stroke-width="2"/>'
        )
        if len(coords) == 1:
            x, y = coords[0]
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>')
    return _svg(parts, title)


def line_panels(panels: Mapping[str, Mapping[str, Points]], x_label: str = "step") -> str:
    """Several line panels side by side (wrapping), one per quantity; empty panels are left out."""
    names = list(dict.fromkeys(name for series in panels.values() for name in series))
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}
    drawn = [line_panel(title, series, x_label, colours) for title, series in panels.items()]
    drawn = [svg for svg in drawn if svg]
    if not drawn:
        return '<div class="rr-charts rr-charts-empty" style="color:#6b7280">No curves yet.</div>'
    shared = [name for series in panels.values() if len(series) > 1 for name in series]  # panels that need a key
    return (
        '<div class="rr-charts" style="display:flex;flex-wrap:wrap;gap:12px">'
        + "".join(f"<div>{svg}</div>" for svg in drawn)
        + f"</div>{_legend(shared, colours) if shared else ''}"
    )


def bar_chart(title: str, categories: Sequence[str], series: Mapping[str, Sequence[float | None]]) -> str:
    """Grouped bars: one group per category, one bar per series (None: no bar), numeric y axis."""
    values = [v for column in series.values() for v in column if v is not None]
    if not categories or not values:
        return f'<div class="rr-charts rr-charts-empty" style="color:#6b7280">{html.escape(title)}: no runs yet.</div>'
    yticks = nice_ticks(min(0.0, min(values)), max(values))
    width = WIDTH * 2
    plot_w, plot_h = width - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = _axes(None, yticks, title, "", width)
    group_w = plot_w / len(categories)
    bar_w = min(group_w * 0.8 / max(len(series), 1), 48.0)
    inset = (group_w - bar_w * len(series)) / 2  # the group's bars centred under its label
    for c, category in enumerate(categories):
        for s, (name, column) in enumerate(series.items()):
            value = column[c]
            if value is None:
                continue
            top = _scale(value, yticks[0], yticks[-1], TOP + plot_h, TOP)
            base = _scale(max(yticks[0], 0.0), yticks[0], yticks[-1], TOP + plot_h, TOP)
            x = LEFT + c * group_w + inset + s * bar_w
            parts.append(
                f'<rect class="rr-bar" data-series="{html.escape(name)}" data-category="{html.escape(category)}" '
                f'data-value="{value:g}" x="{x:.1f}" y="{min(top, base):.1f}" width="{bar_w:.1f}" '
                f'height="{abs(base - top):.1f}" fill="{PALETTE[s % len(PALETTE)]}">'
                f"<title>{html.escape(category)} · {html.escape(name)}: {value:g}</title></rect>"
            )
        label = category if len(category) <= 24 else category[:23] + "…"
        parts.append(
            f'<text class="rr-category" x="{LEFT + (c + 0.5) * group_w:.1f}" y="{TOP + plot_h + 15}" '
            f'text-anchor="middle" font-size="11">{html.escape(label)}</text>'
        )
    return f'<div class="rr-charts">{_svg(parts, title, width)}</div>{_legend(list(series))}'


Labelled = Sequence[tuple[float, float, str]]


def pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both axes (lower x, higher y), by x: the frontier."""
    front: list[tuple[float, float]] = []
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or y > front[-1][1]:
            front.append((x, y))
    return front


def scatter_chart(
    title: str, series: Mapping[str, Labelled], x_label: str, y_label: str = "", frontier: bool = True
) -> str:
    """One dot per (x, y, label), coloured by series, numeric axes; with `frontier` the Pareto
    front over every series (lowest x for the highest y) as one `rr-frontier` line. Each dot is a
    `<circle class="rr-point" data-series data-x data-y>` holding its label as a tooltip."""
    points = [(x, y) for dots in series.values() for x, y, _ in dots]
    if not points:
        return f'<div class="rr-charts rr-charts-empty" style="color:#6b7280">{html.escape(title)}: no runs yet.</div>'
    xs, ys = [x for x, _ in points], [y for _, y in points]
    xticks, yticks = nice_ticks(min(0.0, min(xs)), max(xs)), nice_ticks(min(ys), max(ys))
    width = WIDTH * 2
    plot_w, plot_h = width - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def at(x: float, y: float) -> tuple[float, float]:
        return (
            _scale(x, xticks[0], xticks[-1], LEFT, LEFT + plot_w),
            _scale(y, yticks[0], yticks[-1], TOP + plot_h, TOP),
        )

    parts = _axes(xticks, yticks, title, x_label, width)
    if y_label:
        parts.append(
            f'<text x="12" y="{TOP + plot_h / 2:.0f}" font-size="11" fill="#6b7280" text-anchor="middle" '
            f'transform="rotate(-90 12 {TOP + plot_h / 2:.0f})">{html.escape(y_label)}</text>'
        )
    if frontier and len(points) > 1:
        front = [at(x, y) for x, y in pareto_front(points)]
        path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(front))
        parts.append(
            f'<path class="rr-frontier" data-points="{len(front)}" d="{path}" fill="none" stroke="#9ca3af" '
            'stroke-width="1.5" stroke-dasharray="4 3"/>'
        )
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(series)}
    for name, dots in series.items():
        for x, y, label in dots:
            cx, cy = at(x, y)
            parts.append(
                f'<circle class="rr-point" data-series="{html.escape(name)}" data-x="{x:g}" data-y="{y:g}" '
                f'cx="{cx:.1f}" cy="{cy:.1f}" r="4.5" fill="{colours[name]}" fill-opacity="0.85">'
                f"<title>{html.escape(label)} · {html.escape(name)}: {x:g}, {y:g}</title></circle>"
            )
    return f'<div class="rr-charts">{_svg(parts, title, width)}</div>{_legend(list(series), colours)}'
