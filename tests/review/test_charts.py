"""The review's bar charts: a scale with round ticks, and captions that never overlap."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor, QImage
from pytestqt.qtbot import QtBot

from consentdesk.gui.review.charts import BarChart, Series, caption_step, nice_ceiling, percent


@pytest.mark.parametrize(
    ("value", "top"),
    [(0, 1), (0.3, 0.5), (1, 1), (3, 5), (7, 10), (12, 20), (48, 50), (51, 100), (1.0, 1)],
)
def test_the_scale_tops_out_at_a_round_number(value: float, top: float) -> None:
    assert nice_ceiling(value) == top


def test_captions_thin_out_instead_of_overlapping() -> None:
    assert caption_step([40] * 7, group=60) == 1  # a week: every day labelled
    assert caption_step([40] * 30, group=12) == 2  # a month: every second day
    assert caption_step([], group=10) == 1


def _dark_pixels(image: QImage, x0: int, x1: int, y0: int, y1: int) -> int:
    return sum(
        1
        for x in range(x0, x1)
        for y in range(y0, y1)
        if QColor(image.pixel(x, y)).lightness() < 60  # text, not the red bars
    )


def test_the_chart_draws_a_labelled_scale_left_of_the_bars(qtbot: QtBot) -> None:
    chart = BarChart("Refusal rate per purpose")
    qtbot.addWidget(chart)
    chart.resize(420, 240)
    chart.set_data(
        ["Marketing offers by phone", "Newsletter"],
        [Series("Refused", (0.25, 0.5), "#b3261e")],
        value_format=percent,
        maximum=1.0,
    )
    assert "Marketing offers by phone: Refused 25 %" in chart.accessibleDescription()
    image = chart.grab().toImage()
    axis = chart.fontMetrics()
    label_width = axis.horizontalAdvance("100 %")
    # Tick labels ("0 %", "50 %", "100 %") are drawn in the margin left of the plot.
    assert _dark_pixels(image, 8, 8 + label_width, 40, 200) > 20
