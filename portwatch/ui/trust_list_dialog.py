"""Monitor ▸ Trusted programs: what is trusted on which port, and a way to take it back."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
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

from portwatch.core.trust import TrustEntry, TrustList
from portwatch.services.plain_text import visible

ENTRY_ROLE = Qt.ItemDataRole.UserRole + 1


KIND_TITLES = {
    "hash": "by hash: this exact file",
    "package": "by package: any version the package manager installed and verifies",
    "signer": "by signer: any build with this verified signature",
}


def entry_text(entry: TrustEntry) -> str:
    """Plain-text lines for one entry (paths shown with escapes, full hashes)."""
    lines = [
        f"{entry.spec}  {visible(entry.exe) or 'any path'}",
        f"trusted {KIND_TITLES.get(entry.kind, entry.kind)}",
    ]
    if entry.sha256:
        lines.append(f"SHA-256: {entry.sha256}")
    if entry.package:
        version = f" (version {visible(entry.package_version)} when trusted)"
        lines.append(f"package: {visible(entry.package)}{version if entry.package_version else ''}")
    if entry.script_package:
        lines.append(f"script's package: {visible(entry.script_package)}")
    if entry.signer_id is not None:
        signer = entry.signer_id
        lines.append(f"signed by {visible(signer.label())}")
        for label, value in (
            ("subject", signer.subject),
            ("issuer", signer.issuer),
            ("thumbprint", signer.thumbprint),
        ):
            if value:
                lines.append(f"  {label}: {visible(value)}")
    elif entry.signer:
        lines.append(
            f"signed by {visible(entry.signer)}: NEEDS REVIEW - a name alone is not"
            " verified, so this entry trusts nothing until you trust the program again"
        )
    if entry.script:
        pin = f" (SHA-256 {entry.script_sha256})" if entry.script_sha256 else ""
        lines.append(f"script: {visible(entry.script)}{pin}")
    added = (
        time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.added_wall))
        if entry.added_wall
        else "unknown time"
    )
    lines.append(f"added {added}" + (f": {visible(entry.note)}" if entry.note else ""))
    return "\n".join(lines)


class TrustListDialog(QDialog):
    """Lists the trust entries; *Remove* asks (by signal) for the selected one to go."""

    remove_requested = Signal(object)
    """The :class:`TrustEntry` the person no longer trusts."""

    def __init__(self, trust_list: TrustList, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Trusted programs")
        intro = QLabel(
            "Each program may listen on its port without an alert, as long as its file "
            "is unchanged (by hash), still verifies against its installed package (by "
            "package: updates stay trusted), or carries the verified signature (by "
            "signer). The command line edits the same list: portwatch trust --help."
        )
        intro.setTextFormat(Qt.TextFormat.PlainText)
        intro.setWordWrap(True)
        self.list = QListWidget()
        self.list.setWordWrap(True)
        # Several lines per entry: space and alternating shades keep entries apart.
        self.list.setSpacing(4)
        self.list.setAlternatingRowColors(True)
        self.empty = QLabel("Nothing is trusted yet.")
        self.empty.setTextFormat(Qt.TextFormat.PlainText)
        self.remove_button = QPushButton("&Remove")
        self.remove_button.clicked.connect(self._remove_clicked)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.remove_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        self.list.currentRowChanged.connect(lambda _row: self._update_buttons())
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.empty)
        layout.addWidget(self.list, 1)
        layout.addWidget(buttons)
        self.resize(640, 400)
        self.set_trust_list(trust_list)

    @Slot(object)
    def set_trust_list(self, trust_list: TrustList) -> None:
        """Show ``trust_list`` (called again whenever the list changes)."""
        self.list.clear()
        for entry in trust_list.entries:
            item = QListWidgetItem(entry_text(entry))
            item.setData(ENTRY_ROLE, entry)
            self.list.addItem(item)
        self.empty.setVisible(not trust_list.entries)
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.remove_button.setEnabled(self.list.currentItem() is not None)

    @Slot()
    def _remove_clicked(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self.remove_requested.emit(item.data(ENTRY_ROLE))


def open_trust_list(parent: QWidget, service: Any) -> TrustListDialog:
    """Show Monitor ▸ Trusted programs for a ``TrustService``: removals go to the
    service, and the list follows every change (also ones made by the command line)."""
    dialog = TrustListDialog(service.trust_list, parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.remove_requested.connect(service.remove_entry)
    service.changed.connect(dialog.set_trust_list)
    dialog.finished.connect(lambda _result: service.changed.disconnect(dialog.set_trust_list))
    dialog.open()
    return dialog
