"""Charts as inline SVG, drawn on the server (no script, no chart library).

Every reading is one marker carrying its data (``data-at``, ``data-source``, ``data-value``…), and
every chart says how many readings it shows (``data-points``), so a test or a reviewer can count
them. Bands and target lines come from :mod:`api.web.chart_values` (the pack's values); this module
only places them (the dashboard's charts: :mod:`api.web.dashboard_charts`). Text is escaped here,
so the result is safe to insert as markup.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from markupsafe import escape

from api.web.chart_values import BpPoint, BpTarget, GlucoseBands, LipidTarget, TierSpan, ValuePoint
from api.web.formats import num
from api.web.i18n import Translator
from pathway.clinical.vocabulary import is_self_measured

WIDTH, HEIGHT = 720, 230
LEFT, RIGHT, TOP, BOTTOM = 46, 122, 12, 26


def _e(text: object) -> str:
    return str(escape(str(text)))


@dataclass(frozen=True)
class Frame:
    since: datetime
    until: datetime
    low: float
    high: float
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def plot_right(self) -> float:
        return self.width - RIGHT

    @property
    def plot_bottom(self) -> float:
        return self.height - BOTTOM

    def x(self, at: datetime) -> float:
        span = (self.until - self.since).total_seconds() or 1.0
        share = (at - self.since).total_seconds() / span
        return round(LEFT + share * (self.plot_right - LEFT), 1)

    def y(self, value: float) -> float:
        share = (value - self.low) / ((self.high - self.low) or 1.0)
        share = min(max(share, 0.0), 1.0)
        return round(self.plot_bottom - share * (self.plot_bottom - TOP), 1)


def nice_range(values: Sequence[float], pad: float, floor: float | None = None) -> tuple[float, float, float]:
    """(low, high, step) covering ``values`` with ``pad`` either side, on a round step."""
    low, high = min(values) - pad, max(values) + pad
    if floor is not None:
        low = max(low, floor)
    raw = (high - low) / 5 or 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return math.floor(low / step) * step, math.ceil(high / step) * step, step


def _svg_open(name: str, label: str, points: int, frame: Frame) -> str:
    return (
        f'<svg class="chart chart-{name}" data-chart="{name}" data-points="{points}" role="img" '
        f'aria-label="{_e(label)}" viewBox="0 0 {frame.width} {frame.height}" '
        f'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg"><title>{_e(label)}</title>'
    )


def _axes(frame: Frame, step: float, t: Translator, tz: tzinfo, places: int) -> str:
    parts = []
    value = frame.low
    while value <= frame.high + step / 1000:
        y = frame.y(value)
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y}" x2="{frame.plot_right}" y2="{y}"/>')
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4}" text-anchor="end">{num(value, places)}</text>'
        )
        value += step
    for month_start in _month_starts(frame.since, frame.until, tz):
        x = frame.x(month_start)
        parts.append(f'<line class="grid grid-x" x1="{x}" y1="{TOP}" x2="{x}" y2="{frame.plot_bottom}"/>')
        local = month_start.astimezone(tz)
        label = t.month(local.month) if local.month != 1 else f"{local.year}"
        parts.append(f'<text class="tick" x="{x + 3}" y="{frame.plot_bottom + 16}">{_e(label)}</text>')
    parts.append(
        f'<rect class="frame" x="{LEFT}" y="{TOP}" width="{frame.plot_right - LEFT}" '
        f'height="{frame.plot_bottom - TOP}"/>'
    )
    return "".join(parts)


def _month_starts(since: datetime, until: datetime, tz: tzinfo) -> list[datetime]:
    local = since.astimezone(tz)
    first = date(local.year, local.month, 1)
    starts = []
    while True:
        first = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        at = datetime(first.year, first.month, 1, tzinfo=tz)
        if at > until:
            break
        starts.append(at)
    if len(starts) > 12:  # keep the axis legible: every other month
        starts = starts[::2]
    return starts


def _band(frame: Frame, low: float, high: float, css: str, label: str) -> str:
    top, bottom = frame.y(high), frame.y(low)
    if bottom - top <= 0:
        return ""
    return (
        f'<rect class="band {css}" x="{LEFT}" y="{top}" width="{frame.plot_right - LEFT}" '
        f'height="{round(bottom - top, 1)}"><title>{_e(label)}</title></rect>'
    )


def _hline(frame: Frame, value: float, css: str, label: str, inside: bool = False) -> str:
    """A target line, labelled right of the plot (or ``inside`` it, at its left, above the line)."""
    y = frame.y(value)
    x, dy = (LEFT + 4, -3) if inside else (frame.plot_right + 4, 4)
    return (
        f'<line class="target {css}" x1="{LEFT}" y1="{y}" x2="{frame.plot_right}" y2="{y}"/>'
        f'<text class="target-label {css}" x="{x}" y="{y + dy}">{_e(label)}</text>'
    )


def _empty(frame: Frame, t: Translator) -> str:
    x, y = (LEFT + frame.plot_right) / 2, (TOP + frame.plot_bottom) / 2
    return f'<text class="empty" x="{x}" y="{y}" text-anchor="middle">{_e(t("chart.empty"))}</text>'


def _when(at: datetime, tz: tzinfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def bp_chart(
    points: Sequence[BpPoint], target: BpTarget, since: datetime, until: datetime, t: Translator, tz: tzinfo
) -> str:
    """Systolic and diastolic of every BP reading; clinic filled, home/wearable hollow; target bands."""
    values = [v for p in points for v in (p.systolic, p.diastolic)]
    values += [v for v in (target.systolic, target.diastolic) if v is not None]
    low, high, step = nice_range(values or [60.0, 180.0], 8, floor=0)
    frame = Frame(since, until, low, high)
    parts = [_svg_open("bp", t("chart.bp"), len(points), frame), _axes(frame, step, t, tz, 0)]
    if target.systolic is not None and target.diastolic is not None:
        sbp, dbp = target.systolic, target.diastolic
        label = f"{t('chart.target')} <{num(sbp, 0)}/{num(dbp, 0)}"
        parts.append(_band(frame, dbp, sbp, "band-target-sbp", f"{t('chart.sbp')} {label}"))
        parts.append(_band(frame, frame.low, dbp, "band-target-dbp", f"{t('chart.dbp')} {label}"))
        parts.append(_hline(frame, sbp, "line-sbp", f"<{num(sbp, 0)}"))
        parts.append(_hline(frame, dbp, "line-dbp", f"<{num(dbp, 0)}"))
        home_s, home_d = target.home_systolic, target.home_diastolic
        if home_s is not None and home_d is not None and (home_s, home_d) != (sbp, dbp):
            home = t("chart.home_target")
            parts.append(_hline(frame, home_s, "line-home", f"{home} <{num(home_s, 0)}", inside=True))
            parts.append(_hline(frame, home_d, "line-home", f"{home} <{num(home_d, 0)}", inside=True))
    if not points:
        parts.append(_empty(frame, t))
    for p in points:
        x, ys, yd = frame.x(p.at), frame.y(p.systolic), frame.y(p.diastolic)
        kind = "home" if is_self_measured(p.source) else "clinic"
        title = f"{_when(p.at, tz)} {num(p.systolic, 0)}/{num(p.diastolic, 0)} {t.word('source', p.source)}"
        parts.append(
            f'<g class="reading bp-reading {kind}" data-at="{p.at.isoformat()}" data-source="{_e(p.source)}" '
            f'data-systolic="{num(p.systolic, 0)}" data-diastolic="{num(p.diastolic, 0)}">'
            f"<title>{_e(title)}</title>"
            f'<line class="bp-span" x1="{x}" y1="{ys}" x2="{x}" y2="{yd}"/>'
            f'<circle class="point sbp {kind}" cx="{x}" cy="{ys}" r="3.2"/>'
            f'<circle class="point dbp {kind}" cx="{x}" cy="{yd}" r="3.2"/></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def glucose_chart(
    points: Sequence[ValuePoint],
    bands: GlucoseBands,
    since: datetime,
    until: datetime,
    t: Translator,
    tz: tzinfo,
) -> str:
    """Every glucose reading; hypo and hyper bands at the pack's thresholds; the glucose targets."""
    hypo, hyper = bands.hypo_edge, bands.hyper_edge
    values = [p.value for p in points] + [bands.fasting_below, bands.non_fasting_below]
    values += [th.value for th in (hypo, hyper) if th is not None]
    low, high, step = nice_range(values, 1, floor=0)
    frame = Frame(since, until, low, high)
    parts = [_svg_open("glucose", t("chart.glucose"), len(points), frame), _axes(frame, step, t, tz, 0)]
    if hypo is not None:
        sign = "≤" if hypo.op == "lte" else "<"
        parts.append(
            _band(frame, frame.low, hypo.value, "band-hypo", f"{t('chart.hypo')} {sign}{hypo.value:g}")
        )
        parts.append(_hline(frame, hypo.value, "line-hypo", f"{t('chart.hypo_line')} {sign}{hypo.value:g}"))
    if hyper is not None:
        sign = "≥" if hyper.op == "gte" else ">"
        label = f"{sign}{hyper.value:g}"
        parts.append(_band(frame, hyper.value, frame.high, "band-hyper", f"{t('chart.hyper')} {label}"))
        parts.append(_hline(frame, hyper.value, "line-hyper", f"{t('chart.hyper_line')} {label}"))
    parts.append(
        _hline(
            frame, bands.fasting_below, "line-target", f"{t('chart.fasting_line')} <{bands.fasting_below:g}"
        )
    )
    parts.append(
        _hline(
            frame,
            bands.non_fasting_below,
            "line-target2",
            f"{t('chart.non_fasting_line')} <{bands.non_fasting_below:g}",
        )
    )
    if not points:
        parts.append(_empty(frame, t))
    for p in points:
        kind = "home" if is_self_measured(p.source) else "clinic"
        band = p.band or "in-range"
        title = f"{_when(p.at, tz)} {num(p.value)} {t.word('kind', p.kind)} {t.word('source', p.source)}"
        parts.append(
            f'<circle class="point reading glucose {kind} {band}" '
            f'cx="{frame.x(p.at)}" cy="{frame.y(p.value)}" '
            f'r="3.4" data-at="{p.at.isoformat()}" data-kind="{_e(p.kind)}" data-source="{_e(p.source)}" '
            f'data-value="{num(p.value)}" data-band="{band}"><title>{_e(title)}</title></circle>'
        )
    parts.append("</svg>")
    return "".join(parts)


