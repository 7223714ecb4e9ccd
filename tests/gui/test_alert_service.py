"""The alert service: what reaches the desktop, with time advanced by hand (no real waits)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from fakeclock import FakeClock
from guikit import RecordingBackend

from portwatch.core.alert_policy import SNOOZE_HOUR_S, RateLimitedPolicy
from portwatch.core.alerts import Alert, describe_event
from portwatch.core.types import (
    Endpoint,
    EventKind,
    Family,
    Listener,
    ListenerView,
    Owner,
    PortEvent,
    Proto,
    Status,
)
from portwatch.core.watchlist import parse_spec
from portwatch.services.alert_service import AlertService, AlertState
from portwatch.services.notify import TEXT_LIMIT, TITLE_LIMIT, FirstAvailable, NullBackend


class PacedBackend(RecordingBackend):
    """Shows one message at a time, like a tray balloon."""

    name = "paced"
    spacing_s = 6.0


def _alert(port: int, exe: str = "/tmp/p", name: str = "x", pid: int | None = None) -> Alert:
    owner = Owner(pid=pid or port, create_time=1.0, name=name, exe=exe, sha256="a" * 64)
    listener = Listener(Endpoint(Proto.TCP, Family.IPV4, "127.0.0.1", port), owner)
    event = PortEvent(EventKind.UNKNOWN_OWNER, listener, 1.0, 1.0, watched=True)
    return describe_event(event)


@dataclass(frozen=True)
class Tick:
    alerts: tuple[Alert, ...] = ()
    views: tuple[ListenerView, ...] = ()


def _service(backend: Any, clock: FakeClock, **kwargs: Any) -> AlertService:
    return AlertService(backend, policy=RateLimitedPolicy(), clock=clock, **kwargs)


def test_one_tick_is_judged_at_once_and_shortened_for_the_desktop(qtbot: Any) -> None:
    clock = FakeClock()
    backend = RecordingBackend()
    service = _service(backend, clock)
    long = _alert(3653, exe="/x" + "\u202e" * 400, name="T" * 100)
    # Delivered before on_tick returns: no timer, no second batching step.
    service.on_tick(Tick((long,)))
    token, title, text, _urgency = backend.shown[0]
    assert len(title) <= TITLE_LIMIT
    assert len(text) == TEXT_LIMIT
    assert "\u202e" not in text
    assert service.recent()[0].shown_by == "recording"
    service.set_enabled(False)
    service.on_tick(Tick((_alert(3654),)))
    assert len(backend.shown) == 1
    assert "notifications off" in service.recent()[1].shown_by
    with qtbot.waitSignal(service.open_requested) as opened:
        backend.clicked.emit(token)
    assert opened.args[0].port == 3653


def test_a_toast_fits_windows_in_utf16_units_with_its_ellipsis() -> None:
    # Windows' toast keeps 63 UTF-16 units of the title and 255 of the text (64 and 256 with
    # the NUL); an emoji is two. Text cut to 256 characters lost its ellipsis there, and
    # emoji made it longer still.
    clock = FakeClock()
    backend = RecordingBackend()
    service = _service(backend, clock)
    service.on_tick(Tick((_alert(3653, name="\U0001f600" * 300),)))
    _token, title, text, _urgency = backend.shown[0]
    assert "\U0001f600" in text and text.endswith("\u2026")
    assert len(text.encode("utf-16-le")) // 2 <= 255 == TEXT_LIMIT
    assert len(title.encode("utf-16-le")) // 2 <= 63 == TITLE_LIMIT


def test_a_burst_gives_three_alerts_then_one_summary_and_the_log_keeps_all() -> None:
    clock = FakeClock()
    backend = RecordingBackend()
    service = _service(backend, clock)
    service.set_cooldown(1800.0)
    service.submit([_alert(4000 + i, f"/tmp/p{i}") for i in range(10)])
    assert len(backend.shown) == 4
    assert "7 more" in backend.shown[-1][1]
    assert service.recent()[-1].alert.folded == 7
    assert sum("rate limit" in e.shown_by for e in service.recent()) == 7
    # A second burst inside the same minute is held back; its summary goes out once the
    # minute has passed, without a new alert to carry it.
    clock.advance(10)
    service.submit([_alert(5000 + i, f"/tmp/q{i}") for i in range(5)])
    assert len(backend.shown) == 4
    clock.advance(45)
    assert len(backend.shown) == 4
    clock.advance(10)
    assert len(backend.shown) == 5
    assert "5 more" in backend.shown[-1][1]
    # The same program on the same port again within the cooldown: log only.
    clock.advance(120)
    service.submit([_alert(4000, "/tmp/p0")])
    assert len(backend.shown) == 5
    assert "rate limit" in service.recent()[-1].shown_by


def test_a_balloon_shows_the_burst_one_by_one_then_the_summary_opens_the_log(
    qtbot: Any,
) -> None:
    clock = FakeClock()
    backend = PacedBackend()
    service = _service(backend, clock)
    service.submit([_alert(4000 + i) for i in range(6)])
    # All six are in the log at once; the desktop gets them one at a time.
    assert len(service.recent()) == 7
    assert [t for _, t, _, _ in backend.shown] == ["Untrusted program on 4000/tcp"]
    clock.advance(5.9)
    assert len(backend.shown) == 1
    clock.advance(0.1)
    assert len(backend.shown) == 2
    clock.advance(12)
    assert len(backend.shown) == 4
    assert "3 more" in backend.shown[-1][1]
    clock.advance(60)
    assert len(backend.shown) == 4  # nothing more was pending
    with qtbot.waitSignal(service.open_requested) as opened:
        backend.clicked.emit(backend.shown[-1][0])
    assert opened.args[0].folded == 3  # the window opens the alert log for a summary


def test_snooze_is_state_until_it_ends_and_silences_only_its_port() -> None:
    clock = FakeClock()
    backend = RecordingBackend()
    service = _service(backend, clock)
    states: list[AlertState] = []
    service.state_changed.connect(states.append)
    spec = parse_spec("4000")
    service.snooze(spec, SNOOZE_HOUR_S)
    assert states[-1].snoozed_until(spec) == clock.wall() + SNOOZE_HOUR_S
    service.submit([_alert(4000, "/tmp/a"), _alert(4001, "/tmp/b")])
    assert [title for _, title, _, _ in backend.shown] == ["Untrusted program on 4001/tcp"]
    assert "snoozed" in service.recent()[0].shown_by
    # When the hour is over, the state says so by itself (no tick needed).
    clock.advance(SNOOZE_HOUR_S)
    assert states[-1].snoozed == ()
    service.submit([_alert(4000, "/tmp/c")])
    assert len(backend.shown) == 2


def test_paused_alerts_are_state_and_logged_not_shown() -> None:
    clock = FakeClock()
    backend = RecordingBackend()
    service = _service(backend, clock)
    service.set_alerts_paused(True)
    assert service.state.paused
    service.submit([_alert(4100)])
    assert backend.shown == []
    assert "paused" in service.recent()[-1].shown_by
    service.set_alerts_paused(False)
    service.submit([_alert(4101)])
    assert len(backend.shown) == 1


def test_what_listened_at_first_start_goes_to_the_review_not_to_alerts() -> None:
    clock = FakeClock()
    backend = RecordingBackend()
    service = _service(backend, clock, review_pending=True)
    assert service.state.review_pending
    # The first tick: everything already there is the review's.
    service.on_tick(Tick((_alert(4000), _alert(4001))))
    assert backend.shown == []
    assert service.recent() == []
    # Still there on the next ticks (e.g. re-raised by a verdict change): still quiet.
    clock.advance(2)
    service.on_tick(Tick((_alert(4000),)))
    assert backend.shown == []
    # Something new after the first start alerts as usual, review or not.
    service.on_tick(Tick((_alert(4002),)))
    assert [t for _, t, _, _ in backend.shown] == ["Untrusted program on 4002/tcp"]
    # The same port taken by another process is new too.
    service.on_tick(Tick((_alert(4000, "/tmp/other", pid=99),)))
    assert len(backend.shown) == 2
    service.set_review_pending(False)
    assert not service.state.review_pending


def test_without_a_pending_review_the_first_tick_alerts() -> None:
    backend = RecordingBackend()
    service = _service(backend, FakeClock())
    service.on_tick(Tick((_alert(4000),)))
    assert len(backend.shown) == 1


def test_the_alarm_follows_unknown_owners_on_watched_ports() -> None:
    service = _service(RecordingBackend(), FakeClock())
    alarms: list[tuple[bool, str]] = []
    service.alarm_changed.connect(lambda on, why: alarms.append((on, why)))
    owner = Owner(pid=7, create_time=1.0, name="nc", exe="/bin/nc")
    listener = Listener(Endpoint(Proto.TCP, Family.IPV4, "127.0.0.1", 4000), owner)
    unknown = ListenerView(listener, watched=True, status=Status.UNKNOWN)
    service.on_tick(Tick(views=(unknown,)))
    service.on_tick(Tick(views=(unknown,)))
    service.on_tick(Tick(views=()))
    assert alarms == [(True, "unknown owner nc on 4000/tcp"), (False, "")]


def test_the_first_available_backend_shows_and_names_itself() -> None:
    clock = FakeClock()

    class Gone(RecordingBackend):
        name = "gone"
        up = False

        def available(self) -> bool:
            return self.up

    primary, fallback = Gone(), PacedBackend()
    chain = FirstAvailable(primary, fallback)
    service = _service(chain, clock)
    service.submit([_alert(4000)])
    assert service.recent()[-1].shown_by == "paced"
    assert len(fallback.shown) == 1
    primary.up = True  # the notification service started meanwhile
    clock.advance(120)
    service.submit([_alert(4001)])
    assert service.recent()[-1].shown_by == "gone"
    assert len(primary.shown) == 1
    assert not FirstAvailable(NullBackend()).available()


def test_tray_recent_alerts_and_tooltip_say_when_who_and_what_is_silenced(qtbot: Any) -> None:
    from portwatch.services.notify import LoggedAlert
    from portwatch.ui.tray import Tray, recent_text

    clock = FakeClock()
    entry = LoggedAlert(1, clock.wall(), _alert(4000, name="a&b"), "tray message")
    text = recent_text(entry)
    assert text.startswith(time.strftime("%H:%M:%S", time.localtime(clock.wall())))
    assert "a&&b" in text  # a literal & in a menu entry, not a mnemonic
    assert "4000/tcp" in text
    tray = Tray()
    tray.add_recent(entry)
    assert tray.recent_menu.actions()[0].text() == text
    assert tray.tooltip_text() == "portwatch: all watched ports fine"
    tray.set_paused(True)
    tray.set_alert_state(AlertState(paused=True, snoozed=((parse_spec("4000"), clock.wall()),)))
    tip = tray.tooltip_text()
    assert "monitoring paused" in tip and "alerts paused" in tip and "snoozed: 4000 until" in tip
    assert tray.alerts_pause_action.isChecked()
    tray.set_paused(False)
    tray.set_alert_state(AlertState())
    assert tray.tooltip_text() == "portwatch: all watched ports fine"


def test_the_cooldown_set_on_the_service_is_the_one_the_rules_use() -> None:
    clock = FakeClock()
    backend = RecordingBackend()
    service = _service(backend, clock)
    service.set_cooldown(120.0)
    service.submit([_alert(4000)])
    clock.advance(119)
    service.submit([_alert(4000)])
    assert len(backend.shown) == 1
    assert "rate limit" in service.recent()[-1].shown_by
    clock.advance(1)
    service.submit([_alert(4000)])
    assert len(backend.shown) == 2


def test_each_snooze_ends_by_itself_at_its_own_time() -> None:
    clock = FakeClock()
    service = _service(RecordingBackend(), clock)
    states: list[AlertState] = []
    service.state_changed.connect(states.append)
    service.snooze(parse_spec("4000"), 600)
    service.snooze(parse_spec("4001"), SNOOZE_HOUR_S)
    clock.advance(600)
    assert [spec for spec, _ in states[-1].snoozed] == [parse_spec("4001")]
    clock.advance(SNOOZE_HOUR_S - 600)
    assert states[-1].snoozed == ()


def test_a_summary_held_by_the_rate_limit_is_not_shown_while_alerts_are_paused() -> None:
    clock = FakeClock()
    backend = RecordingBackend()
    service = _service(backend, clock)
    service.submit([_alert(4000 + i, f"/tmp/p{i}") for i in range(4)])
    assert len(backend.shown) == 4  # three and a summary
    clock.advance(10)
    service.submit([_alert(5000 + i, f"/tmp/q{i}") for i in range(3)])
    service.set_alerts_paused(True)
    clock.advance(300)
    assert len(backend.shown) == 4
    service.set_alerts_paused(False)
    clock.advance(10)
    assert len(backend.shown) == 5
    assert "3 more" in backend.shown[-1][1]


def test_the_alarm_names_the_first_unknown_owner_and_counts_the_others() -> None:
    service = _service(RecordingBackend(), FakeClock())
    alarms: list[tuple[bool, str]] = []
    service.alarm_changed.connect(lambda on, why: alarms.append((on, why)))
    views = []
    for port in (4000, 4001):
        owner = Owner(pid=port, create_time=1.0, name="nc", exe="/bin/nc")
        listener = Listener(Endpoint(Proto.TCP, Family.IPV4, "127.0.0.1", port), owner)
        views.append(ListenerView(listener, watched=True, status=Status.UNKNOWN))
    service.on_tick(Tick(views=tuple(views)))
    assert alarms == [(True, "unknown owner nc on 4000/tcp and 1 more")]
