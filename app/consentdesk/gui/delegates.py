"""Item delegates: consent cells and two-line list rows, painted to fit 380 px."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QFont, QFontMetrics, QIcon, QPainter, QPalette
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from consentdesk.domain.basis import Offer
from consentdesk.domain.model import ConsentState
from consentdesk.gui import labels, theme
from consentdesk.gui.models import ApplicableRole, BasisRole, DateTextRole, MethodRole, StateRole

_Index = QModelIndex | QPersistentModelIndex


def scaled_font_for(font: QFont, factor: float) -> QFont:
    scaled = QFont(font)
    if scaled.pointSizeF() > 0:
        scaled.setPointSizeF(scaled.pointSizeF() * factor)
    return scaled


def _background(option: QStyleOptionViewItem, painter: QPainter) -> None:
    """Background (the model's tint), selection and focus, as the style draws them."""
    opt = QStyleOptionViewItem(option)
    opt.text = ""
    opt.icon = QIcon()
    style = opt.widget.style() if opt.widget is not None else QApplication.style()
    style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)


class CellDelegate(QStyledItemDelegate):
    """A consent cell: state icon, state word, date and how it was captured, centred.

    Painted by hand so five channels fit the narrow sidebar without eliding.
    """

    def _fonts(self, base: QFont) -> tuple[QFont, QFont]:
        # Condensed where the family has it (DejaVu, Noto, Liberation): five
        # channels side by side leave about 50 px per cell.
        word = scaled_font_for(base, 0.85)
        word.setStretch(QFont.Stretch.Condensed)
        word.setBold(True)
        small = scaled_font_for(base, 0.8)
        small.setStretch(QFont.Stretch.Condensed)
        return word, small

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        word, small = self._fonts(option.font)
        height = 4 + 16 + 2 + QFontMetrics(word).height() + 2 * QFontMetrics(small).height() + 4
        return QSize(52, height)

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: _Index,
    ) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        _background(opt, painter)
        rect = opt.rect
        if not index.data(ApplicableRole):
            painter.save()
            painter.setPen(opt.palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "–")
            painter.restore()
            return
        state = index.data(StateRole)
        info = index.data(BasisRole)
        if info is not None and info.offer != Offer.CONSENT and state == ConsentState.UNKNOWN:
            look = theme.Look(info.label, theme.NOTICE.glyph, theme.NOTICE.light, theme.NOTICE.dark)
        else:
            look = theme.STATE_LOOKS[state]
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        text_role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        painter.save()
        look.icon().paint(painter, rect.center().x() - 8, rect.top() + 4, 16, 16)
        word, small = self._fonts(opt.font)
        y = rect.top() + 4 + 16 + 2
        painter.setFont(word)
        painter.setPen(opt.palette.color(text_role) if selected else look.color())
        h = QFontMetrics(word).height()
        painter.drawText(
            QRect(rect.left(), y, rect.width(), h), Qt.AlignmentFlag.AlignHCenter, look.label
        )
        y += h
        painter.setFont(small)
        painter.setPen(opt.palette.color(text_role))
        h = QFontMetrics(small).height()
        date_text = str(index.data(DateTextRole) or "")
        method = index.data(MethodRole)
        for line in (date_text, labels.METHOD_MARKS[method] if method is not None else ""):
            if line:
                painter.drawText(
                    QRect(rect.left(), y, rect.width(), h), Qt.AlignmentFlag.AlignHCenter, line
                )
            y += h
        painter.restore()


class TwoLineDelegate(QStyledItemDelegate):
    """List rows as icon + headline + detail line, each elided to the width.

    The model's DisplayRole is ``"headline\ndetail"``; the full text stays in
    the tooltip and accessible text.
    """

    ICON = 20
    PAD = 6

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        fm = QFontMetrics(option.font)
        small = QFontMetrics(scaled_font_for(option.font, 0.9))
        return QSize(200, self.PAD * 2 + fm.height() + small.height() + 2)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        _background(opt, painter)
        rect = opt.rect.adjusted(self.PAD, self.PAD, -self.PAD, -self.PAD)
        icon = index.data(Qt.ItemDataRole.DecorationRole)
        if isinstance(icon, QIcon):
            icon.paint(painter, rect.left(), rect.top() + 2, self.ICON, self.ICON)
        text_left = rect.left() + self.ICON + self.PAD
        width = rect.right() - text_left
        headline, _, detail = str(index.data(Qt.ItemDataRole.DisplayRole) or "").partition("\n")
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        color = opt.palette.color(
            QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        )
        painter.save()
        painter.setPen(color)
        head_font = QFont(opt.font)
        head_font.setStrikeOut(opt.font.strikeOut())
        fm = QFontMetrics(head_font)
        painter.setFont(head_font)
        painter.drawText(
            QRect(text_left, rect.top(), width, fm.height()),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            fm.elidedText(headline, Qt.TextElideMode.ElideRight, width),
        )
        small = scaled_font_for(opt.font, 0.9)
        small.setStrikeOut(False)
        sm = QFontMetrics(small)
        painter.setFont(small)
        if not selected:
            painter.setPen(opt.palette.color(QPalette.ColorRole.PlaceholderText))
        painter.drawText(
            QRect(text_left, rect.top() + fm.height() + 2, width, sm.height()),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            sm.elidedText(detail, Qt.TextElideMode.ElideRight, width),
        )
        painter.restore()
