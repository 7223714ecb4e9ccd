"""The side panel for one port: what it is for, who holds it now, and what to do about it."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from portwatch.core.types import Endpoint, Proto, Status
from portwatch.core.why import parents_text, reach_phrase, sentence, started_phrase
from portwatch.services.plain_text import visible
from portwatch.services.port_names import PortDescription, check_command
from portwatch.ui.icons import state_icon
from portwatch.ui.listener_model import REACH_WORDS, STATUS_STATES, status_words

Describer = Callable[[int, "Proto | None"], PortDescription]
# (first seen, last seen) wall times for an endpoint, or None when history has nothing.
SeenLookup = Callable[[Endpoint], "tuple[float, float] | None"]


def fit_to_panel(html: str) -> str:
    """The knowledge base's rich text adjusted for a narrow panel: commands wrap instead
    of forcing a horizontal scroll, and the heading is sized like a heading here."""
    html = re.sub(r"<pre><code>(.*?)</code></pre>", _wrapping_code, html, flags=re.S)
    # Headings of the description stay below the panel's title and its own headings.
    return re.sub(r"<(/?)h[1-6]>", r"<\1h4>", html)


def _wrapping_code(match: re.Match[str]) -> str:
    lines = match.group(1).split("\n")
    return "<p><code>" + "<br>".join(lines) + "</code></p>"


def _when(wall: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(wall))


def _plain_label(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    # Ignored across: the label wraps to the panel's width instead of widening the panel
    # to its longest word (a long path would push every line past the visible edge).
    # Its height follows the width it gets (a new size policy drops the flag that word
    # wrap set, and the label would keep the height of another width: gaps, cut lines).
    policy = QSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
    policy.setHeightForWidth(True)
    label.setSizePolicy(policy)
    return label


def _heading(text: str) -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    return label


# Most alarming first: the card of a program takes the status that needs deciding.
_STATUS_ORDER = (Status.UNKNOWN, Status.UNATTRIBUTED, Status.KNOWN, Status.UNWATCHED)


def _status_rank(view: Any) -> int:
    status = getattr(view, "status", None)
    return _STATUS_ORDER.index(status) if status in _STATUS_ORDER else len(_STATUS_ORDER)


def group_by_program(views: Sequence[Any]) -> list[list[Any]]:
    """The views grouped by the process that holds them (one group per process
    instance; sockets the OS attributes to nobody form one group), in first-seen order."""
    groups: dict[object, list[Any]] = {}
    for view in views:
        owner = view.listener.owner
        key = owner.instance if owner is not None else None
        groups.setdefault(key, []).append(view)
    return list(groups.values())


def _exposures(views: Sequence[Any]) -> list[Any]:
    return [view.listener.exposure for view in views]


def _reach_key(view: Any) -> tuple[str, str] | None:
    exposure = view.listener.exposure
    return None if exposure is None else (exposure.summary(), exposure.firewall_words())


class OwnerCard(QFrame):
    """One program holding the port, with each of its sockets listed inside; every
    process-derived string as plain text."""

    def __init__(self, views: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        group = list(views) if isinstance(views, (list, tuple)) else [views]
        self.views = group
        view = min(group, key=_status_rank)
        owner = view.listener.owner
        state = STATUS_STATES.get(view.status)
        icon = QLabel()
        if state is not None:
            size = self.fontMetrics().height()
            icon.setPixmap(state_icon(state).pixmap(size, size))
        self.status_label = _plain_label(status_words(view))
        font = self.status_label.font()
        font.setBold(True)
        self.status_label.setFont(font)
        status_row = QHBoxLayout()
        status_row.addWidget(icon)
        status_row.addWidget(self.status_label, 1)

        if owner is None:
            who = "The OS does not say which program owns this socket."
            lines: list[str] = []
        else:
            who = f"{visible(owner.name) or '(no name)'} \u2014 pid {owner.pid}"
            lines = []
            if owner.user:
                lines.append(f"user: {visible(owner.user)}")
            lines.append(f"program: {visible(owner.exe) or 'not readable'}")
            if owner.script:
                lines.append(f"script: {visible(owner.script)}")
            if owner.sha256:
                lines.append(f"SHA-256: {owner.sha256[:16]}\u2026")
            if owner.note:
                lines.append(f"note: {visible(owner.note)}")
            chain = parents_text(owner, visible)
            if chain:
                lines.append(f"parents: {chain}")
            if owner.replaced:
                lines.append(f"REPLACED: {visible(owner.replaced)}")
        count = len(group)
        lines.append(f"listening on {count} socket{'s' if count != 1 else ''}:")
        shown_status = view.status
        # One sentence for the program when its sockets are reached alike; otherwise
        # each socket says who reaches it.
        alike = len({_reach_key(item) for item in group}) == 1
        for item in group:
            endpoint = item.listener.endpoint
            if item.listener.exposure is not None and not alike:
                reach = reach_phrase(item.listener.exposure, visible)
            else:
                reach = REACH_WORDS.get(endpoint.reach, endpoint.reach)
            line = f"\u2022 {visible(endpoint.label())} ({reach})"
            if item.status != shown_status:
                line += f", {status_words(item)}"
            lines.append(line)
        reasons = dict.fromkeys(
            visible(r) for r in (getattr(v, "reason", None) for v in group) if r
        )
        for reason in reasons:
            lines.append(f"why: {reason}")

        # One multi-line label rather than one per line: word-wrapped labels each add
        # slack to the layout, which showed up as blank gaps in the card.
        self.who_label = _plain_label(who)
        # Why it is open and who can reach it, in one sentence (plain text: the unit,
        # container and addresses came from the OS and are shown with visible escapes).
        if alike:
            why = sentence(view.listener, visible)
        else:
            why = started_phrase(view.listener, visible) + (
                "; each socket below says who can reach it."
            )
        self.why_label = _plain_label(why)
        self.details_label = _plain_label("\n".join(lines))

        layout = QVBoxLayout(self)
        layout.setSpacing(max(2, layout.spacing() // 2))
        layout.addLayout(status_row)
        layout.addWidget(self.who_label)
        layout.addWidget(self.why_label)
        layout.addWidget(self.details_label)


class PortPanel(QWidget):
    """Describes the selected port and offers the actions a user can take on it."""

    trust_requested = Signal(object)
    """Hook for the trust model: the ``ListenerView`` whose owner should be trusted."""
    history_requested = Signal(int, object)
    """Open the history of (port, proto or None)."""
    command_copied = Signal(str)

    def __init__(
        self,
        describe: Describer,
        first_last_seen: SeenLookup,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._describe = describe
        self._first_last_seen = first_last_seen
        self._port: int | None = None
        self._proto: Proto | None = None
        self._views: list[Any] = []
        self._trust_enabled = False

        self.title = QLabel("No port selected")
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        font = self.title.font()
        font.setBold(True)
        # The largest text in the panel: the knowledge text's headings are made smaller.
        font.setPointSizeF(font.pointSizeF() * 1.6)
        self.title.setFont(font)

        self.description = QLabel("Select a watched port or a listener to see what it is.")
        self.description.setWordWrap(True)
        self.description.setTextFormat(Qt.TextFormat.PlainText)
        self.description.setOpenExternalLinks(False)
        self.description.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)

        self.about_heading = _heading("About this port")
        self.owners_heading = _heading("Who holds it now")
        self.owners_box = QVBoxLayout()
        self.no_owner = _plain_label("Nobody is listening on this port.")
        self.owners_box.addWidget(self.no_owner)

        self.seen_heading = _heading("History")
        self.seen_label = _plain_label("")

        self.trust_button = QPushButton("&Trust this program on this port")
        self.trust_button.setEnabled(False)
        self.trust_button.setToolTip("Trusting programs arrives with the trust list.")
        self.trust_button.clicked.connect(self._trust_clicked)
        self.copy_button = QPushButton("&Copy check command")
        self.copy_button.clicked.connect(self.copy_check_command)
        self.history_button = QPushButton("Open &history\u2026")
        self.history_button.clicked.connect(self._history_clicked)
        self.copied_label = _plain_label("")

        content = QWidget()
        layout = QVBoxLayout(content)
        # What needs attention first (who holds the port, what to do), then the
        # longer description of what the port is for.
        # The actions sit right under the title, so they are on screen without scrolling
        # however many programs and sockets follow.
        layout.addWidget(self.title)
        buttons = QGridLayout()
        buttons.addWidget(self.trust_button, 0, 0, 1, 2)
        buttons.addWidget(self.copy_button, 1, 0)
        buttons.addWidget(self.history_button, 1, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.copied_label)
        layout.addWidget(self.owners_heading)
        layout.addLayout(self.owners_box)
        layout.addWidget(self.seen_heading)
        layout.addWidget(self.seen_label)
        layout.addSpacing(layout.spacing())
        layout.addWidget(self.about_heading)
        layout.addWidget(self.description)
        layout.addStretch(1)

        self.scroll_area = scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        # Text wraps to the panel's width; only a tall panel scrolls.
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(content)
        # Never narrower than the buttons: a narrower panel would cut every line short.
        scroll.setMinimumWidth(
            content.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width()
        )
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self._set_actions_enabled(False)

    # -- hooks --------------------------------------------------------------------------
    def enable_trust(self, enabled: bool, tooltip: str = "") -> None:
        """Called by whoever wires the trust model: turns the trust action on."""
        self._trust_enabled = enabled
        self.trust_button.setToolTip(tooltip)
        self._set_actions_enabled(self._port is not None)

    @property
    def trust_enabled(self) -> bool:
        return self._trust_enabled

    # -- content ------------------------------------------------------------------------
    @property
    def port(self) -> int | None:
        return self._port

    def owner_cards(self) -> list[OwnerCard]:
        return self.findChildren(OwnerCard)

    def show_port(self, port: int, proto: Proto | None, views: Sequence[Any]) -> None:
        """Describe ``port`` (``proto`` None means both) with its current listeners."""
        changed = (port, proto) != (self._port, self._proto)
        self._port = port
        self._proto = proto
        self.title.setText(f"Port {port}/{proto}" if proto else f"Port {port}")
        if changed:
            self.copied_label.clear()
            # A new port starts at its top, not at the last port's scroll offset.
            self.scroll_area.verticalScrollBar().setValue(0)
            description = self._describe(port, proto)
            if description.html:
                self.description.setTextFormat(Qt.TextFormat.RichText)
                self.description.setText(fit_to_panel(description.html))
            else:
                self.description.setTextFormat(Qt.TextFormat.PlainText)
                self.description.setText(description.plain)
        self.set_views(views)
        self._set_actions_enabled(True)

    def set_views(self, views: Sequence[Any]) -> None:
        """Refresh the owner cards and seen times (each tick, for the shown port)."""
        views = list(views)
        # Exposure takes no part in a listener's equality: a changed address or firewall
        # reading must still reach the cards' sentences.
        if (
            views == self._views
            and _exposures(views) == _exposures(self._views)
            and self.owner_cards()
        ):
            return
        self._views = views
        for card in self.owner_cards():
            self.owners_box.removeWidget(card)
            card.deleteLater()
            card.setParent(None)
        self.no_owner.setVisible(not views)
        for group in group_by_program(views):
            self.owners_box.addWidget(OwnerCard(group))
        self._refresh_seen()
        # Owners come and go between ticks: the trust action follows them.
        self._set_actions_enabled(self._port is not None)

    def _refresh_seen(self) -> None:
        if self._port is None:
            return
        lines = []
        for view in self._views:
            seen = self._first_last_seen(view.listener.endpoint)
            if seen is not None:
                lines.append(
                    f"{view.listener.endpoint.label()}: first seen {_when(seen[0])}, "
                    f"last seen {_when(seen[1])}"
                )
        if not lines:
            lines.append("No listener history for this port yet.")
        self.seen_label.setText("\n".join(lines))

    def _set_actions_enabled(self, enabled: bool) -> None:
        self.copy_button.setEnabled(enabled)
        self.history_button.setEnabled(enabled)
        self.trust_button.setEnabled(enabled and self._trust_enabled and bool(self._views))

    # -- actions ------------------------------------------------------------------------
    @Slot()
    def copy_check_command(self) -> None:
        """Put the by-hand check command for this port on the clipboard."""
        if self._port is None:
            return
        command = check_command(self._port)
        QGuiApplication.clipboard().setText(command)
        self.copied_label.setText(f"Copied: {command}")
        self.command_copied.emit(command)

    @Slot()
    def _history_clicked(self) -> None:
        if self._port is not None:
            self.history_requested.emit(self._port, self._proto)

    @Slot()
    def _trust_clicked(self) -> None:
        if self._views:
            # The owner that needs deciding: an unknown one before a known or hidden one.
            unknown = [v for v in self._views if getattr(v, "status", None) is Status.UNKNOWN]
            self.trust_requested.emit((unknown or self._views)[0])
