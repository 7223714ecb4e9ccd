"""The first-run review: what already listens on the watched ports, for the person to
trust or not. Nothing found there is trusted silently."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from portwatch.core.trust import ReviewCandidate
from portwatch.core.types import Status
from portwatch.services.plain_text import visible

INTRO = (
    "These programs were already listening on your watched ports when portwatch first "
    "started. Tick the ones you recognise: each is then allowed on the port and protocol "
    "of its row, nothing more. The others stay untrusted and marked in the window; they "
    "raise an alert when they change or start again. Programs the system does not let "
    "portwatch inspect cannot be trusted."
)


def candidate_text(candidate: ReviewCandidate) -> str:
    """Plain-text lines describing one candidate (process data shown with escapes)."""
    listener, spec, verdict = candidate
    owner = listener.owner
    hidden = owner is None or verdict.status is Status.UNATTRIBUTED
    scope = "" if hidden else f"; ticking trusts {listener.port}/{listener.proto.value} only"
    lines = [f"{listener.endpoint.label()}  (watched as {spec}{scope})"]
    if owner is None or hidden:
        lines.append("owner hidden by the system: cannot be trusted")
    else:
        lines.append(f"{visible(owner.name) or '(no name)'}, pid {owner.pid}")
        lines.append(f"program: {visible(owner.exe)}")
        if owner.script:
            lines.append(f"script: {visible(owner.script)}")
        if owner.sha256:
            lines.append(f"SHA-256: {owner.sha256}")
    return "\n".join(lines)


class TrustReviewDialog(QDialog):
    """Lists review candidates with a tick box each.

    *Trust ticked* accepts with :meth:`chosen` holding the ticked indices (possibly none:
    the review is then done with nothing trusted); *Ask me later* rejects and the review
    stays pending.
    """

    def __init__(self, candidates: Sequence[ReviewCandidate], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Programs already on your watched ports")
        self._candidates = list(candidates)
        intro = QLabel(INTRO)
        intro.setTextFormat(Qt.TextFormat.PlainText)
        intro.setWordWrap(True)
        self.list = QListWidget()
        self.list.setWordWrap(True)
        # Several lines per program: space and alternating shades keep entries apart.
        self.list.setSpacing(4)
        self.list.setAlternatingRowColors(True)
        for candidate in self._candidates:
            # QListWidgetItem text is never interpreted as markup.
            item = QListWidgetItem(candidate_text(candidate))
            if candidate[2].status is Status.UNATTRIBUTED:
                item.setFlags(
                    item.flags() & ~Qt.ItemFlag.ItemIsEnabled & ~Qt.ItemFlag.ItemIsUserCheckable
                )
            else:
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Unchecked)
            self.list.addItem(item)
        buttons = QDialogButtonBox()
        self.trust_button: QPushButton = buttons.addButton(
            "&Trust ticked programs", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.later_button: QPushButton = buttons.addButton(
            "Ask me &later", QDialogButtonBox.ButtonRole.RejectRole
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.list, 1)
        layout.addWidget(buttons)
        self.resize(640, 420)

    def set_checked(self, index: int, checked: bool) -> None:
        """Tick or untick one candidate (tests, keyboard shortcuts)."""
        item = self.list.item(index)
        if item.flags() & Qt.ItemFlag.ItemIsUserCheckable:
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    def chosen(self) -> list[int]:
        """Indices of the ticked candidates."""
        return [
            row
            for row in range(self.list.count())
            if self.list.item(row).checkState() == Qt.CheckState.Checked
            and self.list.item(row).flags() & Qt.ItemFlag.ItemIsUserCheckable
        ]


def open_review(
    parent: QWidget,
    candidates: Sequence[ReviewCandidate],
    on_done: Callable[[Sequence[ReviewCandidate], list[int]], None],
) -> TrustReviewDialog:
    """Show the review without blocking; ``on_done(candidates, chosen)`` runs when the
    person accepts (nothing happens on "Ask me later": the review stays pending)."""
    dialog = TrustReviewDialog(candidates, parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.accepted.connect(lambda: on_done(candidates, dialog.chosen()))
    dialog.open()
    return dialog
