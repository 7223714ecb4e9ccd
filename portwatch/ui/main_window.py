"""The main window: watched ports, live chart, listeners table, port panel, banners, menus."""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QItemSelection, QModelIndex, QStandardPaths, Qt, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from portwatch import APP_NAME, __version__
from portwatch.config.autostart import Autostart
from portwatch.core.alert_policy import SNOOZE_HOUR_S, seconds_until_tomorrow
from portwatch.core.types import Proto, Status
from portwatch.core.watchlist import WatchList, WatchSpec
from portwatch.services import settings as settings_file
from portwatch.services.background import JobRunner
from portwatch.services.history_lookup import HistoryLookup
from portwatch.services.notify import LoggedAlert
from portwatch.services.os_integration import uses_native_menu_bar
from portwatch.services.settings import Settings
from portwatch.services.watchlist_file import WatchListFile
from portwatch.ui.alert_log import AlertLog
from portwatch.ui.banner import Banner
from portwatch.ui.chart import ActivityChart, rows_to_points
from portwatch.ui.history_dialog import HistoryDialog
from portwatch.ui.icons import app_icon
from portwatch.ui.listener_model import (
    Column,
    ListenerFilterModel,
    ListenerTableModel,
    ViewRole,
    views_for_port,
)
from portwatch.ui.port_panel import Describer, PortPanel
from portwatch.ui.settings_dialog import SettingsDialog
from portwatch.ui.watch_panel import ServiceNamer, WatchPanel

log = logging.getLogger(__name__)

# Writes the listeners CSV to a path: (path, watched_only) -> rows written.
ExportFunction = Callable[[Path, bool], int]
# A range is filled from history port by port; beyond this many ports it is skipped.
HISTORY_FILL_MAX_PORTS = 32


def default_export_name(now: float | None = None) -> str:
    """``portwatch-listeners-YYYYMMDD-HHMM.csv`` for the save dialog."""
    return time.strftime("portwatch-listeners-%Y%m%d-%H%M.csv", time.localtime(now))


def partial_advice(reason: str | None) -> str:
    """The partial-sample banner text: what is missing and what the user can do."""
    missing = reason or "the OS showed only part of the system's sockets"
    return (
        f"Only part of the system is visible: {missing}. Listeners owned by other users may "
        "be missing or shown without their program. To see everything, run portwatch as an "
        "administrator (for example with sudo), or accept that only your own programs are "
        "checked."
    )


