"""The first-run review: what already listens on the watched ports, for the person to
trust or not. Nothing found there is trusted silently."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
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
        if owner.package is not None:
            lines.append(
                f"package: {visible(owner.package.label())}, verified by {owner.package.manager}"
            )
        elif owner.package_problem:
            lines.append(f"package: {visible(owner.package_problem)}")
        if owner.signer is not None:
            lines.append(f"signed by {visible(owner.signer.label())} (verified)")
    return "\n".join(lines)


# (label, kind): what the person may choose to pin the trust to.
TRUST_BY = (
    ("the strongest that verifies (package, then signer, then hash)", None),
    ("its package (updates stay trusted)", "package"),
    ("its verified signer (updates stay trusted)", "signer"),
    ("this exact file (any change alerts)", "hash"),
)


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
        self.trust_by = QComboBox()
        for label, kind in TRUST_BY:
            self.trust_by.addItem(label, kind)
        by_label = QLabel("Trust &by:")
        by_label.setTextFormat(Qt.TextFormat.PlainText)
        by_label.setBuddy(self.trust_by)
        by_row = QHBoxLayout()
        by_row.addWidget(by_label)
        by_row.addWidget(self.trust_by, 1)
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
        layout.addLayout(by_row)
        layout.addWidget(buttons)
        self.resize(640, 420)

    def set_checked(self, index: int, checked: bool) -> None:
        """Tick or untick one candidate (tests, keyboard shortcuts)."""
        item = self.list.item(index)
        if item.flags() & Qt.ItemFlag.ItemIsUserCheckable:
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    def by(self) -> str | None:
        """The chosen kind of trust (``hash``, ``package``, ``signer``), or None for the
        strongest that verifies."""
        kind = self.trust_by.currentData()
        return kind if isinstance(kind, str) else None

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
    on_done: Callable[..., None],
) -> TrustReviewDialog:
    """Show the review without blocking; ``on_done(candidates, chosen, by=KIND)`` runs
    when the person accepts (nothing happens on "Ask me later": the review stays
    pending)."""
    dialog = TrustReviewDialog(candidates, parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.accepted.connect(lambda: on_done(candidates, dialog.chosen(), by=dialog.by()))
    dialog.open()
    return dialog
