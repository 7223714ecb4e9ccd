"""New rows green, closed rows red and struck, for a few seconds (an injected clock)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette

from portwatch.core.types import Endpoint, Family, ListenerView, Owner, Proto, Status
from portwatch.core.types import Listener as CoreListener
from portwatch.ui.change_highlight import Change, change_colour
from portwatch.ui.listener_model import Column, ListenerTableModel


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _view(port: int, pid: int) -> Any:
    endpoint = Endpoint(Proto.TCP, Family.IPV4, "127.0.0.1", port)
    owner = Owner(pid=pid, create_time=1.0, name="server", exe="/usr/bin/server", sha256="ab" * 32)
    return ListenerView(CoreListener(endpoint, owner), watched=False, status=Status.UNWATCHED)


def _ports(model: ListenerTableModel) -> list[int]:
    return [v.listener.port for v in model.views()]


def _background(model: ListenerTableModel, port: int) -> Any:
    row = _ports(model).index(port)
    return model.data(model.index(row, Column.PORT), Qt.ItemDataRole.BackgroundRole)


def _font(model: ListenerTableModel, port: int) -> Any:
    row = _ports(model).index(port)
    return model.data(model.index(row, Column.PORT), Qt.ItemDataRole.FontRole)


def test_new_rows_are_green_then_plain_and_closed_rows_red_struck_then_gone(qapp: Any) -> None:
    clock = Clock()
    model = ListenerTableModel(clock=clock, linger_s=5.0)
    a, b, c = _view(1001, 1), _view(1002, 2), _view(1003, 3)
    model.update([a, b])
    # What is there at the start is not "new".
    assert _background(model, 1001) is None

    clock.now += 1
    model.update([a, c])  # b closed, c appeared
    assert _ports(model) == [1001, 1002, 1003]
    assert model.change_of_row(_ports(model).index(1003)) is Change.NEW
    assert _background(model, 1003) == change_colour(Change.NEW)
    assert model.change_of_row(_ports(model).index(1002)) is Change.CLOSED
    assert _background(model, 1002) == change_colour(Change.CLOSED)
    assert _font(model, 1002).strikeOut()
    tip = model.data(model.index(1, Column.PORT), Qt.ItemDataRole.ToolTipRole)
    assert "closed just now" in tip
    assert [v.listener.port for v in model.live_views()] == [1001, 1003]
    assert model.row_of(1002) == -1  # a closed row is not where the port is held

    clock.now += 4.9
    model.expire()
    assert _ports(model) == [1001, 1002, 1003]  # still within the few seconds
    clock.now += 0.2
    model.expire()
    assert _ports(model) == [1001, 1003]
    assert _background(model, 1003) is None
    assert _background(model, 1001) is None


def test_a_closed_row_that_comes_back_is_new_again(qapp: Any) -> None:
    clock = Clock()
    model = ListenerTableModel(clock=clock, linger_s=5.0)
    a = _view(1001, 1)
    model.update([a])
    clock.now += 1
    model.update([])
    assert model.change_of_row(0) is Change.CLOSED
    clock.now += 1
    model.update([a])
    assert _ports(model) == [1001]
    assert model.change_of_row(0) is Change.NEW
    assert not _font(model, 1001) or not _font(model, 1001).strikeOut()


def test_marks_end_between_ticks_on_the_models_own_timer(qtbot: Any) -> None:
    clock = Clock()
    model = ListenerTableModel(clock=clock, linger_s=5.0)
    model.update([_view(1001, 1)])
    clock.now += 1
    model.update([])
    clock.now += 10
    qtbot.waitUntil(lambda: model.rowCount() == 0, timeout=3000)


def _contrast(a: QColor, b: QColor) -> float:
    def lum(c: QColor) -> float:
        def ch(v: float) -> float:
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

        return 0.2126 * ch(c.redF()) + 0.7152 * ch(c.greenF()) + 0.0722 * ch(c.blueF())

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_the_colours_keep_the_text_readable_on_light_and_dark_palettes() -> None:
    light = QPalette(QColor("#efefef"))
    light.setColor(QPalette.ColorRole.Base, QColor("white"))
    light.setColor(QPalette.ColorRole.Text, QColor("black"))
    dark = QPalette(QColor("#353535"))
    dark.setColor(QPalette.ColorRole.Base, QColor("#2a2a2a"))
    dark.setColor(QPalette.ColorRole.Text, QColor("white"))
    for palette in (light, dark):
        text = palette.color(QPalette.ColorRole.Text)
        base = palette.color(QPalette.ColorRole.Base)
        for change in Change:
            colour = change_colour(change, palette)
            assert _contrast(colour, text) >= 4.5, (change, colour.name())
            # And the mark is visibly different from an unmarked row.
            assert _contrast(colour, base) >= 1.15, (change, colour.name())
    assert change_colour(Change.NEW, light) != change_colour(Change.NEW, dark)


def test_the_same_rows_handed_over_again_are_not_compared_again(qapp: Any) -> None:
    # The engine hands over the very same tuple while nothing changed (every steady
    # poll of an idle desktop): the model neither walks nor compares its rows then.
    asked: list[Any] = []

    class Counting(ListenerTableModel):
        def key_of(self, row: Any) -> Any:
            asked.append(row)
            return super().key_of(row)

    clock = Clock()
    model = Counting(clock=clock, linger_s=5.0)
    views = (_view(1001, 1), _view(1002, 2))
    model.update(views)
    asked.clear()
    changed: list[Any] = []
    model.dataChanged.connect(lambda *args: changed.append(args))
    clock.now += 1
    model.update(views)
    assert asked == [] and changed == []
    # A new tuple with an equal row is still compared (and not repainted).
    model.update((views[0], _view(1002, 2)))
    assert asked and changed == []
    assert [v.listener.port for v in model.views()] == [1001, 1002]
