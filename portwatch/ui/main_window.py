"""The main window: watched ports, live chart, listeners table, port panel, banners, menus.

A view, not a controller: what it shows comes from the engine's ticks, the alert
service's log and state, and the services it is given (settings, exports, the chart's
history on the thread pool, start at login). Its commands live in ``ui.actions``.
"""

from __future__ import annotations

import datetime
import functools
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QItemSelection, QRect, QStandardPaths, Qt, Signal, Slot
from PySide6.QtGui import (
    QCloseEvent,
    QGuiApplication,
    QHideEvent,
    QKeySequence,
    QResizeEvent,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QSizePolicy,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from portwatch import APP_NAME, __version__
from portwatch.core.alert_policy import SNOOZE_HOUR_S, seconds_until_tomorrow
from portwatch.core.alerts import Alert
from portwatch.core.types import ListenerView, Proto, Sample
from portwatch.core.watchlist import WatchList, WatchSpec
from portwatch.engine.monitor import TickResult
from portwatch.services.alert_service import AlertState
from portwatch.services.chart_history import ChartHistory, ChartHistoryLoader
from portwatch.services.export_service import ExportService
from portwatch.services.history_lookup import HistoryLookup
from portwatch.services.login_start import LoginStart
from portwatch.services.notify import LoggedAlert
from portwatch.services.os_integration import uses_native_menu_bar
from portwatch.services.settings_service import SettingsService
from portwatch.services.watchlist_file import WatchListFile
from portwatch.ui.actions import CHART_WINDOWS, MENU_BAR, ActionRegistry
from portwatch.ui.alert_log import AlertLog
from portwatch.ui.banner import Banner
from portwatch.ui.chart import ActivityChart
from portwatch.ui.chart_data import sum_port_rows
from portwatch.ui.column_chooser import ColumnChooser
from portwatch.ui.connections_tab import ConnectionsTab
from portwatch.ui.elided_label import ElidedLabel
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
from portwatch.ui.row_actions import RowActions, WatchListMenu, select_port_rows
from portwatch.ui.row_table import row_table
from portwatch.ui.settings_dialog import SettingsDialog
from portwatch.ui.status import status_line
from portwatch.ui.status_bar import StatusBar
from portwatch.ui.watch_panel import ServiceNamer, WatchPanel

log = logging.getLogger(__name__)


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


def fit_to_screen(width: int, height: int, available: QRect) -> tuple[int, int]:
    """The wanted size, shrunk to at most 90 % of the screen's free area (high scaling
    makes a font-based size larger than a small screen)."""
    return (
        max(1, min(width, available.width() * 9 // 10)),
        max(1, min(height, available.height() * 9 // 10)),
    )


class MainWindow(QMainWindow):
    """Shows each tick, the alert log and the alert state; edits the watch list."""

    pause_requested = Signal()
    resume_requested = Signal()
    quit_requested = Signal()
    # The window went to the tray by its close button: the first time, say where it went.
    hidden_to_tray = Signal()
    alerts_paused_requested = Signal(bool)
    """The user paused (True) or resumed (False) every desktop alert."""
    snooze_requested = Signal(object, float)
    """(WatchSpec, seconds): no desktop alerts for that spec for a while; 0 ends it."""
    trusted_programs_requested = Signal()
    """Monitor \u25b8 Trusted programs: whoever wires the trust list opens its dialog."""
    tick_shown = Signal(int)
    """How many ticks have been shown so far."""
    export_finished = Signal(object, object)
    """(path, error or None) when an export ends."""
    connections_wanted = Signal(bool, bool)
    """(wanted, every port): list connections while the Connections tab is on screen."""

    def __init__(
        self,
        *,
        watch_file: WatchListFile,
        history: HistoryLookup,
        describe: Describer,
        namer: ServiceNamer,
        settings: SettingsService,
        exports: ExportService,
        chart_history: ChartHistoryLoader,
        login_start: LoginStart | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(APP_NAME)
        self.setWindowIcon(app_icon())
        self._watch_file = watch_file
        self._history = history
        self._settings = settings
        self._exports = exports
        self._chart_history = chart_history
        self._login_start = login_start or LoginStart(None, ())
        self._views: Sequence[ListenerView] = ()
        self._ticks = 0
        self._paused = False
        self._alert_state = AlertState()
        self._last_sample: Sample | None = None
        self._failed_wall: float | None = None  # a poll that failed after the last good one
        self._shown_proto: Proto | None = None
        self.hide_to_tray = False
        self._quitting = False
        self._told_about_tray = False

        self._syncing_selection = False

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
        self.chart.set_interval(settings.current.poll_interval_s)
        self.chart.window_changed.connect(self._fill_chart_from_history)
        chart_history.loaded.connect(self._chart_history_loaded)
        settings.interval_changed.connect(self.chart.set_interval)

        self.model = ListenerTableModel(self)
        self.proxy = ListenerFilterModel(self)
        self.proxy.setSourceModel(self.model)
        self.table = row_table(
            self.proxy, "Listeners", Column.WATCHED, Qt.SortOrder.DescendingOrder
        )
        self.table.selectionModel().selectionChanged.connect(self._table_selection_changed)
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

        self.row_actions = RowActions(
            self.table, trust_enabled=lambda: self.port_panel.trust_enabled
        )
        self.row_actions.describe_requested.connect(
            lambda view: self.select_port_everywhere(view.listener.port, view.listener.proto)
        )
        self.row_actions.trust_requested.connect(self.port_panel.trust_requested)
        self.row_actions.history_requested.connect(self.open_history)
        self.row_actions.message.connect(lambda text: self.statusBar().showMessage(text, 10_000))
        self.column_chooser = ColumnChooser(self.table, settings)

        table_box = QWidget()
        table_layout = QVBoxLayout(table_box)
        table_layout.setContentsMargins(0, 0, 0, 0)
        table_layout.addWidget(self.filter_edit)
        table_layout.addWidget(self.table, 1)
        # The tab's own title says "Listeners"; the label stays for whoever looks it up.
        self.listeners_title.hide()

        self.connections_tab = ConnectionsTab(settings)
        self.connections_tab.wanted_changed.connect(lambda _every: self._follow_connections())
        self.connections_tab.row_actions.describe_requested.connect(self.select_port_everywhere)
        self.connections_tab.row_actions.message.connect(
            lambda text: self.statusBar().showMessage(text, 10_000)
        )
        self.tabs = QTabWidget()
        self.tabs.setObjectName("tableTabs")
        self.tabs.addTab(table_box, "&Listeners")
        self.tabs.addTab(self.connections_tab, "&Connections")
        self.tabs.currentChanged.connect(lambda _index: self._follow_connections())
        self._connections_asked: tuple[bool, bool] | None = None

        self.middle = QSplitter(Qt.Orientation.Vertical)
        self.middle.addWidget(self.chart)
        self.middle.addWidget(self.tabs)
        # Chart and tables share the height alike (see _size_to_screen for the start).
        self.middle.setStretchFactor(0, 1)
        self.middle.setStretchFactor(1, 1)
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

        # The permanent line: what was last seen and every state that silences something
        # (paused monitoring, paused alerts, snoozed ports, the pending review).
        # Whole when there is room; shortened with "…" (whole in its tooltip) only when the
        # window is too narrow for it, and passing messages are elided to its left.
        self.setStatusBar(StatusBar(self))
        self.status_text = ElidedLabel("Waiting for the first check\u2026")
        self.status_text.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.status_text.setObjectName("statusLine")
        self.statusBar().addPermanentWidget(self.status_text)

        self.commands = ActionRegistry(self)
        self._wire_actions()
        # Follow the system's light/dark switch while running (the palette follows it;
        # the chart's background and axes are drawn by pyqtgraph and need telling).
        QGuiApplication.styleHints().colorSchemeChanged.connect(self._scheme_changed)
        exports.started.connect(self._export_started)
        exports.finished.connect(self._export_done)
        exports.failed.connect(self._export_failed)
        settings.failed.connect(self._error)
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
        available = self.screen().availableGeometry()
        width, height = fit_to_screen(line * 90, line * 50, available)
        self.resize(width, height)
        # Centred on the screen's free area, so no edge starts off-screen.
        self.move(
            available.x() + (available.width() - width) // 2,
            available.y() + (available.height() - height) // 2,
        )
        left = line * 28
        self.columns.setSizes([left, width - left])
        self.left.setSizes([line * 12, height - line * 12])
        # Near half and half, the tables a little more: they show a screenful of rows
        # (about eight at the default size) and the chart keeps both of its plots.
        self.middle.setSizes([height * 9 // 20, height * 11 // 20])

    def _wire_actions(self) -> None:
        actions = self.commands
        toggle = actions.adopt("alert_log", self.alert_dock.toggleViewAction())
        toggle.setText("&Alert log")
        toggle.setShortcut(QKeySequence("Ctrl+L"))
        for key, slot in {
            "export": self.ask_export,
            "settings": self.open_settings,
            "close": self.close,
            "quit": self.request_quit,
            "pause": self.toggle_pause,
            "watch": self.focus_add,
            "unwatch": self.watch_panel.remove_selected,
            "history": self._history_of_selection,
            "copy_check": self.port_panel.copy_check_command,
            "alerts_pause": lambda: self.alerts_paused_requested.emit(
                self.commands["alerts_pause"].isChecked()
            ),
            "snooze_hour": lambda: self._snooze_selection(SNOOZE_HOUR_S),
            "snooze_tomorrow": lambda: self._snooze_selection(None),
            "unsnooze": lambda: self._snooze_selection(0.0),
            "trusted": self.trusted_programs_requested.emit,
            "filter": self.focus_filter,
            "about": self._about,
        }.items():
            actions.connect(key, slot)
        for key, seconds in CHART_WINDOWS.items():
            actions.connect(key, functools.partial(self.chart.set_window, seconds))
        # Inside the window on macOS, where an accessory (Dock-less) app has no menu bar.
        self.menuBar().setNativeMenuBar(uses_native_menu_bar())
        actions.fill(self.menuBar(), MENU_BAR)
        self.watch_menu = WatchListMenu(self.watch_panel.tree, actions)
        # Names the tests and other views use.
        self.export_action = actions["export"]
        self.settings_action = actions["settings"]
        self.quit_action = actions["quit"]
        self.pause_action = actions["pause"]
        self.alerts_pause_action = actions["alerts_pause"]
        self.trusted_action = actions["trusted"]

    # -- connections --------------------------------------------------------------------
    def connections_on_screen(self) -> bool:
        return self.isVisible() and self.tabs.currentWidget() is self.connections_tab

    def _follow_connections(self) -> None:
        """Ask for connections while their tab is on screen, and for no longer."""
        wanted = (self.connections_on_screen(), self.connections_tab.every_port)
        if wanted != self._connections_asked:
            self._connections_asked = wanted
            self.connections_wanted.emit(*wanted)

    def show_connections_tab(self) -> None:
        self.tabs.setCurrentWidget(self.connections_tab)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._follow_connections()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self._follow_connections()

    def resizeEvent(self, event: QResizeEvent) -> None:
        # Below about 36 lines the chart's plots give up half their minimum height, so
        # the tables keep a few rows (a small screen, or 200 % scaling).
        self.chart.set_short(event.size().height() < self.fontMetrics().height() * 36)
        super().resizeEvent(event)

    # -- ticks --------------------------------------------------------------------------
    @Slot(object)
    def show_tick(self, result: TickResult) -> None:
        """Show one tick's result everywhere (runs on the GUI thread)."""
        if not result.ok:
            self._show_failed_tick(result)
            return
        self._failed_wall = None
        views = tuple(result.views)
        # The engine hands over the same tuple while no listener changed: the table and
        # the panels already show it (only the chart and the status line move on).
        same = views is self._views and self._ticks > 0
        self._views = views
        sample = result.sample
        self._last_sample = sample
        if not same:
            was_empty = self.model.rowCount() == 0
            self.model.update(views)
            if was_empty and views:
                self.table.resizeColumnsToContents()
            self.watch_panel.set_views(views)
            if self.port_panel.port is not None:
                self.port_panel.set_views(
                    views_for_port(views, self.port_panel.port, self._shown_proto)
                )
        self.chart.add_sample(sample)
        if sample.partial:
            self.partial_banner.show_messages([partial_advice(sample.partial_reason)])
        else:
            self.partial_banner.show_messages([])
        if result.warnings:
            self.statusBar().showMessage("; ".join(result.warnings), 10_000)
        self._ticks += 1
        self._show_status()
        if self._ticks == 1 and self.port_panel.port is None:
            first = self.watch_panel.tree.topLevelItem(0)
            if first is not None:
                self.watch_panel.tree.setCurrentItem(first)
        self.tick_shown.emit(self._ticks)

    def _show_failed_tick(self, result: TickResult) -> None:
        # A failed poll says nothing about what listens: keep the last good rows, draw a
        # gap rather than a zero, and say that the poll failed.
        self._failed_wall = result.sample.wall
        self.chart.add_gap(result.sample.wall)
        if result.warnings:
            self.statusBar().showMessage("; ".join(result.warnings), 10_000)
        self._ticks += 1
        self._show_status()
        self.tick_shown.emit(self._ticks)

    @property
    def ticks_shown(self) -> int:
        return self._ticks

    def _show_status(self) -> None:
        sample = self._last_sample
        line = status_line(
            sample.wall if sample is not None else None,
            len(self._views),
            sum(1 for v in self._views if v.watched),
            monitoring_paused=self._paused,
            alerts=self._alert_state,
            failed_wall=self._failed_wall,
        )
        self.status_text.setText(line)
        self.status_text.setToolTip(line)

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

    @Slot(object)
    def set_alert_state(self, state: AlertState) -> None:
        """Show the alert service's state (pause, snoozes, review) until it ends."""
        self._alert_state = state
        self.alerts_pause_action.blockSignals(True)
        self.alerts_pause_action.setChecked(state.paused)
        self.alerts_pause_action.blockSignals(False)
        self.watch_panel.set_snoozed(dict(state.snoozed))
        self._show_status()

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
        """Ask the pool for the window's history; :meth:`_chart_history_loaded` draws it."""
        # History comes in buckets (10 s, 1 min, ...); a missing bucket is a real gap.
        step = self._history.bucket_seconds(window_s)
        self._chart_history.request(self.chart.specs(), window_s, step, time.time())

    @Slot(object)
    def _chart_history_loaded(self, history: ChartHistory) -> None:
        if history.window_s != self.chart.window_s:
            return  # the person chose another window meanwhile; its own answer follows
        specs = set(self.chart.specs())
        for spec, rows in history.rows.items():
            if spec in specs:
                self.chart.load_history(
                    spec, sum_port_rows([rows]), history.step_s, history.window_s
                )
        self.chart.redraw()

    # -- selection and the side panel ---------------------------------------------------
    def show_port(self, port: int, proto: Proto | None = None) -> None:
        """Describe ``port`` in the side panel."""
        self._shown_proto = proto
        self.port_panel.show_port(port, proto, views_for_port(self._views, port, proto))

    def select_port_everywhere(self, port: int, proto: Proto | None) -> None:
        """Select ``port`` in the watched-ports list and the table, and describe it."""
        self._syncing_selection = True
        try:
            self.watch_panel.follow_port(port, proto)
            select_port_rows(self.table, port, proto)
        finally:
            self._syncing_selection = False
        self.show_port(port, proto)

    @Slot(object)
    def _spec_selected(self, spec: WatchSpec) -> None:
        # The chart follows the list: the selected port is the one drawn large.
        self.chart.choose(spec)
        if self._syncing_selection:
            return
        proto = spec.protos[0] if len(spec.protos) == 1 else None
        port = spec.lo
        if spec.is_range:
            busy = [
                v.listener.port
                for v in self._views
                if spec.contains(v.listener.port, v.listener.proto)
            ]
            port = min(busy) if busy else spec.lo
        self._syncing_selection = True
        try:
            select_port_rows(self.table, port, proto)
        finally:
            self._syncing_selection = False
        self.show_port(port, proto)

    @Slot(QItemSelection, QItemSelection)
    def _table_selection_changed(self, selected: QItemSelection, _old: QItemSelection) -> None:
        indexes = selected.indexes()
        if not indexes or self._syncing_selection:
            return
        view = self.proxy.data(indexes[0], ViewRole)
        if view is None:
            return
        port, proto = view.listener.port, view.listener.proto
        # The watched-ports list follows, so no other port stays highlighted there.
        self._syncing_selection = True
        try:
            self.watch_panel.follow_port(port, proto)
        finally:
            self._syncing_selection = False
        self.show_port(port, proto)

    def select_listener_row(self, row: int) -> None:
        """Select a source-model row in the table (tests, alert clicks)."""
        index = self.proxy.mapFromSource(self.model.index(row, 0))
        if index.isValid():
            self.table.selectRow(index.row())
            self.table.scrollTo(index)

    @Slot(object)
    def open_alert(self, alert: Alert | None) -> None:
        """Bring the window up on an alert (notification or log click).

        A summary of several alerts opens the alert log, which lists each of them."""
        self.bring_to_front()
        if alert is None:
            return
        if alert.folded:
            self.alert_dock.show()
            self.alert_log.tree.setFocus()
        port = alert.port
        if port is None:
            return
        proto = alert.proto
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
        self._show_status()

    # -- export -------------------------------------------------------------------------
    def _default_export_folder(self) -> Path:
        folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
        return Path(folder) if folder else Path.home()

    @Slot()
    def ask_export(self) -> None:
        """Ask where to save, then export on a worker thread."""
        if not self._exports.available:
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
        if not self._exports.export_to(path, watched_only):
            self._error("Export is not available", "This build cannot export yet.")

    @Slot(object)
    def _export_started(self, path: Path) -> None:
        self.export_action.setEnabled(False)
        self.statusBar().showMessage(f"Exporting to {path}\u2026")

    @Slot(object, object)
    def _export_done(self, path: Path, count: int | None) -> None:
        self.export_action.setEnabled(True)
        rows = f"{count} rows " if count is not None else ""
        self.statusBar().showMessage(f"Exported {rows}to {path}", 10_000)
        self.export_finished.emit(path, None)

    @Slot(object, object)
    def _export_failed(self, path: Path, exc: BaseException) -> None:
        self.export_action.setEnabled(True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        self._error("Export failed", f"Could not write {path}:\n{reason}")
        self.export_finished.emit(path, exc)

    @Slot(str, str)
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
        dialog = SettingsDialog(self._settings.current, self, login_start=self._login_start)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self._settings.apply(dialog.result_settings()))
        dialog.accepted.connect(lambda: self._apply_start_at_login(dialog.start_at_login_change()))
        dialog.open()
        return dialog

    def _apply_start_at_login(self, enable: bool | None) -> None:
        if enable is None:
            return
        problem = self._login_start.set_enabled(enable)
        if problem is not None:
            self._error("Start at login not changed", problem)

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
            if not self._told_about_tray:
                self._told_about_tray = True
                self.hidden_to_tray.emit()
            return
        event.accept()
        self.model.stop_timers()
        self.connections_tab.stop_timers()
        if not self._quitting:
            self.request_quit()

    def _about(self) -> None:
        QMessageBox.about(
            self,
            "About portwatch",
            f"portwatch {__version__}\nWatches network ports and tells you who listens on them.",
        )
