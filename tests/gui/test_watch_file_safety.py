"""The window tells the truth about the watch-list file: a failed write is an error, and
a file that cannot be used keeps the list in use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from guikit import wait_ticks
from platforms import needs_posix

from portwatch.core.watchlist import parse_spec


def test_a_failed_write_never_says_now_watching(
    qtbot: Any, make_desktop: Any, data_dir: Path
) -> None:
    desktop = make_desktop(["3653"])
    wait_ticks(qtbot, desktop, 1)  # started up fully, so it also shuts down cleanly
    panel = desktop.window.watch_panel
    path = data_dir / "watchlist.txt"
    # Something that is not a regular file takes the file's place: no write can succeed.
    path.unlink()
    path.mkdir()
    panel.spec_edit.setText("4444/tcp")
    panel.add_button.click()
    assert "Now watching" not in panel.message.text()
    assert "cannot write" in panel.message.text()
    assert panel.spec_edit.text() == "4444/tcp"  # kept, to try again
    assert parse_spec("4444/tcp") not in desktop.watch_file.watchlist.specs


@needs_posix  # a symbolic link to /dev/zero
def test_an_unusable_file_keeps_the_list_in_use(
    qtbot: Any, make_desktop: Any, data_dir: Path
) -> None:
    desktop = make_desktop(["3653", "4000/udp"])
    wait_ticks(qtbot, desktop, 1)
    before = desktop.watch_file.watchlist
    problems: list[list[str]] = []
    desktop.watch_file.problems.connect(problems.append)
    path = data_dir / "watchlist.txt"
    link = data_dir / "link.tmp"
    link.symlink_to("/dev/zero")
    link.replace(path)  # atomically: the app never sees the file missing
    qtbot.waitUntil(lambda: bool(problems), timeout=5000)
    assert "symbolic link" in problems[-1][0]
    assert desktop.watch_file.watchlist == before
    assert desktop.window.watch_panel.tree.topLevelItemCount() == 2
