"""How a listener's owner is judged: the seam between the engine and the trust model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from portwatch.core.types import Listener, Status


@dataclass(frozen=True)
class Verdict:
    """The status of one listener's owner, with the reason in plain words.

    ``binary_changed`` is set when a trusted path now runs a file with another hash;
    ``previous_sha256`` then holds the hash that was trusted, ``current_sha256`` the
    hash now read and ``changed_path`` the file that changed (the executable, or an
    interpreter's script). ``upgraded`` is set when a program trusted by package runs
    a newer version of it ("nginx-core 1.22.1-9 → 1.22.1-10, verified by dpkg"):
    still known, and worth recording.
    """

    status: Status
    reason: str | None = None
    binary_changed: bool = False
    previous_sha256: str | None = None
    current_sha256: str | None = None
    changed_path: str | None = None
    upgraded: str | None = None


class Judge(Protocol):
    """Decides whether the owner of a listener is known for that port."""

    def judge(self, listener: Listener) -> Verdict:
        """The verdict for one listener (watched or not)."""
        ...


class NoTrustJudge:
    """Before anything is trusted: an identified owner is unknown, anything less unattributed.

    A pid or a name alone never makes an owner known; only an identity the user
    trusted can (see the trust model).
    """

    def judge(self, listener: Listener) -> Verdict:
        if not listener.attributed:
            reason = None
            if listener.owner is not None and listener.owner.note:
                reason = listener.owner.note
            return Verdict(Status.UNATTRIBUTED, reason or "the owner could not be inspected")
        return Verdict(Status.UNKNOWN, "no program is trusted for this port yet")


UNWATCHED = Verdict(Status.UNWATCHED, "this port is not on the watch list")


def verdict_for(listener: Listener, watched: bool, judge: Judge) -> Verdict:
    """The one place a listener's verdict is decided, for every output.

    Trust matters on watched ports only: elsewhere a listener gets the neutral
    ``unwatched`` status rather than an alarming "unknown owner" (alarm fatigue
    makes people stop reading alerts), and its owner is not judged at all.
    """
    if not watched:
        return UNWATCHED
    return judge.judge(listener)


def judge_revision(judge: Judge) -> object:
    """What a judge's verdicts depend on besides the listener (its trust list).

    The engine re-judges unchanged listeners only when this object is replaced;
    a judge without a ``revision`` never changes its mind by itself.
    """
    return getattr(judge, "revision", None)
