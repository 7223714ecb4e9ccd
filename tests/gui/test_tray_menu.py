"""The tray menu: a status line, then the commands people look for there."""

from __future__ import annotations

from typing import Any

from platforms import wine_limit

from portwatch.core.types import Endpoint, Family, ListenerView, Owner, Proto, Status
from portwatch.core.types import Listener as CoreListener
from portwatch.core.watchlist import WatchList, parse_spec
from portwatch.ui.tray import Tray, status_text, untrusted_programs, watched_port_count


def _texts(menu: Any) -> list[str]:
    return [
        a.text().replace("&", "") + (" \u25b8" if a.menu() else "")
        for a in menu.actions()
        if not a.isSeparator()
    ]


def _view(port: int, pid: int, status: Status, watched: bool = True) -> ListenerView:
    endpoint = Endpoint(Proto.TCP, Family.IPV4, "127.0.0.1", port)
    owner = Owner(pid=pid, create_time=1.0, name="srv", exe="/usr/bin/srv", sha256="ab" * 32)
    return ListenerView(CoreListener(endpoint, owner), watched=watched, status=status)


@wine_limit(
    "the tray needs Qt's windows platform, which aborts; offscreen on Windows drops"
    " the tray menu's submenus"
)
def test_the_menu_has_status_show_pause_alerts_trusted_settings_quit(qapp: Any) -> None:
    tray = Tray()
    texts = _texts(tray.menu)
    assert texts[0].startswith("Waiting")
    # Readable (a disabled entry is a faint grey) and bold; choosing it opens the window.
    assert tray.status_action.isEnabled() and tray.status_action.font().bold()
    opened: list[bool] = []
    tray.open_window.connect(lambda: opened.append(True))
    tray.status_action.trigger()
    assert opened == [True]
    order = ["Show window", "Pause monitoring", "Alerts \u25b8", "Trusted programs\u2026"]
    order += ["Settings\u2026"]
    assert [t for t in texts if t in order] == order
    assert texts[-1] == "Quit"
    assert texts.index("Settings\u2026") < texts.index("Quit")
    assert _texts(tray.alerts_menu)[:2] == ["Pause all alerts", "Recent alerts \u25b8"]

    fired: list[str] = []
    tray.trusted_requested.connect(lambda: fired.append("trusted"))
    tray.settings_requested.connect(lambda: fired.append("settings"))
    tray.trusted_action.trigger()
    tray.settings_action.trigger()
    assert fired == ["trusted", "settings"]

    tray.set_counts(3, 1)
    assert tray.status_action.text() == "Watching 3 ports, 1 untrusted program"


def test_the_counts_are_ports_and_programs() -> None:
    watchlist = WatchList((parse_spec("22"), parse_spec("3224-3226/udp"), parse_spec("22/tcp")))
    assert watched_port_count(watchlist) == 4
    views = [
        _view(22, 10, Status.UNKNOWN),
        _view(23, 10, Status.UNKNOWN),  # the same program on two ports counts once
        _view(24, 11, Status.UNKNOWN),
        _view(25, 12, Status.KNOWN),
        _view(26, 13, Status.UNWATCHED, watched=False),
    ]
    assert untrusted_programs(views) == 2
    assert status_text(1, 0) == "Watching 1 port, all trusted"
    assert status_text(4, 2) == "Watching 4 ports, 2 untrusted programs"
