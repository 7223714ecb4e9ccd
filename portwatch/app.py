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
from portwatch.core.trust import TrustList
from portwatch.engine.connection_track import ConnectionTracker
from portwatch.paths import Paths, platform_default
from portwatch.probe.signature import default_verifier as signature_verifier
from portwatch.probe.signature import signer_lookup
from portwatch.services import settings as settings_file
from portwatch.services.alert_service import AlertService
from portwatch.services.background import JobRunner
from portwatch.services.chart_history import ChartHistoryLoader
from portwatch.services.clock import Clock
from portwatch.services.dbus_notify import DBusNotificationBackend
from portwatch.services.export_service import ExportService, make_exporter
from portwatch.services.history_lookup import HistoryLookup
from portwatch.services.login_start import LoginStart
from portwatch.services.monitoring import monitor_factory
from portwatch.services.notify import FirstAvailable, NotificationBackend
from portwatch.services.os_integration import ReopenWatcher, set_app_user_model_id
from portwatch.services.plain_text import visible
from portwatch.services.port_names import PortNames
from portwatch.services.reverse_dns import Resolver, ReverseDns, system_resolver
from portwatch.services.sampler import MonitorFactory, SamplerThread
from portwatch.services.settings_service import SettingsService
from portwatch.services.single_instance import SingleInstance
from portwatch.services.stop_signals import StopSignals
from portwatch.services.trust_service import RELOAD_EVERY_MS, TrustService
from portwatch.services.watchlist_file import WatchListFile
from portwatch.ui.icons import app_icon
from portwatch.ui.main_window import MainWindow
from portwatch.ui.smoke import SmokeShot
from portwatch.ui.tray import Tray, untrusted_programs, watched_port_count
from portwatch.ui.trust_list_dialog import open_trust_list
from portwatch.ui.trust_review import open_review
from portwatch.ui.trust_scope_dialog import ask_trust_scope

log = logging.getLogger(__name__)


