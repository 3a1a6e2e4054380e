"""Small bar charts drawn with QPainter (PySide6-Essentials has no QtCharts).

A chart is never colour alone: each series has a word in the legend and its
own fill pattern, values are printed on the bars where they fit, and the
accessible description reads the whole chart out as text.
"""

from __future__ import annotations

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
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.WindowText)
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
        x = area.left()
        for i, s in enumerate(self._series):
            swatch = QRectF(x, legend_top + 2, line - 4, line - 4)
            painter.setPen(QPen(QColor(s.color)))
            painter.setBrush(QBrush(QColor(s.color), _PATTERNS[i % len(_PATTERNS)]))
            painter.drawRect(swatch)
            painter.setPen(text)
            painter.drawText(swatch.right() + 4, legend_top + metrics.ascent(), s.name)
            x = swatch.right() + 16 + metrics.horizontalAdvance(s.name)
        plot = QRectF(
            area.left() + 4,
            legend_top + line + 6,
            area.width() - 8,
            area.bottom() - (legend_top + line + 6) - line - 4,
        )
        painter.setPen(QPen(text, 1))
        painter.drawLine(plot.bottomLeft(), plot.bottomRight())
        if not self._categories or not self._series or plot.height() < 10:
            painter.drawText(plot, Qt.AlignmentFlag.AlignCenter, "No data for this period")
            painter.end()
            return
        top = self._maximum or max((v for s in self._series for v in s.values), default=0.0)
        top = top if top > 0 else 1.0
        group = plot.width() / len(self._categories)
        bar = max(2.0, (group * 0.8) / len(self._series))
        for ci, category in enumerate(self._categories):
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
            caption = metrics.elidedText(category, Qt.TextElideMode.ElideRight, int(group))
            painter.setPen(text)
            painter.drawText(
                QRectF(plot.left() + ci * group, plot.bottom() + 2, group, line),
                Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
                caption,
            )
        painter.end()
