"""The side panel: one card per program, actions above the fold, title first, scrolled to top."""

from __future__ import annotations

from typing import Any

from childsockets import ChildSockets, free_port
from PySide6.QtCore import QPoint
from PySide6.QtGui import QFontInfo


def test_one_process_on_four_sockets_is_one_card_with_the_actions_on_screen(
    qtbot: Any, make_desktop: Any, child_sockets: list
) -> None:
    port = free_port()
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
