"""A message strip across the top of the window: partial samples, notices, file problems."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QStyle, QToolButton, QWidget


class Banner(QFrame):
    """Plain-text message with an icon; optionally dismissable by the user."""

    dismissed = Signal()

    def __init__(self, *, dismissable: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        self.icon = QLabel()
        size = self.fontMetrics().height() * 3 // 2
        warning = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        self.icon.setPixmap(warning.pixmap(size, size))
        self.icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.text = QLabel()
        self.text.setTextFormat(Qt.TextFormat.PlainText)
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QHBoxLayout(self)
        layout.addWidget(self.icon)
        layout.addWidget(self.text, 1)
        self.close_button: QToolButton | None = None
        if dismissable:
            self.close_button = QToolButton()
            self.close_button.setText("Dismiss")
            self.close_button.setToolTip("Hide this message")
            self.close_button.clicked.connect(self.dismiss)
            layout.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self._apply_colours()
        self.setVisible(False)

    def _apply_colours(self) -> None:
        palette = self.palette()
        base = palette.color(QPalette.ColorRole.Window)
        # A warm tint that keeps the text readable in light and dark schemes.
        tint = base.darker(115) if base.lightness() > 128 else base.lighter(160)
        tint.setRed(min(255, tint.red() + 40))
        tint.setGreen(min(255, tint.green() + 20))
        palette.setColor(QPalette.ColorRole.Window, tint)
        self.setPalette(palette)

    def show_messages(self, lines: list[str]) -> None:
        """Show these lines (plain text); an empty list hides the banner."""
        self.text.setText("\n".join(lines))
        self.setVisible(bool(lines))

    def messages(self) -> list[str]:
        text = self.text.text()
        return text.split("\n") if text else []

    def add_messages(self, lines: list[str]) -> None:
        """Append lines to what is shown (duplicates dropped)."""
        parent = self.parentWidget()
        shown = self.isVisibleTo(parent) if parent is not None else self.isVisible()
        current = self.messages() if shown else []
        self.show_messages(current + [line for line in lines if line not in current])

    @Slot()
    def dismiss(self) -> None:
        self.show_messages([])
        self.dismissed.emit()