def _application() -> QApplication:
    # Before any window or tray icon exists, so Windows files them all under portwatch.
    set_app_user_model_id()
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setOrganizationName(APP_NAME)
    app.setOrganizationDomain("portwatch.github.io")
    QGuiApplication.setDesktopFileName(APP_ID)
    app.setWindowIcon(app_icon())
    # The tray keeps the app alive while the window is hidden; quitting is explicit.
    app.setQuitOnLastWindowClosed(False)
    return app


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
    real app does; tests opt in); ``clock`` replaces the alert service's clocks and timers;
    ``trust_reload_ms`` is how often edits of the trust file by the CLI are looked for;
    ``resolver`` replaces the reverse DNS lookup of remote addresses.
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
        clock: Clock | None = None,
        trust_reload_ms: int = RELOAD_EVERY_MS,
        resolver: Resolver | None = None,
    ) -> None:
        self._shut_down = False
        loaded_settings = settings_file.load(paths.settings_file)
        self.settings = loaded_settings.settings
        self.settings_service = settings = SettingsService(paths.settings_file, self.settings)
        self.names, name_problems = PortNames.load(paths.knowledge_file)
        self.watch_file = WatchListFile(paths.watchlist_file)
        self.history = HistoryLookup(paths.history_db)
        self.jobs = jobs or JobRunner()
        self.exports = ExportService(
            make_exporter(paths.history_db, self.names, paths.own_files()), self.jobs
        )
        self.chart_history = ChartHistoryLoader(paths.history_db, self.jobs)
        self.window = window = MainWindow(
            watch_file=self.watch_file,
            history=self.history,
            describe=self.names.describe,
            namer=self.names.service_name,
            settings=settings,
            exports=self.exports,
            chart_history=self.chart_history,
            login_start=LoginStart(autostart or autostart_for_platform(), login_command(paths)),
        )
        watch_file = self.watch_file
        self.trust, trust_problems = TrustService.load(
            paths.trust_file,
            signer_lookup(signature_verifier()),
            watchlist=lambda: watch_file.watchlist,
            reload_every_ms=trust_reload_ms,
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
            connections=ConnectionTracker(lambda: watch_file.watchlist),
        )
        sampler.result_ready.connect(window.show_tick)
        sampler.connections_ready.connect(window.connections_tab.show_snapshot)
        # Remote host names: looked up when the table draws an address, never by the poll.
        self.reverse_dns = dns = ReverseDns(
            self.settings.reverse_dns, resolver or system_resolver, parent=window
        )
        connections_model = window.connections_tab.model
        connections_model.set_host_namer(dns.name_of)
        dns.resolved.connect(connections_model.host_names_changed)
        settings.changed.connect(lambda new: self._reverse_dns_setting(new.reverse_dns))
        window.connections_wanted.connect(sampler.set_connections_wanted)
        sampler.notices.connect(window.show_notices)
        sampler.failed.connect(window.show_failure)
        sampler.paused_changed.connect(window.set_paused)
        watch_file.changed.connect(sampler.set_watchlist)
        window.pause_requested.connect(sampler.pause)
        window.resume_requested.connect(sampler.resume)
        settings.interval_changed.connect(sampler.set_interval)

        trust = self.trust
        window.port_panel.enable_trust(
            True, "Allow this program (this exact file) to listen on this port without alerts"
        )
        # The listener's own port and protocol; more only by an explicit choice.
        window.port_panel.trust_requested.connect(
            lambda view: ask_trust_scope(window, view, trust.scopes_for(view), trust.trust_view)
        )
        trust.notices.connect(window.show_notices)
        # The message names programs (untrusted text): bidi and control characters escaped.
        trust.message.connect(lambda text: window.statusBar().showMessage(visible(text), 15_000))
        window.trusted_programs_requested.connect(lambda: open_trust_list(window, trust))

        # The one place that decides what reaches the desktop: it takes each tick
        # straight from the sampler; the window and the tray show its log and state.
        review_pending = first_run_review and not trust.trust_list.first_run_review_done
        self.alerts = alerts = AlertService(
            enabled=self.settings.notifications,
            review_pending=review_pending,
            clock=clock,
        )
        alerts.set_cooldown(self.settings.alert_cooldown_s)
        if first_run_review:
            sampler.result_ready.connect(trust.offer_review)
            trust.review_requested.connect(
                lambda found: open_review(window, found, trust.finish_review)
            )
            trust.changed.connect(self._review_progress)
        sampler.result_ready.connect(alerts.on_tick)
        settings.notifications_toggled.connect(alerts.set_enabled)
        settings.cooldown_changed.connect(alerts.set_cooldown)
        window.alerts_paused_requested.connect(alerts.set_alerts_paused)
        window.snooze_requested.connect(alerts.snooze)
        alerts.state_changed.connect(window.set_alert_state)
        alerts.alert_logged.connect(window.log_alert)
        alerts.open_requested.connect(window.open_alert)
        window.set_alert_state(alerts.state)

        self.tray: Tray | None = None
        if use_tray and Tray.available():
            self.tray = tray = Tray()
            tray.open_window.connect(window.bring_to_front)
            tray.pause_toggled.connect(window.toggle_pause)
            tray.export_requested.connect(window.ask_export)
            tray.quit_requested.connect(window.request_quit)
            tray.alert_chosen.connect(window.open_alert)
            tray.trusted_requested.connect(window.trusted_programs_requested)
            tray.settings_requested.connect(window.bring_to_front)
            tray.settings_requested.connect(window.open_settings)
            sampler.result_ready.connect(
                lambda result: tray.set_counts(
                    watched_port_count(watch_file.watchlist), untrusted_programs(result.views)
                )
            )
            sampler.paused_changed.connect(tray.set_paused)
            alerts.alarm_changed.connect(tray.set_alerting)
            alerts.alert_logged.connect(tray.add_recent)
            alerts.state_changed.connect(tray.set_alert_state)
            tray.alerts_pause_toggled.connect(alerts.set_alerts_paused)
            tray.set_alert_state(alerts.state)
            window.hide_to_tray = True
            window.hidden_to_tray.connect(tray.tell_still_running)
            tray.show()
        alerts.set_backend(self._notification_backend(notification_backend))

    def _notification_backend(self, given: NotificationBackend | None) -> NotificationBackend:
        """The given back-end; else the desktop's notification service whenever it answers
        (tray or not), with the tray's balloon as the fallback."""
        if given is not None:
            return given
        choices: list[NotificationBackend] = []
        if sys.platform.startswith("linux"):
            choices.append(DBusNotificationBackend(self.alerts, activate=self.tray is None))
        if self.tray is not None:
            choices.append(self.tray.backend)
        return FirstAvailable(*choices, parent=self.alerts)

    def _reverse_dns_setting(self, enabled: bool) -> None:
        if enabled != self.reverse_dns.enabled:
            self.reverse_dns.set_enabled(enabled)
            self.window.connections_tab.model.host_names_changed()

    def _review_progress(self, trust_list: TrustList) -> None:
        if trust_list.first_run_review_done:
            self.alerts.set_review_pending(False)

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
        self.watch_file.stop()
        self.jobs.wait()
        self.history.close()
        if self.tray is not None:
            self.tray.hide()
        self.window.hide_to_tray = False
        self.window.request_quit_silently()
        self.window.close()
        # Stop the window's timers (chart redraw, row highlight expiry) here, on the GUI
        # thread: Python may free the window later from another thread, where Qt cannot
        # stop a running timer and warns.
        for timer in self.window.findChildren(QTimer):
            timer.stop()


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
    # Ctrl+C in the terminal and SIGTERM quit like the Quit action: history written.
    stop_signals = StopSignals()
    stop_signals.stop_requested.connect(lambda _signum: desktop.window.request_quit())

    smoke = (
        SmokeShot(desktop.window, Path(smoke_png).expanduser(), paths.own_files())
        if smoke_png
        else None
    )
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
        stop_signals.close()
        guard.release()
    if smoke is not None:
        return smoke.status
    return int(status)
