"""The side panel: one card per program, actions above the fold, title first, scrolled to top."""

from __future__ import annotations

import os
from typing import Any

from childsockets import ChildSockets, free_port
from platforms import wine_gives_pid_0
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QFontInfo


@wine_gives_pid_0
def test_one_process_on_four_sockets_is_one_card_with_the_actions_on_screen(
    qtbot: Any, make_desktop: Any, child_sockets: list
) -> None:
    port = free_port(also=("::1",))
    desktop = make_desktop([str(port)])
    window = desktop.window
    child = ChildSockets.start(
        [
            ("tcp", "127.0.0.1", port, "listen"),
            ("udp", "127.0.0.1", port, "listen"),
            ("tcp", "::1", port, "listen"),
            ("udp", "::1", port, "listen"),
        ],
        registry=child_sockets,
    )
    panel = window.port_panel

    def held() -> int:
        return sum(
            1
            for v in window.model.live_views()
            if v.listener.owner and v.listener.owner.pid == child.pid
        )

    qtbot.waitUntil(lambda: held() == 4, timeout=15_000)
    window.watch_panel.select_port(port)
    qtbot.waitUntil(
        lambda: len(panel.owner_cards()) == 1 and len(panel.owner_cards()[0].views) == 4
    )
    card = panel.owner_cards()[0]
    assert f"pid {child.pid}" in card.who_label.text()
    details = card.details_label.text()
    assert "listening on 4 sockets:" in details
    assert details.count("\u2022") == 4
    assert details.count("program:") == 1
    # Why it is open and who can reach it: this test started the child, on loopback.
    why = card.why_label.text()
    assert why.startswith("Started by ") and f"(pid {os.getpid()})" in why, why
    assert why.endswith("reachable from this computer only."), why
    assert card.why_label.textFormat() == Qt.TextFormat.PlainText

    # The actions are inside the visible part of the panel without scrolling.
    viewport = panel.scroll_area.viewport()
    for button in (panel.trust_button, panel.copy_button, panel.history_button):
        assert button.isVisible()
        bottom = button.mapTo(viewport, QPoint(0, button.height())).y()
        assert 0 <= bottom <= viewport.height(), button.text()

    # The title is the largest text of the panel.
    title = QFontInfo(panel.title.font()).pixelSize()
    for heading in (panel.owners_heading, panel.seen_heading, panel.about_heading):
        assert title > QFontInfo(heading.font()).pixelSize()
    assert "<h2>" not in panel.description.text() and "<h3>" not in panel.description.text()


def test_each_new_port_opens_at_the_top_of_the_panel(qtbot: Any, make_desktop: Any) -> None:
    desktop = make_desktop(["22", "3389"])
    window = desktop.window
    panel = window.port_panel
    window.resize(900, 400)  # short: the description scrolls
    window.select_port_everywhere(22, None)
    bar = panel.scroll_area.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0, timeout=5000)
    bar.setValue(bar.maximum())
    window.select_port_everywhere(3389, None)
    assert bar.value() == 0


def test_the_card_sentence_names_unit_package_and_reach_with_escapes(qtbot: Any) -> None:
    from portwatch.core.exposure import Exposure
    from portwatch.core.types import (
        Endpoint,
        Family,
        Listener,
        ListenerView,
        Owner,
        PackageInfo,
        Proto,
        Status,
    )
    from portwatch.ui.port_panel import OwnerCard

    owner = Owner(
        pid=812,
        create_time=1.0,
        name="nginx",
        exe="/usr/sbin/nginx",
        sha256="ab" * 32,
        package=PackageInfo("nginx-core", "1.22.1-9", "dpkg"),
        started_by="systemd unit nginx\u202e.service",
        parents=(("systemd", 1),),
        replaced="the executable was deleted from disk after the process started",
    )
    endpoint = Endpoint(Proto.TCP, Family.IPV4, "0.0.0.0", 80)
    lan = Exposure("network", addresses=("192.168.1.5",), everywhere=True)
    card = OwnerCard([ListenerView(Listener(endpoint, owner, exposure=lan), True, Status.KNOWN)])
    qtbot.addWidget(card)
    assert card.why_label.text() == (
        "Started by systemd unit nginx\\u202e.service (package nginx-core 1.22.1-9),"
        " reachable from the local network at 192.168.1.5. Firewall not checked."
    )
    details = card.details_label.text()
    assert "parents: systemd (1)" in details
    assert "REPLACED: the executable was deleted" in details


def test_sockets_reached_differently_each_say_who_reaches_them(qtbot: Any) -> None:
    from portwatch.core.exposure import Exposure
    from portwatch.core.types import Endpoint, Family, Listener, ListenerView, Owner, Proto, Status
    from portwatch.ui.port_panel import OwnerCard

    owner = Owner(pid=9, create_time=1.0, name="app", started_by="user session 3 (uid 1000)")
    local = Listener(
        Endpoint(Proto.TCP, Family.IPV4, "127.0.0.1", 8080), owner, exposure=Exposure("local")
    )
    lan = Listener(
        Endpoint(Proto.TCP, Family.IPV4, "192.168.1.5", 8080),
        owner,
        exposure=Exposure("network", addresses=("192.168.1.5",)),
    )
    card = OwnerCard([ListenerView(item, False, Status.UNWATCHED) for item in (local, lan)])
    qtbot.addWidget(card)
    assert card.why_label.text() == (
        "Started by user session 3 (uid 1000); each socket below says who can reach it."
    )
    details = card.details_label.text()
    assert "127.0.0.1:8080 (reachable from this computer only)" in details
    assert "192.168.1.5:8080 (reachable from the local network at 192.168.1.5)" in details


def test_the_sentence_follows_a_new_firewall_reading(qtbot: Any) -> None:
    from portwatch.core.exposure import Exposure
    from portwatch.core.types import Endpoint, Family, Listener, ListenerView, Owner, Proto, Status
    from portwatch.services.port_names import PortDescription
    from portwatch.ui.port_panel import PortPanel

    panel = PortPanel(lambda _p, _q: PortDescription(plain="x"), lambda _e: None)
    qtbot.addWidget(panel)
    endpoint = Endpoint(Proto.TCP, Family.IPV4, "0.0.0.0", 80)
    owner = Owner(pid=9, create_time=1.0, name="app", started_by="systemd unit app.service")

    def view(firewall: str | None) -> ListenerView:
        exposure = Exposure(
            "network", addresses=("192.168.1.5",), everywhere=True, firewall=firewall
        )
        return ListenerView(Listener(endpoint, owner, exposure=exposure), True, Status.KNOWN)

    panel.show_port(80, Proto.TCP, [view(None)])
    assert panel.owner_cards()[0].why_label.text().endswith("Firewall not checked.")
    panel.set_views([view("no firewall rules loaded")])
    cards = [c for c in panel.owner_cards() if c.parent() is not None]
    assert cards[-1].why_label.text().endswith("No firewall rules loaded.")
