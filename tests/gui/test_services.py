"""The desktop services: settings file, sampler thread, notifier, single-instance guard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from guikit import RecordingBackend
from platforms import wine_limit

from portwatch.core.alerts import Alert, Urgency
from portwatch.core.types import Proto
from portwatch.core.watchlist import WatchList
from portwatch.services import settings as settings_file
from portwatch.services.notify import TEXT_LIMIT, TITLE_LIMIT, Notifier, gvariant_string
from portwatch.services.plain_text import escaped, tooltip, visible
from portwatch.services.qt_compat import emit_steals_true
from portwatch.services.sampler import SamplerThread
from portwatch.services.settings import Settings
from portwatch.services.single_instance import SingleInstance

REPO = Path(__file__).resolve().parents[2]

# -- settings ----------------------------------------------------------------------------


def test_settings_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    wanted = Settings(poll_interval_s=5.0, notifications=False, start_minimized=True)
    settings_file.save(path, wanted)
    assert settings_file.load(path) == settings_file.LoadedSettings(wanted)


def test_bad_settings_are_reported_with_value_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(
        json.dumps(
            {
                "poll_interval_s": "true",
                "notifications": 1,
                "start_minimized": True,
                "alert_cooldown_s": -3,
                "colour": "blue",
            }
        )
    )
    loaded = settings_file.load(path)
    assert loaded.settings == Settings(start_minimized=True)
    problems = "\n".join(loaded.problems)
    assert "poll_interval_s: 'true' is not a number" in problems
    assert "notifications: 1 is not true or false" in problems
    assert "alert_cooldown_s: -3 is outside" in problems
    assert "colour: unknown setting" in problems


def test_unreadable_settings_fall_back_to_defaults(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text("{not json")
    loaded = settings_file.load(path)
    assert loaded.settings == Settings()
    assert "not valid JSON" in loaded.problems[0]
    assert settings_file.load(tmp_path / "missing.json") == settings_file.LoadedSettings(Settings())


# -- sampler thread ------------------------------------------------------------------------


class RecordedMonitor:
    """A tick source that records which thread ran it and whether ticks overlapped."""

    def __init__(self, tick_s: float = 0.0) -> None:
        self.tick_s = tick_s
        self.threads: set[int] = set()
        self.active = 0
        self.overlapped = False
        self.closed_in: int | None = None
        self.watchlists: list[WatchList] = []
        self.count = 0
        self._lock = threading.Lock()

    def tick(self) -> int:
        with self._lock:
            self.active += 1
            self.overlapped |= self.active > 1
        self.threads.add(threading.get_ident())
        deadline = time.monotonic() + self.tick_s
        while time.monotonic() < deadline:  # a slow probe: busy, never sleeping in tests
            pass
        self.count += 1
        with self._lock:
            self.active -= 1
        return self.count

    def set_watchlist(self, watchlist: WatchList) -> None:
        self.watchlists.append(watchlist)

    def close(self) -> None:
        self.closed_in = threading.get_ident()


def test_sampler_ticks_in_its_own_thread_and_stops_cleanly(qtbot: Any) -> None:
    monitor = RecordedMonitor()
    sampler = SamplerThread(lambda: (monitor, ["a notice"]), interval_s=0.05)
    results: list[int] = []
    sampler.result_ready.connect(results.append)
    with qtbot.waitSignal(sampler.notices, timeout=5000) as notices:
        sampler.start()
    assert notices.args == [["a notice"]]
    qtbot.waitUntil(lambda: len(results) >= 3, timeout=5000)
    assert threading.get_ident() not in monitor.threads
    sampler.set_watchlist(WatchList.default())
    qtbot.waitUntil(lambda: monitor.watchlists == [WatchList.default()], timeout=5000)
    assert sampler.stop()
    assert monitor.closed_in in monitor.threads
    assert not monitor.overlapped


def test_slow_ticks_never_overlap_and_are_logged(qtbot: Any, caplog: Any) -> None:
    monitor = RecordedMonitor(tick_s=0.08)
    sampler = SamplerThread(lambda: (monitor, []), interval_s=0.02)
    sampler.start()
    qtbot.waitUntil(lambda: monitor.count >= 4, timeout=5000)
    assert sampler.stop()
    assert not monitor.overlapped
    assert any("longer than the" in r.getMessage() for r in caplog.records)


def test_paused_sampler_does_not_tick(qtbot: Any) -> None:
    monitor = RecordedMonitor()
    sampler = SamplerThread(lambda: (monitor, []), interval_s=0.02)
    sampler.start()
    qtbot.waitUntil(lambda: monitor.count >= 1, timeout=5000)
    with qtbot.waitSignal(sampler.paused_changed, timeout=5000):
        sampler.pause()
    qtbot.waitUntil(lambda: sampler.paused, timeout=5000)
    frozen = monitor.count
    # Many intervals pass with no tick (pytest-qt's wait for the absence of a signal).
    with qtbot.assertNotEmitted(sampler.result_ready, wait=300):
        pass
    assert monitor.count == frozen
    sampler.resume()
    qtbot.waitUntil(lambda: monitor.count >= frozen + 2, timeout=5000)
    assert sampler.stop()


def test_a_failing_factory_is_reported_and_stop_still_works(qtbot: Any) -> None:
    def broken() -> Any:
        raise OSError(13, "Permission denied")

    sampler = SamplerThread(broken, interval_s=0.05)
    with qtbot.waitSignal(sampler.failed, timeout=5000) as failed:
        sampler.start()
    assert "Permission denied" in failed.args[0]
    assert sampler.stop()


# -- notifier ------------------------------------------------------------------------------


def _alert(title: str = "Untrusted program on 3653/tcp", text: str = "x") -> Alert:
    return Alert(title, text, 3653, Proto.TCP, Urgency.NORMAL)


def test_notifier_logs_every_alert_and_shortens_for_the_desktop(qtbot: Any) -> None:
    backend = RecordingBackend()
    notifier = Notifier(backend)
    logged: list[Any] = []
    notifier.alert_logged.connect(logged.append)
    notifier.notify(_alert("T" * 100, "x\u202e" * 300))
    token, title, text, _urgency = backend.shown[0]
    assert len(title) == TITLE_LIMIT
    assert len(text) == TEXT_LIMIT
    assert "\u202e" not in text
    assert logged[0].shown_by == "recording"
    notifier.set_enabled(False)
    notifier.notify(_alert())
    assert len(backend.shown) == 1
    assert len(notifier.recent()) == 2
    assert notifier.recent()[1].shown_by.startswith("in-app log only")
    with qtbot.waitSignal(notifier.open_requested) as opened:
        backend.clicked.emit(token)
    assert opened.args[0].port == 3653


def test_text_for_markup_media_is_escaped() -> None:
    assert escaped("<b>evil</b> & co") == "&lt;b&gt;evil&lt;/b&gt; &amp; co"
    assert visible("a\u202eb\x1b") == "a\\u202eb\\x1b"
    assert tooltip("<i>x</i>").startswith("<p")
    assert "&lt;i&gt;x&lt;/i&gt;" in tooltip("<i>x</i>")
    assert gvariant_string('say "hi"\\\n') == '"say \\"hi\\"\\\\\\u000a"'


def test_the_signal_reference_guard_is_active_where_needed() -> None:
    # Importing portwatch.services applied the guard; emitting is now harmless.
    before = sys.getrefcount(True)
    assert before > 1 << 39 or not emit_steals_true() or sys.version_info >= (3, 12)


# -- single instance -----------------------------------------------------------------------


@wine_limit("a named pipe's server and client in one process do not connect")
def test_second_instance_asks_the_first_to_show(qtbot: Any, tmp_path: Path) -> None:
    first = SingleInstance(tmp_path)
    assert first.claim()
    second = SingleInstance(tmp_path)
    assert not second.claim()
    with qtbot.waitSignal(first.show_requested, timeout=5000):
        assert second.notify_running()
    first.release()
    third = SingleInstance(tmp_path)
    assert third.claim()
    third.release()


def test_a_second_launch_exits_zero_and_shows_the_running_window(
    qtbot: Any, tmp_path: Path
) -> None:
    first = SingleInstance(tmp_path)
    assert first.claim()
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(REPO))
    with qtbot.waitSignal(first.show_requested, timeout=20_000):
        launch = subprocess.Popen(
            [sys.executable, "-m", "portwatch", "--data-dir", str(tmp_path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    _out, err = launch.communicate(timeout=30)
    assert launch.returncode == 0, err.decode()
    first.release()


def test_repeats_within_the_cooldown_stay_in_the_log(qtbot: Any) -> None:
    backend = RecordingBackend()
    now = [100.0]
    notifier = Notifier(backend, cooldown_s=60.0, monotonic=lambda: now[0])
    notifier.notify(_alert())
    notifier.notify(_alert())
    assert len(backend.shown) == 1
    assert "cooldown" in notifier.recent()[1].shown_by
    notifier.notify(_alert("Untrusted program on 3321/tcp"))
    assert len(backend.shown) == 2  # another alert is not a repeat
    now[0] += 61
    notifier.notify(_alert())
    assert len(backend.shown) == 3
    assert len(notifier.recent()) == 4
