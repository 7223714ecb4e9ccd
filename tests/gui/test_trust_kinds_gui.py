"""The trust dialogs show each entry's kind and let the person choose it, offscreen."""

from __future__ import annotations

import os
from pathlib import Path

from pytestqt.qtbot import QtBot
from trust_fixtures import listener, sha

from portwatch.core.trust import (
    TrustEntry,
    TrustJudge,
    TrustList,
    apply_review,
    review_candidates,
)
from portwatch.core.types import Owner, PackageInfo, SignerInfo
from portwatch.core.watchlist import WatchList, parse_spec
from portwatch.ui.trust_list_dialog import TrustListDialog
from portwatch.ui.trust_review import TrustReviewDialog

NGINX = PackageInfo("nginx-core", "1.22.1-9", "dpkg", "amd64")
CONTOSO = SignerInfo("windows", "CN=Contoso Ltd, O=Contoso", "CN=Contoso CA", "AB" * 20)


def _shot(widget: object, name: str) -> None:
    folder = os.environ.get("PORTWATCH_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        widget.grab().save(str(Path(folder) / name))  # type: ignore[attr-defined]


def test_trusted_programs_dialog_names_each_kind(qtbot: QtBot) -> None:
    tl = TrustList(
        (
            TrustEntry(
                parse_spec("80/tcp"),
                "/usr/sbin/nginx",
                package="nginx-core",
                package_version="1.22.1-9",
            ),
            TrustEntry(
                parse_spec("443/tcp"), "C:\\svc.exe", signer="Contoso Ltd", signer_id=CONTOSO
            ),
            TrustEntry(parse_spec("22/tcp"), "/usr/sbin/sshd", sha("sshd")),
            TrustEntry(parse_spec("8443/tcp"), "/opt/tool", signer="Tool Co"),
        )
    )
    dialog = TrustListDialog(tl)
    qtbot.addWidget(dialog)
    dialog.show()
    texts = [dialog.list.item(i).text() for i in range(dialog.list.count())]
    assert "trusted by package" in texts[0] and "package: nginx-core" in texts[0]
    assert "trusted by signer" in texts[1] and "issuer: CN=Contoso CA" in texts[1]
    assert "trusted by hash" in texts[2] and sha("sshd") in texts[2]
    assert "NEEDS REVIEW" in texts[3]
    _shot(dialog, "trusted-programs.png")


def test_review_lets_the_person_choose_the_kind(qtbot: QtBot) -> None:
    packaged = Owner(pid=7, create_time=1.0, name="nginx", exe="/usr/sbin/nginx",
                     sha256=sha("nginx"), package=NGINX)  # fmt: skip
    found = review_candidates(
        [listener(80, packaged)], WatchList((parse_spec("80/tcp"),)), TrustJudge(TrustList())
    )
    dialog = TrustReviewDialog(found)
    qtbot.addWidget(dialog)
    dialog.show()
    assert "package: nginx-core 1.22.1-9, verified by dpkg" in dialog.list.item(0).text()
    assert dialog.by() is None  # the strongest that verifies, unless chosen otherwise
    dialog.set_checked(0, True)
    _shot(dialog, "review-trust-by.png")
    strongest, _ = apply_review(TrustList(), found, dialog.chosen(), 1.0, by=dialog.by())
    assert strongest.entries[0].kind == "package"
    dialog.trust_by.setCurrentIndex(dialog.trust_by.findData("hash"))
    assert dialog.by() == "hash"
    pinned, _ = apply_review(TrustList(), found, dialog.chosen(), 1.0, by=dialog.by())
    assert pinned.entries[0].kind == "hash"
