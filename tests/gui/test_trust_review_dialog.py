"""The first-run review dialog, offscreen."""

from __future__ import annotations

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot
from trust_fixtures import listener, owner

from portwatch.core.trust import TrustJudge, TrustList, apply_review, review_candidates
from portwatch.core.types import Owner
from portwatch.core.watchlist import WatchList, parse_spec
from portwatch.ui.trust_review import TrustReviewDialog


def candidates() -> list:  # type: ignore[type-arg]
    return review_candidates(
        [
            listener(3653, owner("/usr/bin/<b>bold</b>", name="srv\u202etxt.exe")),
            listener(3321, Owner(pid=5, note="access denied")),
            listener(3353, owner("/usr/bin/python3", script="/srv/app.py")),
        ],
        WatchList((parse_spec("3321"), parse_spec("3353"), parse_spec("3653"))),
        TrustJudge(TrustList()),
    )


def test_ticked_candidates_are_trusted_and_review_recorded(qtbot: QtBot) -> None:
    found = candidates()
    dialog = TrustReviewDialog(found)
    qtbot.addWidget(dialog)
    texts = [dialog.list.item(i).text() for i in range(dialog.list.count())]
    assert "cannot be trusted" in texts[0]  # 3321, the hidden owner, sorts first
    assert "/usr/bin/<b>bold</b>" in texts[2]  # literal, not markup
    assert "\\u202e" in texts[2]  # the bidi override is shown, not obeyed
    assert not dialog.list.item(0).flags() & Qt.ItemFlag.ItemIsEnabled
    dialog.set_checked(0, True)  # ignored: cannot be trusted
    dialog.set_checked(2, True)
    assert dialog.chosen() == [2]
    with qtbot.waitSignal(dialog.accepted):
        dialog.trust_button.click()
    updated, messages = apply_review(TrustList(), found, dialog.chosen(), now_wall=7.0)
    assert updated.first_run_review_done
    assert [e.exe for e in updated.entries] == ["/usr/bin/<b>bold</b>"]
    # 3653 is watched on both protocols; the ticked row is the TCP listener only.
    assert [e.spec for e in updated.entries] == [parse_spec("3653/tcp")]
    assert messages == [
        f"tcp 127.0.0.1:3653: trusted on 3653/tcp by hash (sha256 {updated.entries[0].sha256[:12]})"
    ]


def test_ask_me_later_rejects(qtbot: QtBot) -> None:
    dialog = TrustReviewDialog(candidates())
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.rejected):
        dialog.later_button.click()
