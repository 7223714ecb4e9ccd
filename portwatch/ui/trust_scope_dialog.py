"""Confirming what "Trust this program on this port" covers, when it could cover more.

The listener's own port and protocol is the default; both protocols or the whole watched
range are explicit choices, each worded as exactly what will be trusted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from portwatch.core.watchlist import WatchSpec
from portwatch.services.plain_text import visible
from portwatch.services.trust_service import TrustScope


def program_text(view: Any) -> str:
    """The program being trusted, as plain text (process data escaped)."""
    owner = view.listener.owner
    if owner is None:
        return "this program"
    text = visible(owner.exe or owner.name or f"pid {owner.pid}")
    if owner.script:
        text += f" running {visible(owner.script)}"
    if owner.sha256:
        text += f" (SHA-256 {owner.sha256[:12]}\u2026)"
    return text


class TrustScopeDialog(QDialog):
    """One radio button per scope; the narrowest is chosen unless the person picks more."""

    def __init__(
        self, view: Any, scopes: Sequence[TrustScope], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Trust this program")
        self._scopes = list(scopes)
        intro = QLabel(
            f"Allow {program_text(view)} to listen without alerts on:\n"
            "(other programs on these ports still alert)"
        )
        intro.setTextFormat(Qt.TextFormat.PlainText)
        intro.setWordWrap(True)
        self.group = QButtonGroup(self)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        self.buttons: list[QRadioButton] = []
        for index, scope in enumerate(self._scopes):
            # QRadioButton text is never markup; the scope's words are built by us.
            button = QRadioButton(scope.text)
            self.group.addButton(button, index)
            self.buttons.append(button)
            layout.addWidget(button)
        self.buttons[0].setChecked(True)
        box = QDialogButtonBox()
        self.trust_button = box.addButton("&Trust", QDialogButtonBox.ButtonRole.AcceptRole)
        box.addButton(QDialogButtonBox.StandardButton.Cancel)
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)
        layout.addWidget(box)

    def chosen(self) -> WatchSpec:
        index = max(0, self.group.checkedId())
        return self._scopes[index].spec


def ask_trust_scope(
    parent: QWidget,
    view: Any,
    scopes: Sequence[TrustScope],
    on_done: Callable[[Any, WatchSpec], None],
) -> TrustScopeDialog | None:
    """Trust at once when only the listener's own port and protocol is possible; else
    ask, without blocking, and call ``on_done(view, spec)`` when the person confirms."""
    if len(scopes) == 1:
        on_done(view, scopes[0].spec)
        return None
    dialog = TrustScopeDialog(view, scopes, parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.accepted.connect(lambda: on_done(view, dialog.chosen()))
    dialog.open()
    return dialog
