"""Composition root of the desktop app: builds the objects, wires the signals, owns the
threads' lifetimes. No logic lives here."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from portwatch import APP_ID, APP_NAME, __version__
from portwatch.paths import Paths
from portwatch.services import settings as settings_file
from portwatch.services.background import JobRunner
from portwatch.services.history_reader import HistoryReader
from portwatch.services.monitoring import monitor_factory
from portwatch.services.notify import DBusNotificationBackend, Notifier
from portwatch.services.port_names import PortNames
from portwatch.services.sampler import SamplerThread
from portwatch.services.single_instance import SingleInstance
from portwatch.services.watchlist_file import WatchListFile
from portwatch.ui.export import make_exporter
from portwatch.ui.icons import app_icon
from portwatch.ui.main_window import MainWindow
from portwatch.ui.smoke import SmokeShot
from portwatch.ui.tray import Tray

log = logging.getLogger(__name__)


def _application() -> QApplication:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setOrganizationName(APP_NAME)
    app.setOrganizationDomain("portwatch.github.io")
    QGuiApplication.setDesktopFileName(APP_ID)
    app.setWindowIcon(app_icon())
    # The tray keeps the app alive while the window is hidden; quitting is explicit.
    app.setQuitOnLastWindowClosed(False)
    return app  # type: ignore[return-value]


def run_app(paths: Paths, args: argparse.Namespace) -> int:
    """Run the desktop app until the user quits; returns the exit status."""
    app = _application()
    smoke_png = getattr(args, "smoke", None)

    guard = SingleInstance(paths.runtime_dir)
    if not smoke_png and not guard.claim():
        # Another window is running for this data folder: ask it to show itself.
        shown = guard.notify_running()
        log.info("portwatch is already running; asked it to show its window (%s)", shown)
        return 0

    loaded_settings = settings_file.load(paths.settings_file)
    settings = loaded_settings.settings
    names, name_problems = PortNames.load(paths.knowledge_file)
    watch_file = WatchListFile(paths.watchlist_file)
    history = HistoryReader(paths.history_db)
    jobs = JobRunner()

    window = MainWindow(
        watch_file=watch_file,
        history=history,
        describe=names.describe,
        namer=names.service_name,
        settings=settings,
        settings_path=paths.settings_file,
        export=make_exporter(paths.history_db, names),
        jobs=jobs,
    )
    window.show_notices(list(loaded_settings.problems) + name_problems)

    sampler = SamplerThread(
        monitor_factory(
            paths.history_db, getattr(args, "probe", "auto"), lambda: watch_file.watchlist, names
        ),
        settings.poll_interval_s,
    )
    sampler.sampler.result_ready.connect(window.show_tick)
    sampler.sampler.notices.connect(window.show_notices)
    sampler.sampler.failed.connect(window.show_failure)
    sampler.sampler.paused_changed.connect(window.set_paused)
    watch_file.changed.connect(sampler.set_watchlist)
    window.pause_requested.connect(sampler.pause)
    window.resume_requested.connect(sampler.resume)
    window.interval_changed.connect(sampler.set_interval)

    tray: Tray | None = None
    notifier = Notifier(enabled=settings.notifications)
    if Tray.available():
        tray = Tray()
        tray.open_window.connect(window.bring_to_front)
        tray.pause_toggled.connect(window.toggle_pause)
        tray.export_requested.connect(window.ask_export)
        tray.quit_requested.connect(window.request_quit)
        tray.alert_chosen.connect(window.open_alert)
        sampler.sampler.paused_changed.connect(tray.set_paused)
        window.alert_state_changed.connect(tray.set_alerting)
        notifier.alert_logged.connect(tray.add_recent)
        notifier.set_backend(tray.backend)
        window.hide_to_tray = True
        tray.show()
    elif sys.platform.startswith("linux"):
        notifier.set_backend(DBusNotificationBackend(notifier))
    window.alert_arrived.connect(notifier.notify)
    window.notifications_toggled.connect(notifier.set_enabled)
    notifier.alert_logged.connect(window.log_alert)
    notifier.open_requested.connect(window.open_alert)
    guard.show_requested.connect(window.bring_to_front)
    window.quit_requested.connect(app.quit)

    smoke = SmokeShot(window, Path(smoke_png)) if smoke_png else None
    if smoke is not None:
        window.tick_shown.connect(smoke.on_tick)
        smoke.done.connect(app.exit)

    start_hidden = (getattr(args, "minimized", False) or settings.start_minimized) and tray
    if smoke is not None or not start_hidden:
        window.show()
    QTimer.singleShot(0, sampler.start)
    try:
        status = app.exec()
    finally:
        sampler.stop()
        jobs.wait()
        history.close()
        if tray is not None:
            tray.hide()
        guard.release()
    if smoke is not None:
        return smoke.status
    return int(status)
