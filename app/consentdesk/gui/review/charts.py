"""Small bar charts drawn with QPainter (PySide6-Essentials has no QtCharts).

A chart is never colour alone: each series has a word in the legend and its
own fill pattern, values are printed on the bars where they fit, and the
accessible description reads the whole chart out as text.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QFontMetrics, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

_PATTERNS = (
    Qt.BrushStyle.SolidPattern,
    Qt.BrushStyle.BDiagPattern,
    Qt.BrushStyle.Dense4Pattern,
    Qt.BrushStyle.CrossPattern,
)


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: tuple[float, ...]
    color: str


def plain_number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def percent(value: float) -> str:
    return f"{value * 100:.0f} %"


class BarChart(QWidget):
    """Grouped vertical bars: one group per category, one bar per series."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._title = title
        self._categories: tuple[str, ...] = ()
        self._series: tuple[Series, ...] = ()
        self._format: Callable[[float], str] = plain_number
        self._maximum: float | None = None
        self.setAccessibleName(title)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(260, 180)

    def sizeHint(self) -> QSize:
        return QSize(420, 240)

    @property
    def title(self) -> str:
        return self._title

    @property
    def categories(self) -> tuple[str, ...]:
        return self._categories

    @property
    def series(self) -> tuple[Series, ...]:
        return self._series

    def set_data(
        self,
        categories: Sequence[str],
        series: Sequence[Series],
        *,
        value_format: Callable[[float], str] = plain_number,
        maximum: float | None = None,
    ) -> None:
        for s in series:
            if len(s.values) != len(categories):
                raise ValueError(
                    f"series {s.name!r} has {len(s.values)} values, not {len(categories)}"
                )
        self._categories = tuple(categories)
        self._series = tuple(series)
        self._format = value_format
        self._maximum = maximum
        self.setAccessibleDescription(self.describe())
        self.update()

    def describe(self) -> str:
        """The chart as sentences, for screen readers and tooltips."""
        if not self._categories or not self._series:
            return f"{self._title}: no data"
        parts = []
        for i, category in enumerate(self._categories):
            values = ", ".join(f"{s.name} {self._format(s.values[i])}" for s in self._series)
            parts.append(f"{category}: {values}")
        return f"{self._title}. " + "; ".join(parts)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        text = self.palette().color(QPalette.ColorRole.WindowText)
        metrics = QFontMetrics(self.font())
        line = metrics.height()
        area = QRectF(self.rect()).adjusted(8, 4, -8, -4)
        painter.setPen(text)
        painter.drawText(
            QRectF(area.left(), area.top(), area.width(), line),
            Qt.AlignmentFlag.AlignLeft,
            self._title,
        )
        legend_top = area.top() + line + 2
        self._paint_legend(painter, metrics, area.left(), legend_top)
        top = nice_ceiling(
            self._maximum or max((v for s in self._series for v in s.values), default=0.0)
        )
        ticks = (0.0, top / 2, top)
        axis = max(metrics.horizontalAdvance(self._format(t)) for t in ticks) + 6
        # Two lines under the bars: long category names wrap instead of being cut.
        plot = QRectF(
            area.left() + axis,
            legend_top + line + 6,
            area.width() - axis - 4,
            area.bottom() - (legend_top + line + 6) - 2 * line - 4,
        )
        if not self._categories or not self._series or plot.height() < 10:
            painter.drawText(plot, Qt.AlignmentFlag.AlignCenter, "No data for this period")
            painter.end()
            return
        self._paint_scale(painter, metrics, plot, ticks, text)
        self._paint_bars(painter, metrics, plot, top, text)
        self._paint_captions(painter, metrics, plot, text)
        painter.end()

    def _paint_legend(self, painter: QPainter, metrics: QFontMetrics, x: float, y: float) -> None:
        line = metrics.height()
        text = painter.pen().color()
        for i, s in enumerate(self._series):
            swatch = QRectF(x, y + 2, line - 4, line - 4)
            painter.setPen(QPen(QColor(s.color)))
            painter.setBrush(QBrush(QColor(s.color), _PATTERNS[i % len(_PATTERNS)]))
            painter.drawRect(swatch)
            painter.setPen(text)
            painter.drawText(swatch.right() + 4, y + metrics.ascent(), s.name)
            x = swatch.right() + 16 + metrics.horizontalAdvance(s.name)

    def _paint_scale(
        self,
        painter: QPainter,
        metrics: QFontMetrics,
        plot: QRectF,
        ticks: tuple[float, ...],
        text: QColor,
    ) -> None:
        """The value axis: a labelled tick and a faint grid line at 0, half and top."""
        grid = QColor(text)
        grid.setAlpha(60)
        for value in ticks:
            y = plot.bottom() - plot.height() * (value / ticks[-1])
            painter.setPen(QPen(grid if value else text, 1))
            painter.drawLine(plot.left(), int(y), plot.right(), int(y))
            painter.setPen(text)
            painter.drawText(
                QRectF(0, y - metrics.height() / 2, plot.left() - 4, metrics.height()),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                self._format(value),
            )
        painter.drawLine(plot.bottomLeft(), plot.topLeft())

    def _paint_bars(
        self, painter: QPainter, metrics: QFontMetrics, plot: QRectF, top: float, text: QColor
    ) -> None:
        line = metrics.height()
        group = plot.width() / len(self._categories)
        bar = max(2.0, (group * 0.8) / len(self._series))
        for ci in range(len(self._categories)):
            gx = plot.left() + ci * group + group * 0.1
            for si, s in enumerate(self._series):
                value = s.values[ci]
                height = plot.height() * min(value / top, 1.0)
                rect = QRectF(gx + si * bar, plot.bottom() - height, bar - 1, height)
                painter.setPen(QPen(QColor(s.color)))
                painter.setBrush(QBrush(QColor(s.color), _PATTERNS[si % len(_PATTERNS)]))
                painter.drawRect(rect)
                label = self._format(value)
                if metrics.horizontalAdvance(label) <= bar + 6 and height + line < plot.height():
                    painter.setPen(text)
                    painter.drawText(
                        QRectF(rect.left() - 3, rect.top() - line, bar + 6, line),
                        Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom,
                        label,
                    )

    def _paint_captions(
        self, painter: QPainter, metrics: QFontMetrics, plot: QRectF, text: QColor
    ) -> None:
        """Category names under their groups; where they would overlap, every
        *step*-th one, each given the room of *step* groups."""
        group = plot.width() / len(self._categories)
        step = caption_step([metrics.horizontalAdvance(c) for c in self._categories], group)
        painter.setPen(text)
        flags = Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop
        for ci in range(0, len(self._categories), step):
            room = QRectF(
                plot.left() + ci * group - group * (step - 1) / 2,
                plot.bottom() + 2,
                group * step,
                2 * metrics.height(),
            )
            painter.drawText(room, int(flags) | int(Qt.TextFlag.TextWordWrap), self._categories[ci])


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 × 10ⁿ at or above *value* (1 for nothing), so the
    scale's ticks are round numbers."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for factor in (1, 2, 5, 10):
        if value <= factor * magnitude + 1e-9:
            return float(factor * magnitude)
    return float(10 * magnitude)


def caption_step(widths: Sequence[int], group: float) -> int:
    """Show every n-th caption so that none overlaps its neighbours; words may wrap
    onto a second line, so half of the widest caption must fit."""
    needed = max(widths, default=0) / 2 + 4
    return max(1, math.ceil(needed / group)) if group > 0 else 1
