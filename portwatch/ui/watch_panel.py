"""The watched-ports list: each port or range, its name, and its state at a glance."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QModelIndex, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from portwatch.core.types import Proto
from portwatch.core.watchlist import SpecError, WatchList, WatchSpec, parse_spec
from portwatch.ui.icons import PortState, state_icon
from portwatch.ui.listener_model import STATUS_STATES
from portwatch.ui.status import clock_time

ServiceNamer = Callable[[int, Proto], str]

SpecRole = Qt.ItemDataRole.UserRole + 10


def spec_state(spec: WatchSpec, views: Sequence[Any]) -> tuple[PortState, int]:
    """The most worrying state among the listeners inside ``spec``, and how many there are."""
    state = PortState.QUIET
    count = 0
    for view in views:
        listener = view.listener
        if not spec.contains(listener.port, listener.proto):
            continue
        count += 1
        candidate = STATUS_STATES.get(view.status, PortState.UNATTRIBUTED)
        if candidate.severity > state.severity:
            state = candidate
    return state, count


def spec_name(spec: WatchSpec, namer: ServiceNamer) -> str:
    """A registered/known name for a single port, a short description for a range, or ""."""
    if spec.is_range:
        return f"range of {spec.hi - spec.lo + 1} ports"
    for proto in spec.protos:
        name = namer(spec.lo, proto)
        if name:
            return name
    return ""


class WatchPanel(QWidget):
    """Lists watched specs with their state; adds and removes specs."""

    add_requested = Signal(object)
    """A valid :class:`WatchSpec` the user wants to watch."""
    remove_requested = Signal(object)
    """A :class:`WatchSpec` the user wants to stop watching."""
    spec_selected = Signal(object)
    """The :class:`WatchSpec` now selected."""

    def __init__(self, namer: ServiceNamer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._namer = namer
        self._watchlist = WatchList()
        self._views: Sequence[Any] = ()
        self._snoozed: dict[WatchSpec, float] = {}

        title = QLabel("Watched ports")
        font = title.font()
        font.setBold(True)
        title.setFont(font)

        self.tree = QTreeWidget()
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["Port", "State", "Name"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.tree.header().setStretchLastSection(True)
        self.tree.currentItemChanged.connect(self._current_changed)
        self.tree.setAccessibleName("Watched ports")
        # At least five rows stay visible whatever else takes room (messages, the log).
        rows = self.tree.fontMetrics().height() + 6
        self.tree.setMinimumHeight(rows * 6)

        self.spec_edit = QLineEdit()
        self.spec_edit.setPlaceholderText("e.g. 3653, 3653/tcp or 3224-3324/udp")
        self.spec_edit.setAccessibleName("Port to watch")
        self.spec_edit.returnPressed.connect(self.submit)
        self.add_button = QPushButton("&Add")
        self.add_button.clicked.connect(self.submit)
        self.remove_button = QPushButton("&Remove")
        self.remove_button.setEnabled(False)
        self.remove_button.clicked.connect(self.remove_selected)

        self.message = QLabel()
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setWordWrap(True)
        self.message.setVisible(False)
        self.message.setAccessibleName("Watch list message")

        add_row = QHBoxLayout()
        add_row.addWidget(self.spec_edit, 1)
        add_row.addWidget(self.add_button)
        add_row.addWidget(self.remove_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(title)
        layout.addWidget(self.tree, 1)
        layout.addLayout(add_row)
        layout.addWidget(self.message)

    # -- input --------------------------------------------------------------------------
    @Slot()
    def submit(self) -> None:
        """Validate the typed spec; emit ``add_requested`` or show why it was refused."""
        text = self.spec_edit.text()
        try:
            spec = parse_spec(text)
        except SpecError as exc:
            self.show_message(str(exc), error=True)
            return
        if spec in self._watchlist.specs:
            self.show_message(f"{spec} is already watched.", error=False)
            return
        overlapping = [str(s) for s in self._watchlist.specs if s.overlaps(spec)]
        self.add_requested.emit(spec)
        # The file write behind the signal may fail (its error is shown instead): claim
        # success only when the list handed back to this panel has the spec.
        if spec in self._watchlist.specs:
            self.spec_edit.clear()
            note = f" (overlaps {', '.join(overlapping)})" if overlapping else ""
            self.show_message(f"Now watching {spec}{note}.", error=False)

    @Slot()
    def remove_selected(self) -> None:
        spec = self.selected_spec()
        if spec is not None:
            self.remove_requested.emit(spec)
            if spec not in self._watchlist.specs:
                self.show_message(f"Stopped watching {spec}.", error=False)

    def show_message(self, text: str, *, error: bool) -> None:
        """A one-line message under the input: why a spec was refused, or what happened."""
        self.message.setText(("Cannot add: " if error else "") + text)
        self.message.setProperty("error", error)
        role = self.palette().ColorRole.WindowText
        palette = self.message.palette()
        if error:
            palette.setColor(role, Qt.GlobalColor.red if self._dark() else Qt.GlobalColor.darkRed)
        else:
            palette.setColor(role, self.palette().color(role))
        self.message.setPalette(palette)
        self.message.setVisible(True)

    def _dark(self) -> bool:
        return self.palette().window().color().lightness() < 128

    # -- state --------------------------------------------------------------------------
    def selected_spec(self) -> WatchSpec | None:
        item = self.tree.currentItem()
        return item.data(0, SpecRole) if item is not None else None

    def _items(self) -> list[QTreeWidgetItem]:
        found = (self.tree.topLevelItem(row) for row in range(self.tree.topLevelItemCount()))
        return [item for item in found if item is not None]

    def select_port(self, port: int, proto: Proto | None = None) -> bool:
        """Select the spec that covers ``port``; True when one does."""
        for item in self._items():
            spec: WatchSpec = item.data(0, SpecRole)
            protos = (proto,) if proto is not None else spec.protos
            if any(spec.contains(port, p) for p in protos):
                self.tree.setCurrentItem(item)
                return True
        return False

    def follow_port(self, port: int, proto: Proto | None = None) -> None:
        """Select the spec covering ``port``, or nothing: never leave another highlighted."""
        if not self.select_port(port, proto):
            self.tree.setCurrentIndex(QModelIndex())
            self.tree.clearSelection()

    def set_watchlist(self, watchlist: WatchList) -> None:
        """Show a new watch list, keeping the selection when its spec is still there."""
        selected = self.selected_spec()
        self._watchlist = watchlist
        self.tree.clear()
        for spec in watchlist.specs:
            name = spec_name(spec, self._namer)
            item = QTreeWidgetItem([str(spec), "", name or "\u2014"])
            item.setToolTip(2, name or "no registered name for this port")
            item.setData(0, SpecRole, spec)
            self.tree.addTopLevelItem(item)
            if spec == selected:
                self.tree.setCurrentItem(item)
        self._refresh_states()

    def set_views(self, views: Sequence[Any]) -> None:
        """Update each spec's state from the latest tick's listener views."""
        self._views = views
        self._refresh_states()

    def set_snoozed(self, snoozed: dict[WatchSpec, float]) -> None:
        """Mark snoozed specs (spec -> wall time the snooze ends) until it ends."""
        self._snoozed = dict(snoozed)
        self._refresh_states()

    def state_of(self, spec: WatchSpec) -> PortState:
        return spec_state(spec, self._views)[0]

    def _refresh_states(self) -> None:
        for item in self._items():
            spec: WatchSpec = item.data(0, SpecRole)
            state, count = spec_state(spec, self._views)
            text = state.label
            if count > 1:
                text += f" \u00d7{count}"
            tip = f"{count} listener(s): {state.label}"
            until = self._snoozed.get(spec)
            if until is not None:
                # Visible for as long as the snooze lasts, next to the state it silences.
                text += f", snoozed to {clock_time(until)}"
                tip += f"; desktop alerts snoozed until {clock_time(until)}"
            if item.text(1) != text:
                item.setText(1, text)
                item.setIcon(1, state_icon(state))
                item.setToolTip(1, tip)

    @Slot(QTreeWidgetItem, QTreeWidgetItem)
    def _current_changed(self, current: QTreeWidgetItem | None, _previous: object) -> None:
        self.remove_button.setEnabled(current is not None)
        if current is not None:
            self.spec_selected.emit(current.data(0, SpecRole))
