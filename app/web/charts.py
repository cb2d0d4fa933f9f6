"""Trend charts for the patient page, as numbers a template turns into SVG (no JavaScript, no library).

``scale_chart`` is pure: it maps readings ``(when, value)`` and horizontal threshold lines onto a
``width`` × ``height`` box (SVG user units, y grows downwards) with ``PAD`` units kept free on every
side for the axis labels. The y range covers every reading *and* every threshold, so a threshold line
is always drawn inside the chart (a nurse sees how far a reading is from it), with a little headroom.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

#: Room (SVG units) left of the plot for the y labels, and above/below for the x labels.
PAD_LEFT = 44.0
PAD_RIGHT = 12.0
PAD_TOP = 12.0
PAD_BOTTOM = 28.0


@dataclass(frozen=True)
class Threshold:
    """A horizontal line at ``value`` (same unit as the readings), named for the legend and the table."""

    label: str
    value: float


@dataclass(frozen=True)
class PlacedPoint:
    x: float
    y: float
    at: dt.datetime
    value: float
    #: At or beyond the most severe threshold crossed upwards (drawn filled in the alert colour).
    alert: bool


@dataclass(frozen=True)
class PlacedLine:
    y: float
    label: str
    value: float


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: float
    height: float
    points: tuple[PlacedPoint, ...]
    lines: tuple[PlacedLine, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    low: float
    high: float

    @property
    def polyline(self) -> str:
        """The ``points`` attribute of the SVG polyline (``"x,y x,y …"``, one decimal)."""
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)

    @property
    def plot_left(self) -> float:
        return PAD_LEFT

    @property
    def plot_right(self) -> float:
        return self.width - PAD_RIGHT

    @property
    def plot_bottom(self) -> float:
        return self.height - PAD_BOTTOM


def nice_step(span: float, ticks: int = 4) -> float:
    """A round step (1, 2 or 5 × 10^n) giving about ``ticks`` intervals over ``span`` (> 0)."""
    raw = span / max(1, ticks)
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= raw:
            return float(factor * magnitude)
    return float(10 * magnitude)  # pragma: no cover - the loop always returns


def value_range(values: Sequence[float], thresholds: Sequence[float]) -> tuple[float, float]:
    """``(low, high)`` rounded out to a nice step, covering every value and threshold; a flat series gets
    a band around it so it is not drawn on the frame. Raises ValueError when there is nothing at all."""
    everything = [*values, *thresholds]
    if not everything:
        raise ValueError("no values and no thresholds")
    low, high = min(everything), max(everything)
    if high - low < 1e-9:
        margin = max(1.0, abs(high) * 0.05)
        low, high = low - margin, high + margin
    step = nice_step(high - low)
    return math.floor(low / step) * step, math.ceil(high / step) * step


def scale_chart(
    readings: Sequence[tuple[dt.datetime, float]],
    thresholds: Sequence[Threshold],
    *,
    width: float = 640.0,
    height: float = 220.0,
    alert_at: float | None = None,
    date_format: str = "%m-%d",
) -> Chart:
    """Place ``readings`` (any order; sorted by time here) and ``thresholds`` in the box.

    x: time, first reading at the left edge of the plot, last at the right (one reading: centred).
    y: ``value_range`` mapped linearly, high values at the top. ``alert_at``: readings ≥ it are marked.
    Raises ValueError when there are neither readings nor thresholds."""
    ordered = sorted(readings, key=lambda r: r[0])
    low, high = value_range([v for _, v in ordered], [t.value for t in thresholds])
    left, right = PAD_LEFT, width - PAD_RIGHT
    top, bottom = PAD_TOP, height - PAD_BOTTOM

    def y_of(value: float) -> float:
        return bottom - (value - low) / (high - low) * (bottom - top)

    def x_of(at: dt.datetime) -> float:
        if len(ordered) < 2:
            return (left + right) / 2
        first, last = ordered[0][0], ordered[-1][0]
        span = (last - first).total_seconds()
        if span <= 0:
            return (left + right) / 2
        return left + (at - first).total_seconds() / span * (right - left)

    points = tuple(
        PlacedPoint(x_of(at), y_of(value), at, value, alert_at is not None and value >= alert_at)
        for at, value in ordered
    )
    lines = tuple(PlacedLine(y_of(t.value), t.label, t.value) for t in thresholds)
    step = nice_step(high - low)
    count = round((high - low) / step)
    y_ticks = tuple(Tick(y_of(low + i * step), f"{low + i * step:g}") for i in range(count + 1))
    x_ticks: tuple[Tick, ...] = ()
    if ordered:
        chosen = [ordered[0], ordered[-1]] if len(ordered) > 1 else [ordered[0]]
        if len(ordered) > 4:
            chosen.insert(1, ordered[len(ordered) // 2])
        x_ticks = tuple(Tick(x_of(at), at.strftime(date_format)) for at, _ in chosen)
    return Chart(width, height, points, lines, y_ticks, x_ticks, low, high)
