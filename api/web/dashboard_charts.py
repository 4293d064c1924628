"""The team dashboard's charts as inline SVG, drawn on the server (no script, no chart library): the
rates over month ends and the tier distribution.

Every marker carries its data (``data-series``, ``data-month``, ``data-rate``…), as on the patient's
charts (:mod:`api.web.charts`, whose frame margins these share). Text is escaped here, so the result
is safe to insert as markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from api.web.charts import BOTTOM, LEFT, TOP, _e
from api.web.i18n import Translator


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    values: list[float | None]  # rates 0..1, one per moment (None: no denominator)


def trend_chart(
    name: str, label: str, moments: Sequence[datetime], series: Sequence[Series], t: Translator, tz: tzinfo
) -> str:
    """Rates over month ends (0–100 %), one line and one marker per month and series (the legend is
    the page's: :func:`legend`)."""
    width, height = 720, 250
    right = 16
    plot_right = width - right
    bottom = height - BOTTOM

    def x(i: int) -> float:
        return round(LEFT + (i / max(len(moments) - 1, 1)) * (plot_right - LEFT), 1)

    def y(rate: float) -> float:
        return round(bottom - rate * (bottom - TOP), 1)

    count = sum(1 for s in series for v in s.values if v is not None)
    parts = [
        f'<svg class="chart chart-{name}" data-chart="{name}" data-points="{count}" '
        f'data-months="{len(moments)}" '
        f'role="img" aria-label="{_e(label)}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{_e(label)}</title>"
    ]
    for tick in range(0, 101, 20):
        yy = y(tick / 100)
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{yy}" x2="{plot_right}" y2="{yy}"/>')
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{yy + 4}" text-anchor="end">{tick}%</text>')
    for i, moment in enumerate(moments):
        local = moment.astimezone(tz)
        label_text = t.month(local.month) if local.month != 1 else str(local.year)
        parts.append(
            f'<text class="tick" x="{x(i)}" y="{bottom + 16}" text-anchor="middle">{_e(label_text)}</text>'
        )
    parts.append(
        f'<rect class="frame" x="{LEFT}" y="{TOP}" width="{plot_right - LEFT}" height="{bottom - TOP}"/>'
    )
    for index, s in enumerate(series):
        css = f"series-{index}"
        path: list[str] = []
        markers: list[str] = []
        for i, value in enumerate(s.values):
            if value is None:
                continue
            path.append(f"{'M' if not path else 'L'}{x(i)},{y(value)}")
            title = f"{s.label} {moments[i].astimezone(tz):%Y-%m-%d}: {value * 100:.1f}%"
            markers.append(
                f'<circle class="point trend {css}" data-series="{_e(s.key)}" '
                f'data-month="{moments[i].astimezone(tz):%Y-%m}" data-rate="{value:.4f}" '
                f'cx="{x(i)}" cy="{y(value)}" r="3.4"><title>{_e(title)}</title></circle>'
            )
        if path:
            parts.append(f'<path class="trend-line {css}" d="{" ".join(path)}"/>')
        parts.extend(markers)
    parts.append("</svg>")
    return "".join(parts)


def stacked_bar(name: str, parts_in: Sequence[tuple[str, str, int]], t: Translator) -> str:
    """One horizontal bar split by ``(key, label, count)``."""
    total = sum(c for _, _, c in parts_in)
    width, height = 720, 44
    parts = [
        f'<svg class="chart chart-{name}" data-chart="{name}" data-total="{total}" role="img" '
        f'aria-label="{_e(name)}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    x = 0.0
    for key, label, count in parts_in:
        if total == 0 or count == 0:
            continue
        w = round(count / total * width, 1)
        parts.append(
            f'<rect class="tier-span tier-{_e(key)}" data-tier="{_e(key)}" data-count="{count}" '
            f'x="{x}" y="4" '
            f'width="{w}" height="30" rx="2"><title>{_e(label)}: {count}</title></rect>'
        )
        if w > 70:
            parts.append(
                f'<text class="tier-label" x="{x + 8}" y="24">'
                f"{_e(label)} {count} ({count / total:.0%})</text>"
            )
        x += w
    parts.append("</svg>")
    return "".join(parts)