def ldl_chart(
    points: Sequence[ValuePoint],
    target: LipidTarget,
    since: datetime,
    until: datetime,
    t: Translator,
    tz: tzinfo,
) -> str:
    """Every LDL-C result against the patient's stratum target (shaded below it)."""
    values = [p.value for p in points] + ([target.ldl_below] if target.ldl_below is not None else [])
    low, high, step = nice_range(values or [1.0, 4.0], 0.5, floor=0)
    frame = Frame(since, until, low, high)
    parts = [_svg_open("ldl", t("chart.ldl"), len(points), frame), _axes(frame, step, t, tz, 1)]
    if target.ldl_below is not None:
        stratum = t.word("stratum", target.stratum) if target.stratum else ""
        label = f"{t('chart.target')} <{target.ldl_below:g}"
        band_label = f"{label} {stratum}".strip()
        parts.append(_band(frame, frame.low, target.ldl_below, "band-target-ldl", band_label))
        parts.append(_hline(frame, target.ldl_below, "line-ldl", label))
    if not points:
        parts.append(_empty(frame, t))
    for p in points:
        above = target.ldl_below is not None and p.value >= target.ldl_below
        title = f"{_when(p.at, tz)} LDL-C {num(p.value)}"
        parts.append(
            f'<circle class="point reading ldl {"above" if above else "at-target"}" cx="{frame.x(p.at)}" '
            f'cy="{frame.y(p.value)}" r="3.6" data-at="{p.at.isoformat()}" data-source="{_e(p.source)}" '
            f'data-value="{num(p.value)}"><title>{_e(title)}</title></circle>'
        )
    parts.append("</svg>")
    return "".join(parts)


