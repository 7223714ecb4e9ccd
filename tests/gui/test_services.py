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

from platforms import wine_limit

from portwatch.core.watchlist import WatchList
from portwatch.services import settings as settings_file
from portwatch.services.plain_text import escaped, tooltip, visible
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


def test_json_true_is_not_a_number_of_seconds(tmp_path: Path) -> None:
    # bool is an int in Python: a plain isinstance check would take true as 1 second.
    path = tmp_path / "settings.json"
    path.write_text('{"poll_interval_s": true, "alert_cooldown_s": false}')
    loaded = settings_file.load(path)
    assert loaded.settings == Settings()
    problems = "\n".join(loaded.problems)
    assert "poll_interval_s: True is not a number of seconds" in problems
    assert "alert_cooldown_s: False is not a number of seconds" in problems


def test_every_setting_is_declared_once_with_its_range() -> None:
    from dataclasses import fields

    for declared in fields(Settings):
        assert declared.metadata["label"]
        if declared.type in (float, "float"):
            limits = settings_file.bounds(declared.name)
            assert limits.lo <= declared.default <= limits.hi  # type: ignore[operator]
            assert settings_file.validate(declared.name, limits.hi + 1) is not None
            assert settings_file.validate(declared.name, limits.lo) is None


def test_the_defaults_are_the_documented_ones_and_the_cooldown_is_the_policys() -> None:
    from portwatch.core.alert_policy import RateLimitedPolicy

    defaults = Settings()
    assert defaults.poll_interval_s == 2.0
    assert defaults.notifications is True
    assert defaults.start_minimized is False
    assert defaults.reverse_dns is False  # a lookup tells the DNS server who we talk to
    # One cooldown: the settings' default is the alert policy's own half hour.
    assert defaults.alert_cooldown_s == RateLimitedPolicy().settings.cooldown_s == 1800.0


def test_whole_seconds_in_the_file_are_read_as_the_declared_float(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{"poll_interval_s": 5, "alert_cooldown_s": 60}')
    loaded = settings_file.load(path)
    assert loaded.problems == ()
    assert type(loaded.settings.poll_interval_s) is float
    assert type(loaded.settings.alert_cooldown_s) is float


def test_lists_of_column_names_are_bounded() -> None:
    most = [f"c{i}" for i in range(settings_file.MAX_NAMES)]
    assert settings_file.validate("hidden_columns", most) is None
    assert settings_file.validate("hidden_columns", [*most, "one more"]) is not None
    assert settings_file.validate("hidden_columns", ["x" * settings_file.MAX_NAME_LENGTH]) is None
    too_long = ["x" * (settings_file.MAX_NAME_LENGTH + 1)]
    assert settings_file.validate("hidden_columns", too_long) is not None
    assert settings_file.validate("hidden_columns", [""]) is not None
    assert settings_file.validate("hidden_columns", [3]) is not None


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


# -- text for notifications ---------------------------------------------------------------


def test_text_for_markup_media_is_escaped() -> None:
    assert escaped("<b>evil</b> & co") == "&lt;b&gt;evil&lt;/b&gt; &amp; co"
    assert visible("a\u202eb\x1b") == "a\\u202eb\\x1b"
    assert tooltip("<i>x</i>").startswith("<p")
    assert "&lt;i&gt;x&lt;/i&gt;" in tooltip("<i>x</i>")


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
