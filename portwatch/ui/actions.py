"""Every command of the window in one registry: its text, shortcut and place in the menus.

Commands are declared once here (:data:`WINDOW_ACTIONS`) and the menu bar is laid out
from :data:`MENU_BAR`; whoever implements a command connects to it by its key. Context
menus and the tray menu reuse the same ``QAction`` objects, so a command reads and
behaves the same wherever it is offered, and its shortcut is listed in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QMenuBar

Shortcut = QKeySequence.StandardKey | str


@dataclass(frozen=True)
class ActionSpec:
    """One command: a stable key, the menu text and an optional shortcut.

    ``fallback`` is used where the platform binds nothing to a standard key (Linux has no
    standard "Preferences" key, for example).
    """

    key: str
    text: str
    shortcut: Shortcut | None = None
    fallback: str | None = None
    checkable: bool = False
    tip: str = ""


WINDOW_ACTIONS: tuple[ActionSpec, ...] = (
    # File
    ActionSpec("export", "&Export CSV\u2026", QKeySequence.StandardKey.Save),
    ActionSpec("settings", "Se&ttings\u2026", QKeySequence.StandardKey.Preferences, "Ctrl+,"),
    ActionSpec("close", "&Close window", QKeySequence.StandardKey.Close),
    ActionSpec("quit", "&Quit", QKeySequence.StandardKey.Quit, "Ctrl+Q"),
    # Monitor
    ActionSpec("pause", "&Pause monitoring", "Ctrl+P"),
    ActionSpec("watch", "&Watch a port\u2026", QKeySequence.StandardKey.New),
    ActionSpec("unwatch", "&Stop watching the selected port", "Ctrl+D"),
    ActionSpec("history", "Port &history\u2026", "Ctrl+H"),
    ActionSpec("copy_check", "&Copy check command", "Ctrl+Shift+C"),
    ActionSpec("alerts_pause", "&Pause all alerts", "Ctrl+Shift+P", checkable=True),
    ActionSpec("snooze_hour", "Snooze the selected port for 1 &hour", "Ctrl+Shift+S"),
    ActionSpec("snooze_tomorrow", "Snooze the selected port until &tomorrow"),
    ActionSpec("unsnooze", "&Stop snoozing the selected port"),
    ActionSpec("trusted", "&Trusted programs\u2026", "Ctrl+T"),
    # View
    ActionSpec("window_5m", "Last &5 minutes", "Ctrl+1"),
    ActionSpec("window_1h", "Last &hour", "Ctrl+2"),
    ActionSpec("window_24h", "Last &24 hours", "Ctrl+3"),
    ActionSpec("filter", "&Filter listeners", QKeySequence.StandardKey.Find),
    # Help
    ActionSpec("about", "&About portwatch"),
)

# The chart windows the View menu offers, by action key.
CHART_WINDOWS: dict[str, float] = {"window_5m": 300.0, "window_1h": 3600.0, "window_24h": 86400.0}


@dataclass(frozen=True)
class Menu:
    """A menu: its title and entries (an action key, None for a separator, a submenu)."""

    title: str
    entries: tuple[str | Menu | None, ...]


MENU_BAR: tuple[Menu, ...] = (
    Menu("&File", ("export", "settings", None, "close", "quit")),
    Menu(
        "&Monitor",
        (
            "pause",
            None,
            "watch",
            "unwatch",
            "history",
            "copy_check",
            None,
            Menu("&Alerts", ("alerts_pause", "snooze_hour", "snooze_tomorrow", "unsnooze")),
            "trusted",
        ),
    ),
    Menu("&View", ("window_5m", "window_1h", "window_24h", None, "filter", "alert_log")),
    Menu("&Help", ("about",)),
)


class ActionRegistry:
    """The window's ``QAction`` objects by key, built from their :class:`ActionSpec`."""

    def __init__(self, owner: QObject, specs: Iterable[ActionSpec] = WINDOW_ACTIONS) -> None:
        self._owner = owner
        self._actions: dict[str, QAction] = {}
        for spec in specs:
            self.add(spec)

    def add(self, spec: ActionSpec) -> QAction:
        """Create the action for ``spec`` (owned by the registry's owner)."""
        if spec.key in self._actions:
            raise ValueError(f"action {spec.key!r} is declared twice")
        action = QAction(spec.text, self._owner)
        action.setObjectName(f"action_{spec.key}")
        if spec.shortcut is not None:
            action.setShortcut(QKeySequence(spec.shortcut))
        if action.shortcut().isEmpty() and spec.fallback:
            action.setShortcut(QKeySequence(spec.fallback))
        action.setCheckable(spec.checkable)
        if spec.tip:
            action.setToolTip(spec.tip)
        self._actions[spec.key] = action
        return action

    def adopt(self, key: str, action: QAction) -> QAction:
        """Register an action Qt made elsewhere (a dock's toggle action) under ``key``."""
        if key in self._actions:
            raise ValueError(f"action {key!r} is declared twice")
        self._actions[key] = action
        return action

    def __getitem__(self, key: str) -> QAction:
        return self._actions[key]

    def __contains__(self, key: object) -> bool:
        return key in self._actions

    def keys(self) -> list[str]:
        return list(self._actions)

    def connect(self, key: str, slot: Callable[[], object]) -> None:
        """Run ``slot()`` when the action is triggered (its ``checked`` flag dropped)."""
        self._actions[key].triggered.connect(lambda _checked=False: slot())

    def fill(self, menu: QMenu | QMenuBar, entries: Sequence[str | Menu | None]) -> None:
        """Add ``entries`` to ``menu``: actions by key, separators, submenus."""
        for entry in entries:
            if entry is None:
                menu.addSeparator()
            elif isinstance(entry, Menu):
                sub = menu.addMenu(entry.title)
                self.fill(sub, entry.entries)
            else:
                menu.addAction(self._actions[entry])