def tier_timeline(
    spans: Sequence[TierSpan], since: datetime, until: datetime, t: Translator, tz: tzinfo
) -> str:
    """The tier over time: one coloured span per period, the rules behind it in its tooltip."""
    frame = Frame(since, until, 0, 1, height=64)
    parts = [_svg_open("tiers", t("chart.tiers"), len(spans), frame)]
    for month_start in _month_starts(since, until, tz):
        x = frame.x(month_start)
        local = month_start.astimezone(tz)
        label = t.month(local.month) if local.month != 1 else f"{local.year}"
        parts.append(f'<line class="grid grid-x" x1="{x}" y1="6" x2="{x}" y2="40"/>')
        parts.append(f'<text class="tick" x="{x + 3}" y="56">{_e(label)}</text>')
    if not spans:
        parts.append(f'<text class="empty" x="{LEFT}" y="28">{_e(t("chart.empty"))}</text>')
    for span in spans:
        x1, x2 = frame.x(span.start), frame.x(span.end)
        width = max(round(x2 - x1, 1), 1.5)
        rules = ", ".join(span.rule_ids) or "–"
        title = (
            f"{t.word('tier', span.tier)} · {t.word('level', span.level)} · {_when(span.start, tz)} → "
            f"{_when(span.end, tz)} · {rules} · {span.pack_version}"
        )
        parts.append(
            f'<rect class="tier-span tier-{_e(span.tier)}" data-tier="{_e(span.tier)}" '
            f'data-start="{span.start.isoformat()}" x="{x1}" y="10" width="{width}" height="26" rx="3">'
            f"<title>{_e(title)}</title></rect>"
        )
        if width > 40:
            parts.append(
                f'<text class="tier-label" x="{x1 + 5}" y="28">{_e(t.word("tier", span.tier))}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def months_between(since: datetime, until: datetime) -> int:
    return max(1, round((until - since) / timedelta(days=30.4)))
