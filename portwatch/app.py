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
from portwatch.config.autostart import Autostart, default_command
from portwatch.config.autostart import for_platform as autostart_for_platform
from portwatch.core.alert_policy import RateLimitedPolicy
from portwatch.core.watchlist import WatchSpec
from portwatch.paths import Paths, platform_default
from portwatch.probe.signature import reader_for as signature_reader_for
from portwatch.probe.signature import signer_lookup
from portwatch.services import settings as settings_file
from portwatch.services.background import JobRunner
from portwatch.services.history_lookup import HistoryLookup
from portwatch.services.monitoring import monitor_factory
from portwatch.services.notify import DBusNotificationBackend, NotificationBackend, Notifier
from portwatch.services.os_integration import ReopenWatcher, set_app_user_model_id
from portwatch.services.plain_text import visible
from portwatch.services.port_names import PortNames
from portwatch.services.sampler import MonitorFactory, SamplerThread
from portwatch.services.single_instance import SingleInstance
from portwatch.services.trust_service import TrustService
from portwatch.services.watchlist_file import WatchListFile
from portwatch.ui.export import make_exporter
from portwatch.ui.icons import app_icon
from portwatch.ui.main_window import MainWindow
from portwatch.ui.smoke import SmokeShot
from portwatch.ui.tray import Tray
from portwatch.ui.trust_list_dialog import open_trust_list
from portwatch.ui.trust_review import open_review

log = logging.getLogger(__name__)


def _application() -> QApplication:
    # Before any window or tray icon exists, so Windows files them all under portwatch.
    set_app_user_model_id()
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


def login_command(paths: Paths) -> list[str]:
    """What start-at-login runs: this copy of portwatch, hidden, on the same data folder."""
    command = default_command()
    if paths != platform_default():
        command += ["--data-dir", str(paths.config_dir)]
    return command