class MainWindow(QMainWindow):
    """Shows each tick; edits the watch list; exports; asks for settings."""

    pause_requested = Signal()
    resume_requested = Signal()
    quit_requested = Signal()
    settings_changed = Signal(object)
    """The new :class:`Settings`, already saved."""
    interval_changed = Signal(float)
    notifications_toggled = Signal(bool)
    cooldown_changed = Signal(float)
    alert_arrived = Signal(object)
    alerts_paused_requested = Signal(bool)
    """The user paused (True) or resumed (False) every desktop alert."""
    snooze_requested = Signal(object, float)
    """(WatchSpec, seconds): no desktop alerts for that spec for a while; 0 ends it."""
    """Each :class:`Alert` of a tick, for the notifier."""
    trusted_programs_requested = Signal()
    """Monitor \u25b8 Trusted programs: whoever wires the trust list opens its dialog."""
    alert_state_changed = Signal(bool, str)
    """(an unknown owner holds a watched port, why) for the tray icon."""
    tick_shown = Signal(int)
    """How many ticks have been shown so far."""
    export_finished = Signal(object, object)
    """(path, error or None) when an export ends."""

    def __init__(
        self,
        *,
        watch_file: WatchListFile,
        history: HistoryLookup,
        describe: Describer,
        namer: ServiceNamer,
        settings: Settings,
        settings_path: Path,
        export: ExportFunction | None,
        jobs: JobRunner,
        autostart: Autostart | None = None,
        autostart_command: Sequence[str] = (),
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._autostart = autostart
        self._autostart_command = list(autostart_command)
        self.setWindowTitle(APP_NAME)
        self.setWindowIcon(app_icon())
        self._watch_file = watch_file
        self._history = history
        self._settings = settings
        self._settings_path = settings_path
        self._export = export
        self._jobs = jobs
        self._views: Sequence[Any] = ()
        self._ticks = 0
        self._paused = False
        self._alert_state: tuple[bool, str] = (False, "")
        self._last_sample: Any = None
        self._shown_proto: Proto | None = None
        self.hide_to_tray = False
        self._quitting = False

        # -- widgets --------------------------------------------------------------------
        self.partial_banner = Banner(dismissable=False)
        self.partial_banner.setObjectName("partialBanner")
        self.notice_banner = Banner(dismissable=True)
        self.notice_banner.setObjectName("noticeBanner")

        self.watch_panel = WatchPanel(namer)
        self.watch_panel.add_requested.connect(self._add_spec)
        self.watch_panel.remove_requested.connect(self._remove_spec)
        self.watch_panel.spec_selected.connect(self._spec_selected)

        self.chart = ActivityChart()
        self.chart.set_interval(settings.poll_interval_s)
        self.chart.window_changed.connect(self._fill_chart_from_history)

        self.model = ListenerTableModel(self)
        self.proxy = ListenerFilterModel(self)
        self.proxy.setSourceModel(self.model)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(Column.WATCHED, Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.table.selectionModel().selectionChanged.connect(self._table_selection_changed)
        self.table.setAccessibleName("Listeners")
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter listeners (port, program, user, address\u2026)")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self.proxy.set_filter_text)
        self.listeners_title = QLabel("Listeners")
        font = self.listeners_title.font()
        font.setBold(True)
        self.listeners_title.setFont(font)

        self.port_panel = PortPanel(describe, history.first_last_seen)
        self.port_panel.history_requested.connect(self.open_history)
        self.port_panel.command_copied.connect(
            lambda command: self.statusBar().showMessage(
                f"Copied to the clipboard: {command}", 5000
            )
        )

        table_box = QWidget()
        table_layout = QVBoxLayout(table_box)
        table_layout.setContentsMargins(0, 0, 0, 0)
        table_layout.addWidget(self.listeners_title)
        table_layout.addWidget(self.filter_edit)
        table_layout.addWidget(self.table, 1)

        self.middle = QSplitter(Qt.Orientation.Vertical)
        self.middle.addWidget(self.chart)
        self.middle.addWidget(table_box)
        self.middle.setStretchFactor(0, 2)
        self.middle.setStretchFactor(1, 3)
        self.middle.setChildrenCollapsible(False)

        # Left: the watched ports with the selected port's details under them; the chart
        # and the table get the rest of the width (the table has many columns).
        self.left = QSplitter(Qt.Orientation.Vertical)
        self.left.addWidget(self.watch_panel)
        self.left.addWidget(self.port_panel)
        self.left.setStretchFactor(0, 1)
        self.left.setStretchFactor(1, 3)
        self.left.setChildrenCollapsible(False)

        self.columns = QSplitter(Qt.Orientation.Horizontal)
        self.columns.addWidget(self.left)
        self.columns.addWidget(self.middle)
        self.columns.setStretchFactor(0, 0)
        self.columns.setStretchFactor(1, 1)
        self.columns.setChildrenCollapsible(False)

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addWidget(self.partial_banner)
        layout.addWidget(self.notice_banner)
        layout.addWidget(self.columns, 1)
        self.setCentralWidget(central)

        self.alert_log = AlertLog()
        self.alert_log.open_requested.connect(self.open_alert)
        self.alert_dock = QDockWidget("Alert log", self)
        self.alert_dock.setObjectName("alertLogDock")
        self.alert_dock.setWidget(self.alert_log)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.alert_dock)
        self.alert_dock.hide()
        self._dock_sized = False
        self.alert_dock.visibilityChanged.connect(self._size_alert_dock)

        self.status_text = QLabel("Waiting for the first check\u2026")
        self.status_text.setTextFormat(Qt.TextFormat.PlainText)
        self.statusBar().addPermanentWidget(self.status_text)

        self._build_menus()
        # Follow the system's light/dark switch while running (the palette follows it;
        # the chart's background and axes are drawn by pyqtgraph and need telling).
        QGuiApplication.styleHints().colorSchemeChanged.connect(self._scheme_changed)
        self.set_watchlist(watch_file.watchlist)
        watch_file.changed.connect(self.set_watchlist)
        watch_file.problems.connect(self.show_notices)
        if watch_file.initial_problems():
            self.show_notices(watch_file.initial_problems())
        self._size_to_screen()

    @Slot(bool)
    def _size_alert_dock(self, visible: bool) -> None:
        # The first time it opens, a strip of about eight lines: the chart keeps its room.
        if visible and not self._dock_sized:
            self._dock_sized = True
            lines = self.fontMetrics().height() * 8
            self.resizeDocks([self.alert_dock], [lines], Qt.Orientation.Vertical)

    @Slot(Qt.ColorScheme)
    def _scheme_changed(self, _scheme: Qt.ColorScheme) -> None:
        self.chart.apply_palette()

    # -- construction helpers -----------------------------------------------------------
    def _size_to_screen(self) -> None:
        line = self.fontMetrics().height()
        width, height = line * 90, line * 50
        self.resize(width, height)
        left = line * 24
        self.columns.setSizes([left, width - left])
        self.left.setSizes([line * 12, height - line * 12])

    def _action(
        self, menu: Any, text: str, slot: Callable[..., Any], shortcut: Any = None
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        bar.setNativeMenuBar(uses_native_menu_bar())
        file_menu = bar.addMenu("&File")
        self.export_action = self._action(
            file_menu, "&Export CSV\u2026", self.ask_export, QKeySequence.StandardKey.Save
        )
        self.settings_action = self._action(
            file_menu, "Se&ttings\u2026", self.open_settings, QKeySequence.StandardKey.Preferences
        )
        if self.settings_action.shortcut().isEmpty():
            self.settings_action.setShortcut(QKeySequence("Ctrl+,"))
        file_menu.addSeparator()
        self._action(file_menu, "&Close window", self.close, QKeySequence.StandardKey.Close)
        self.quit_action = self._action(
            file_menu, "&Quit", self.request_quit, QKeySequence.StandardKey.Quit
        )
        if self.quit_action.shortcut().isEmpty():
            self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))

        monitor = bar.addMenu("&Monitor")
        self.pause_action = self._action(monitor, "&Pause monitoring", self.toggle_pause, "Ctrl+P")
        monitor.addSeparator()
        self._action(monitor, "&Watch a port\u2026", self.focus_add, QKeySequence.StandardKey.New)
        self._action(
            monitor, "&Stop watching the selected port", self.watch_panel.remove_selected, "Ctrl+D"
        )
        self._action(monitor, "Port &history\u2026", self._history_of_selection, "Ctrl+H")
        self._action(
            monitor, "&Copy check command", self.port_panel.copy_check_command, "Ctrl+Shift+C"
        )
        monitor.addSeparator()
        alerts = monitor.addMenu("&Alerts")
        self.alerts_pause_action = self._action(
            alerts,
            "&Pause all alerts",
            lambda _checked=False: self.alerts_paused_requested.emit(
                self.alerts_pause_action.isChecked()
            ),
            "Ctrl+Shift+P",
        )
        self.alerts_pause_action.setCheckable(True)
        self._action(
            alerts,
            "Snooze the selected port for 1 &hour",
            lambda _checked=False: self._snooze_selection(SNOOZE_HOUR_S),
            "Ctrl+Shift+S",
        )
        self._action(
            alerts,
            "Snooze the selected port until &tomorrow",
            lambda _checked=False: self._snooze_selection(None),
        )
        self._action(
            alerts,
            "&Stop snoozing the selected port",
            lambda _checked=False: self._snooze_selection(0.0),
        )
        self.trusted_action = self._action(
            monitor,
            "&Trusted programs\u2026",
            lambda _checked=False: self.trusted_programs_requested.emit(),
            "Ctrl+T",
        )

        view = bar.addMenu("&View")
        for index, (label, seconds) in enumerate(
            (("Last &5 minutes", 300.0), ("Last &hour", 3600.0), ("Last &24 hours", 86400.0))
        ):
            self._action(
                view,
                label,
                lambda _c=False, s=seconds: self.chart.set_window(s),
                f"Ctrl+{index + 1}",
            )
        view.addSeparator()
        self._action(view, "&Filter listeners", self.focus_filter, QKeySequence.StandardKey.Find)
        toggle = self.alert_dock.toggleViewAction()
        toggle.setText("&Alert log")
        toggle.setShortcut(QKeySequence("Ctrl+L"))
        view.addAction(toggle)

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&About portwatch", self._about)

    # -- ticks --------------------------------------------------------------------------
    @Slot(object)
    def show_tick(self, result: Any) -> None:
        """Show one tick's result everywhere (runs on the GUI thread)."""
        views = tuple(result.views)
        self._views = views
        sample = result.sample
        self._last_sample = sample
        was_empty = self.model.rowCount() == 0
        self.model.update(views)
        if was_empty and views:
            self.table.resizeColumnsToContents()
        self.watch_panel.set_views(views)
        self.chart.add_sample(sample)
        if self.port_panel.port is not None:
            self.port_panel.set_views(
                views_for_port(views, self.port_panel.port, self._shown_proto)
            )
        if getattr(sample, "partial", False):
            self.partial_banner.show_messages([partial_advice(sample.partial_reason)])
        else:
            self.partial_banner.show_messages([])
        warnings = list(getattr(result, "warnings", ()) or ())
        if warnings:
            self.statusBar().showMessage("; ".join(warnings), 10_000)
        for alert in getattr(result, "alerts", ()) or ():
            self.alert_arrived.emit(alert)
        self._update_alert_state(views)
        self._ticks += 1
        watched = sum(1 for v in views if v.watched)
        stamp = time.strftime("%H:%M:%S", time.localtime(sample.wall))
        paused = " \u2014 paused" if self._paused else ""
        self.status_text.setText(
            f"Last check {stamp}: {len(views)} listeners, {watched} on watched ports{paused}"
        )
        if self._ticks == 1 and self.port_panel.port is None and self._watch_file.watchlist.specs:
            self.watch_panel.tree.setCurrentItem(self.watch_panel.tree.topLevelItem(0))
        self.tick_shown.emit(self._ticks)

    @property
    def ticks_shown(self) -> int:
        return self._ticks

    def _update_alert_state(self, views: Sequence[Any]) -> None:
        unknown = [v for v in views if v.watched and v.status is Status.UNKNOWN]
        why = ""
        if unknown:
            first = unknown[0].listener
            who = first.owner.name if first.owner is not None and first.owner.name else "?"
            why = f"unknown owner {who} on {first.port}/{first.proto}"
            if len(unknown) > 1:
                why += f" and {len(unknown) - 1} more"
        state = (bool(unknown), why)
        if state != self._alert_state:
            self._alert_state = state
            self.alert_state_changed.emit(*state)

    @Slot(list)
    def show_notices(self, lines: list[str]) -> None:
        """Store notices and watch-list file problems, in the dismissable banner."""
        self.notice_banner.add_messages(list(lines))

    @Slot(str)
    def show_failure(self, message: str) -> None:
        self.notice_banner.add_messages([message])

    @Slot(object)
    def log_alert(self, entry: LoggedAlert) -> None:
        self.alert_log.add(entry)
        self.statusBar().showMessage(
            f"Alert: {entry.alert.title} (View \u25b8 Alert log lists every alert)", 15_000
        )

    # -- watch list ---------------------------------------------------------------------
    @Slot(object)
    def set_watchlist(self, watchlist: WatchList) -> None:
        self.watch_panel.set_watchlist(watchlist)
        self.chart.set_watchlist(watchlist)
        self._fill_chart_from_history(self.chart.window_s)

    @Slot(object)
    def _add_spec(self, spec: WatchSpec) -> None:
        try:
            self._watch_file.add(spec)
        except OSError as exc:
            self.watch_panel.show_message(
                f"cannot write {self._watch_file.path}: {exc.strerror or exc}", error=True
            )

    @Slot(object)
    def _remove_spec(self, spec: WatchSpec) -> None:
        try:
            self._watch_file.remove(spec)
        except OSError as exc:
            self.watch_panel.show_message(
                f"cannot write {self._watch_file.path}: {exc.strerror or exc}", error=True
            )

    @Slot()
    def focus_add(self) -> None:
        self.watch_panel.spec_edit.setFocus()

    @Slot()
    def focus_filter(self) -> None:
        self.filter_edit.setFocus()
        self.filter_edit.selectAll()

    # -- chart history ------------------------------------------------------------------
    @Slot(float)
    def _fill_chart_from_history(self, window_s: float) -> None:
        until = time.time()
        since = until - window_s
        # History comes in buckets (10 s, 1 min, ...); a missing bucket is a real gap.
        step = max(self._history.bucket_seconds(window_s), self._settings.poll_interval_s)
        for spec in self.chart.specs():
            if spec.hi - spec.lo + 1 > HISTORY_FILL_MAX_PORTS:
                continue
            rows = [
                self._history.activity(port, proto, since, until)
                for port in range(spec.lo, spec.hi + 1)
                for proto in spec.protos
            ]
            if any(rows):
                self.chart.load_history(spec, rows_to_points(rows, step))
        self.chart.redraw()

    # -- selection and the side panel ---------------------------------------------------
    def show_port(self, port: int, proto: Proto | None = None) -> None:
        """Describe ``port`` in the side panel."""
        self._shown_proto = proto
        self.port_panel.show_port(port, proto, views_for_port(self._views, port, proto))

    @Slot(object)
    def _spec_selected(self, spec: WatchSpec) -> None:
        proto = spec.protos[0] if len(spec.protos) == 1 else None
        port = spec.lo
        if spec.is_range:
            busy = [
                v.listener.port
                for v in self._views
                if spec.contains(v.listener.port, v.listener.proto)
            ]
            port = min(busy) if busy else spec.lo
        self.show_port(port, proto)

    @Slot(QItemSelection, QItemSelection)
    def _table_selection_changed(self, selected: QItemSelection, _old: QItemSelection) -> None:
        indexes = selected.indexes()
        if not indexes:
            return
        view = self.proxy.data(indexes[0], ViewRole)
        if view is not None:
            self.show_port(view.listener.port, view.listener.proto)

    def select_listener_row(self, row: int) -> None:
        """Select a source-model row in the table (tests, alert clicks)."""
        index = self.proxy.mapFromSource(self.model.index(row, 0))
        if index.isValid():
            self.table.selectRow(index.row())
            self.table.scrollTo(index)

    @Slot(object)
    def open_alert(self, alert: Any) -> None:
        """Bring the window up on an alert's port (notification or log click)."""
        self.bring_to_front()
        port = getattr(alert, "port", None)
        if port is None:
            return
        proto = getattr(alert, "proto", None)
        self.watch_panel.select_port(port, proto)
        self.show_port(port, proto)
        row = self.model.row_of(port, proto)
        if row >= 0:
            self.select_listener_row(row)

    @Slot()
    def bring_to_front(self) -> None:
        self.show()
        self.setWindowState(
            (self.windowState() & ~Qt.WindowState.WindowMinimized) | Qt.WindowState.WindowActive
        )
        self.raise_()
        self.activateWindow()

    @Slot()
    def _history_of_selection(self) -> None:
        if self.port_panel.port is not None:
            self.open_history(self.port_panel.port, self._shown_proto)

    @Slot(int, object)
    def open_history(self, port: int, proto: Proto | None) -> HistoryDialog:
        events = self._history.events_for(port, proto)
        title = f"History of port {port}" + (f"/{proto}" if proto else "")
        dialog = HistoryDialog(title, events, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    # -- pause --------------------------------------------------------------------------
    @Slot()
    def toggle_pause(self) -> None:
        if self._paused:
            self.resume_requested.emit()
        else:
            self.pause_requested.emit()

    @Slot(bool)
    def set_paused(self, paused: bool) -> None:
        self._paused = paused
        self.pause_action.setText("&Resume monitoring" if paused else "&Pause monitoring")
        self.statusBar().showMessage("Monitoring paused" if paused else "Monitoring resumed", 5000)

    # -- export -------------------------------------------------------------------------
    def _default_export_folder(self) -> Path:
        folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
        return Path(folder) if folder else Path.home()

    @Slot()
    def ask_export(self) -> None:
        """Ask where to save, then export on a worker thread."""
        if self._export is None:
            self._error("Export is not available", "This build cannot export yet.")
            return
        self.bring_to_front()
        suggested = str(self._default_export_folder() / default_export_name())
        path, _filter = QFileDialog.getSaveFileName(
            self, "Export listeners as CSV", suggested, "CSV files (*.csv);;All files (*)"
        )
        if path:
            self.export_to(Path(path))

    def export_to(self, path: Path, watched_only: bool = False) -> None:
        """Export the listener history to ``path`` off the GUI thread."""
        export = self._export
        if export is None:
            self._error("Export is not available", "This build cannot export yet.")
            return
        self.export_action.setEnabled(False)
        self.statusBar().showMessage(f"Exporting to {path}\u2026")
        self._jobs.submit(
            lambda: export(path, watched_only),
            lambda count: self._export_done(path, count),
            lambda exc: self._export_failed(path, exc),
        )

    def _export_done(self, path: Path, count: Any) -> None:
        self.export_action.setEnabled(True)
        rows = f"{count} rows " if isinstance(count, int) else ""
        self.statusBar().showMessage(f"Exported {rows}to {path}", 10_000)
        self.export_finished.emit(path, None)

    def _export_failed(self, path: Path, exc: BaseException) -> None:
        self.export_action.setEnabled(True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        self._error("Export failed", f"Could not write {path}:\n{reason}")
        self.export_finished.emit(path, exc)

    def _error(self, title: str, text: str) -> QMessageBox:
        box = QMessageBox(
            QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self
        )
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()  # not exec(): the event loop (and monitoring) keeps running
        return box

    # -- settings -----------------------------------------------------------------------
    @Slot()
    def open_settings(self) -> SettingsDialog:
        dialog = SettingsDialog(self._settings, self, autostart=self._autostart)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.apply_settings(dialog.result_settings()))
        dialog.accepted.connect(lambda: self.apply_start_at_login(dialog.start_at_login_change()))
        dialog.open()
        return dialog

    def _snooze_selection(self, seconds: float | None) -> None:
        """Ask for a snooze of the selected watched port: seconds, None for "until
        tomorrow", 0 to end one."""
        spec = self.watch_panel.selected_spec()
        if spec is None:
            self.statusBar().showMessage("Select a watched port to snooze its alerts.", 8000)
            return
        if seconds is None:
            seconds = seconds_until_tomorrow(datetime.datetime.now().astimezone())
        self.snooze_requested.emit(spec, float(seconds))
        if seconds:
            until = time.strftime("%a %H:%M", time.localtime(time.time() + seconds))
            text = f"Desktop alerts for {spec} are snoozed until {until}; the log keeps them."
        else:
            text = f"Desktop alerts for {spec} are back on."
        self.statusBar().showMessage(text, 15_000)

    @Slot(bool)
    def set_alerts_paused(self, paused: bool) -> None:
        """Reflect the alert pause in the menu and the status bar."""
        self.alerts_pause_action.blockSignals(True)
        self.alerts_pause_action.setChecked(paused)
        self.alerts_pause_action.blockSignals(False)
        self.statusBar().showMessage(
            "Desktop alerts paused: the alert log still records every alert."
            if paused
            else "Desktop alerts resumed.",
            15_000,
        )

    def apply_start_at_login(self, enable: bool | None) -> None:
        """Write or remove the OS's start-at-login entry; errors shown with the reason."""
        if enable is None or self._autostart is None:
            return
        try:
            if enable:
                self._autostart.enable(self._autostart_command)
            else:
                self._autostart.disable()
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self._error(
                "Start at login not changed",
                f"Could not update {self._autostart.location}:\n{reason}",
            )

    def apply_settings(self, new: Settings) -> None:
        """Save ``new`` and tell everyone who cares what changed."""
        try:
            settings_file.save(self._settings_path, new)
        except OSError as exc:
            self._error(
                "Settings not saved",
                f"Could not write {self._settings_path}:\n{exc.strerror or exc}",
            )
            return
        old, self._settings = self._settings, new
        if new.poll_interval_s != old.poll_interval_s:
            self.chart.set_interval(new.poll_interval_s)
            self.interval_changed.emit(new.poll_interval_s)
        if new.notifications != old.notifications:
            self.notifications_toggled.emit(new.notifications)
        if new.alert_cooldown_s != old.alert_cooldown_s:
            self.cooldown_changed.emit(new.alert_cooldown_s)
        self.settings_changed.emit(new)

    # -- closing ------------------------------------------------------------------------
    @Slot()
    def request_quit(self) -> None:
        self._quitting = True
        self.quit_requested.emit()

    def request_quit_silently(self) -> None:
        """Mark the window as quitting without asking anyone (used at shutdown)."""
        self._quitting = True

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.hide_to_tray and not self._quitting:
            # With a tray, closing hides the window; monitoring goes on.
            event.ignore()
            self.hide()
            self.statusBar().clearMessage()
            return
        event.accept()
        if not self._quitting:
            self.request_quit()

    def _about(self) -> None:
        QMessageBox.about(
            self,
            "About portwatch",
            f"portwatch {__version__}\nWatches network ports and tells you who listens on them.",
        )

    def current_index_for(self, port: int) -> QModelIndex:
        row = self.model.row_of(port)
        return self.model.index(row, 0) if row >= 0 else QModelIndex()
