"""The trust list for the desktop app: trust from the side panel, the first-run review,
and edits made by the command line picked up while the window runs.

Lives in the GUI thread. The judge it updates is used by the sampler thread; swapping
its list is one reference assignment (see ``TrustJudge.set_trust_list``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from portwatch.config import trustfile
from portwatch.core.trust import (
    ReviewCandidate,
    TrustEntry,
    TrustError,
    TrustJudge,
    TrustList,
    apply_review,
    review_candidates,
    trust_listener,
)
from portwatch.core.types import Proto
from portwatch.core.watchlist import WatchList, WatchSpec
from portwatch.files import ResourceShortage, shortage

log = logging.getLogger(__name__)


def describe_spec(spec: WatchSpec) -> str:
    """``3653/tcp``, ``3653/tcp and 3653/udp``, ``40000-40040/tcp``: always naming the
    protocols, since what is trusted must be read exactly."""
    ports = str(spec.lo) if spec.lo == spec.hi else f"{spec.lo}-{spec.hi}"
    return " and ".join(f"{ports}/{proto.value}" for proto in spec.protos)


@dataclass(frozen=True)
class TrustScope:
    """One choice of what trusting a program covers, with the words that say exactly so."""

    spec: WatchSpec
    text: str


def trust_scopes(port: int, proto: Proto, watched: WatchSpec | None) -> list[TrustScope]:
    """The choices for trusting a program seen on ``port``/``proto``: that listener's port
    and protocol first (the default), then what the watched spec covering it adds."""
    narrow = WatchSpec(port, port, (proto,))
    scopes = [TrustScope(narrow, f"{describe_spec(narrow)} only (the listener shown)")]
    if watched is None:
        return scopes
    if len(watched.protos) > 1:
        both = WatchSpec(port, port, watched.protos)
        scopes.append(TrustScope(both, f"{describe_spec(both)} (both protocols)"))
    if watched.is_range:
        count = watched.hi - watched.lo + 1
        scopes.append(
            TrustScope(
                watched,
                f"every port of the watched range: {describe_spec(watched)} ({count} ports)",
            )
        )
    return scopes


# How often the file is checked for edits made by `portwatch trust …` meanwhile.
RELOAD_EVERY_MS = 2000


class TrustService(QObject):
    """Owns the trust file for the window and keeps the judge in step with it."""

    changed = Signal(object)
    """The new :class:`TrustList` after any change (trusted, reviewed, reloaded)."""
    message = Signal(str)
    """A short confirmation for the status bar ("Trusted … on 3653/tcp")."""
    notices = Signal(list)
    """Problems for the notice banner (bad trust file, could not save)."""
    review_requested = Signal(object)
    """The first-run review candidates (a list of ``ReviewCandidate``), once."""

    def __init__(
        self,
        path: Path,
        judge: TrustJudge,
        watchlist: Callable[[], WatchList],
        *,
        clock: Callable[[], float] = time.time,
        reload_every_ms: int = RELOAD_EVERY_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._path = path
        self.judge = judge
        self._watchlist = watchlist
        self._clock = clock
        self._review_offered = False
        self._reloader = trustfile.Reloader(path)
        self._timer = QTimer(self)
        self._timer.setInterval(reload_every_ms)
        self._timer.timeout.connect(self.reload_if_changed)
        self._timer.start()

    @classmethod
    def load(
        cls, path: Path, signer_of: Any = None, **kwargs: Any
    ) -> tuple[TrustService, list[str]]:
        """Read the file and build the judge and the service; returns the file's problems."""
        loaded = trustfile.load(path)
        service = cls(path, TrustJudge(loaded.trust_list, signer_of), **kwargs)
        return service, list(loaded.problems)

    @property
    def trust_list(self) -> TrustList:
        return self.judge.trust_list

    def _update(self, change: Callable[[TrustList], TrustList]) -> TrustList | None:
        try:
            loaded = trustfile.update(self._path, change)
        except TrustError as exc:
            self.notices.emit([str(exc)])
            return None
        except OSError as exc:
            self.notices.emit([f"could not save {self._path}: {exc.strerror or exc}"])
            return None
        except (ResourceShortage, MemoryError) as exc:
            self.notices.emit([f"could not save {self._path}: {shortage(exc)}"])
            return None
        if loaded.problems:
            self.notices.emit(list(loaded.problems))
        self.judge.set_trust_list(loaded.trust_list)
        self._reloader.mark_seen()  # our own write is not news
        self.changed.emit(loaded.trust_list)
        return loaded.trust_list

    def scopes_for(self, view: Any) -> list[TrustScope]:
        """What trusting ``view``'s program could cover, narrowest first (the default)."""
        listener = view.listener
        return trust_scopes(
            listener.port, listener.proto, self._watchlist().spec_for(listener.port, listener.proto)
        )

    @Slot(object)
    def trust_view(self, view: Any, spec: WatchSpec | None = None) -> None:
        """Trust the program of a ``ListenerView`` on ``spec``.

        Without ``spec``, exactly the port and protocol of the listener shown: trusting
        more (both protocols, the whole watched range) is only ever an explicit choice.
        """
        listener = view.listener
        chosen = spec or WatchSpec(listener.port, listener.port, (listener.proto,))
        when = self._clock()
        if self._update(
            lambda tl: trust_listener(tl, listener, chosen, when, "trusted in the window")
        ):
            owner = listener.owner
            who = owner.exe if owner is not None and owner.exe else "the program"
            self.message.emit(f"Trusted {who} on {describe_spec(chosen)}")

    @Slot(object)
    def offer_review(self, result: Any) -> None:
        """On the first tick: list what already listens on watched ports (review pending)."""
        if self._review_offered or self.trust_list.first_run_review_done:
            return
        self._review_offered = True
        candidates = review_candidates(result.sample.listeners, self._watchlist(), self.judge)
        if candidates:
            self.review_requested.emit(candidates)
        else:
            # Nothing was there to decide about: the review is done.
            self.finish_review([], [])

    def finish_review(
        self,
        candidates: Sequence[ReviewCandidate],
        chosen: Sequence[int],
        by: str | None = None,
    ) -> None:
        """Trust the chosen candidates (0-based) and record that the review happened;
        ``by`` pins them by one kind (default: the strongest that verifies)."""
        messages: list[str] = []

        def change(trust_list: TrustList) -> TrustList:
            updated, lines = apply_review(trust_list, candidates, chosen, self._clock(), by=by)
            messages.extend(lines)
            return updated

        if self._update(change) is not None and messages:
            self.message.emit("; ".join(messages))

    @Slot(object)
    def remove_entry(self, entry: TrustEntry) -> None:
        """Stop trusting one entry (from the trusted-programs dialog)."""
        if self._update(lambda tl: tl.without_entry(entry)) is not None:
            self.message.emit(f"No longer trusted: {entry.describe()}")

    @Slot()
    def reload_if_changed(self) -> None:
        """Pick up edits made by the command line while the window runs (and record
        package upgrades the judge has seen, which the reload then picks up)."""
        try:
            self._record_upgrades()
            loaded = self._reloader.poll()
        except (ResourceShortage, MemoryError):
            return  # read again on the next look; the sampler's poll says what ran out
        if loaded is None:
            return
        if loaded.problems:
            self.notices.emit(list(loaded.problems))
        if not loaded.complete:
            return  # a file that cannot be used at all: keep judging with the last good list
        self.judge.set_trust_list(loaded.trust_list)
        self.changed.emit(loaded.trust_list)

    def _record_upgrades(self) -> None:
        upgrades = self.judge.take_upgrades()
        if not upgrades:
            return
        try:
            trustfile.record_upgrades(self._path, upgrades)
        except OSError as exc:
            self.notices.emit(
                [f"could not record the package upgrade in {self._path}: {exc.strerror or exc}"]
            )

    def stop(self) -> None:
        self._timer.stop()