class DesktopApp:
    """Every long-lived object of the desktop app, wired together; :meth:`shutdown` ends it.

    ``factory`` replaces the real monitor (probe + history writer) where a test needs a
    recorded one; ``use_tray`` False leaves the tray out even when one exists;
    ``notification_backend`` replaces the platform's notification back-end;
    ``first_run_review`` offers the review of programs already on watched ports (the
    real app does; tests opt in).
    """

    def __init__(
        self,
        paths: Paths,
        *,
        probe_kind: str = "auto",
        factory: MonitorFactory | None = None,
        use_tray: bool = True,
        jobs: JobRunner | None = None,
        notification_backend: NotificationBackend | None = None,
        autostart: Autostart | None = None,
        first_run_review: bool = False,
    ) -> None:
        self._shut_down = False
        loaded_settings = settings_file.load(paths.settings_file)
        self.settings = loaded_settings.settings
        self.names, name_problems = PortNames.load(paths.knowledge_file)
        self.watch_file = WatchListFile(paths.watchlist_file)
        self.history = HistoryLookup(paths.history_db)
        self.jobs = jobs or JobRunner()
        self.window = window = MainWindow(
            watch_file=self.watch_file,
            history=self.history,
            describe=self.names.describe,
            namer=self.names.service_name,
            settings=self.settings,
            settings_path=paths.settings_file,
            export=make_exporter(paths.history_db, self.names),
            jobs=self.jobs,
            autostart=autostart or autostart_for_platform(),
            autostart_command=login_command(paths),
        )
        watch_file = self.watch_file
        self.trust, trust_problems = TrustService.load(
            paths.trust_file,
            signer_lookup(signature_reader_for()),
            watchlist=lambda: watch_file.watchlist,
            parent=window,
        )
        window.show_notices(list(loaded_settings.problems) + name_problems + trust_problems)

        self.sampler = sampler = SamplerThread(
            factory
            or monitor_factory(
                paths.history_db,
                probe_kind,
                lambda: watch_file.watchlist,
                self.names,
                judge=self.trust.judge,
            ),
            self.settings.poll_interval_s,
        )
        sampler.result_ready.connect(window.show_tick)
        sampler.notices.connect(window.show_notices)
        sampler.failed.connect(window.show_failure)
        sampler.paused_changed.connect(window.set_paused)
        watch_file.changed.connect(sampler.set_watchlist)
        window.pause_requested.connect(sampler.pause)
        window.resume_requested.connect(sampler.resume)
        window.interval_changed.connect(sampler.set_interval)

        trust = self.trust
        window.port_panel.enable_trust(
            True, "Allow this program (this exact file) to listen on this port without alerts"
        )
        window.port_panel.trust_requested.connect(trust.trust_view)
        trust.notices.connect(window.show_notices)
        # The message names programs (untrusted text): bidi and control characters escaped.
        trust.message.connect(lambda text: window.statusBar().showMessage(visible(text), 15_000))
        window.trusted_programs_requested.connect(lambda: open_trust_list(window, trust))
        if first_run_review:
            sampler.result_ready.connect(trust.offer_review)
            trust.review_requested.connect(
                lambda found: open_review(window, found, trust.finish_review)
            )

        self.tray: Tray | None = None
        self.notifier = notifier = Notifier(
            enabled=self.settings.notifications,
            cooldown_s=self.settings.alert_cooldown_s,
            policy=RateLimitedPolicy(),
        )
        if use_tray and Tray.available():
            self.tray = tray = Tray()
            tray.open_window.connect(window.bring_to_front)
            tray.pause_toggled.connect(window.toggle_pause)
            tray.export_requested.connect(window.ask_export)
            tray.quit_requested.connect(window.request_quit)
            tray.alert_chosen.connect(window.open_alert)
            sampler.paused_changed.connect(tray.set_paused)
            window.alert_state_changed.connect(tray.set_alerting)
            notifier.alert_logged.connect(tray.add_recent)
            tray.alerts_pause_toggled.connect(notifier.set_alerts_paused)
            notifier.alerts_paused_changed.connect(tray.set_alerts_paused)
            notifier.set_backend(tray.backend)
            window.hide_to_tray = True
            tray.show()
        elif notification_backend is not None:
            notifier.set_backend(notification_backend)
        elif sys.platform.startswith("linux"):
            notifier.set_backend(DBusNotificationBackend(notifier))
        window.alert_arrived.connect(notifier.notify)
        window.alerts_paused_requested.connect(notifier.set_alerts_paused)
        window.snooze_requested.connect(self._snooze)
        notifier.alerts_paused_changed.connect(window.set_alerts_paused)
        window.notifications_toggled.connect(notifier.set_enabled)
        window.cooldown_changed.connect(notifier.set_cooldown)
        notifier.alert_logged.connect(window.log_alert)
        notifier.open_requested.connect(window.open_alert)

    def _snooze(self, spec: WatchSpec, seconds: float) -> None:
        if seconds > 0:
            self.notifier.snooze(spec, seconds)
        else:
            self.notifier.unsnooze(spec)

    def start(self, *, show_window: bool = True) -> None:
        if show_window:
            self.window.show()
        self.sampler.start()

    def shutdown(self) -> None:
        """Stop the sampler (history written), wait for jobs, close windows and readers."""
        if self._shut_down:
            return
        self._shut_down = True
        self.window.hide()
        if not self.sampler.stop():
            # A poll is stuck in the OS. Destroying a running QThread aborts the process, so
            # wait for that poll to return; the history is written when it does.
            log.warning("waiting for a slow poll to finish before quitting")
            self.sampler.stop(timeout_ms=None)
        self.trust.stop()
        self.jobs.wait()
        self.history.close()
        if self.tray is not None:
            self.tray.hide()
        self.window.hide_to_tray = False
        self.window.request_quit_silently()
        self.window.close()


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

    desktop = DesktopApp(
        paths,
        probe_kind=getattr(args, "probe", "auto"),
        # The smoke run only checks that a build starts: no dialog over the screenshot.
        first_run_review=not smoke_png,
    )
    guard.show_requested.connect(desktop.window.bring_to_front)
    reopen = ReopenWatcher(app, desktop.window.isVisible)
    reopen.reopen_requested.connect(desktop.window.bring_to_front)
    desktop.window.quit_requested.connect(app.quit)

    smoke = SmokeShot(desktop.window, Path(smoke_png)) if smoke_png else None
    if smoke is not None:
        desktop.window.tick_shown.connect(smoke.on_tick)
        smoke.done.connect(app.exit)

    start_hidden = bool(getattr(args, "minimized", False) or desktop.settings.start_minimized)
    show_window = smoke is not None or not (start_hidden and desktop.tray is not None)
    QTimer.singleShot(0, lambda: desktop.start(show_window=show_window))
    try:
        status = app.exec()
    finally:
        desktop.shutdown()
        guard.release()
    if smoke is not None:
        return smoke.status
    return int(status)
