"""The window's status bar: a passing message on the left, the permanent line on the right.

QStatusBar draws a passing message whole and lets the first permanent widget cut it off
mid-word, flush against that widget's text, so a long alert reads as one run-on line at
narrow widths. This one shortens the message with "…" to the room left of the permanent
widgets (a small gap kept) and puts the whole message in the bar's tooltip.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt, Slot
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QStatusBar, QStyle, QStyleOption, QWidget


class StatusBar(QStatusBar):
    """A status bar whose passing messages are elided, never cut or overlapped."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._permanent: list[QWidget] = []
        self.messageChanged.connect(self._message_changed)

    def addPermanentWidget(self, widget: QWidget, stretch: int | None = 0) -> None:
        self._permanent.append(widget)
        super().addPermanentWidget(widget, stretch or 0)

    def message_rect(self) -> QRect:
        """Where the passing message is drawn: left of the first shown permanent widget."""
        gap = self.fontMetrics().horizontalAdvance("  ")
        left, right = 6, self.width() - 12
        shown = [widget.x() for widget in self._permanent if widget.isVisible()]
        if shown:
            right = min(shown) - gap
        return QRect(left, 0, max(0, right - left), self.height())

    def shown_message(self) -> str:
        """The passing message as drawn at the present width."""
        return self.fontMetrics().elidedText(
            self.currentMessage(), Qt.TextElideMode.ElideRight, self.message_rect().width()
        )

    @Slot(str)
    def _message_changed(self, message: str) -> None:
        self.setToolTip(message)

    def paintEvent(self, event: QPaintEvent) -> None:
        if not self.currentMessage():
            super().paintEvent(event)
            return
        # As QStatusBar paints with a message (panel, permanent widgets' frames), but
        # the message elided to its room.
        painter = QPainter(self)
        option = QStyleOption()
        option.initFrom(self)
        self.style().drawPrimitive(QStyle.PrimitiveElement.PE_PanelStatusBar, option, painter, self)
        for widget in self._permanent:
            if widget.isVisible():
                frame = QStyleOption()
                frame.rect = widget.geometry().adjusted(-2, -1, 2, 1)
                frame.palette = self.palette()
                frame.state = QStyle.StateFlag.State_None
                self.style().drawPrimitive(
                    QStyle.PrimitiveElement.PE_FrameStatusBarItem, frame, painter, widget
                )
        painter.setPen(self.palette().windowText().color())
        align = Qt.AlignmentFlag.AlignLeading | Qt.AlignmentFlag.AlignVCenter
        painter.drawText(self.message_rect(), align, self.shown_message())
        painter.end()
