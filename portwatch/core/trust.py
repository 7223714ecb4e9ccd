"""The trust list: which programs may listen on which watched ports.

Trust is given to an :class:`~portwatch.core.identity.Identity` (executable path and
the SHA-256 of the file it runs, plus the script for interpreters) for one watched
spec (a port or range, on one or both protocols). A name, a pid or a guessed path
never makes an owner known, and an owner whose executable could not be read is
unattributed, never known.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

from portwatch.core.identity import (
    Identity,
    is_sha256,
    same_path,
    script_is_file,
    short_hash,
)
from portwatch.core.types import Listener, Owner, Proto, Status
from portwatch.core.verdict import Verdict
from portwatch.core.watchlist import WatchList, WatchSpec


class TrustError(ValueError):
    """A trust entry that cannot be accepted; the message says why in plain words."""


@dataclass(frozen=True)
class TrustEntry:
    """Trust for one program on one spec: "this program may listen here".

    An entry pins ``exe`` and ``sha256`` (and, for interpreters, ``script`` and
    ``script_sha256``). An entry with a ``signer`` instead trusts any build signed by
    that authority, at ``exe`` if given or anywhere if not.
    """

    spec: WatchSpec
    exe: str | None
    sha256: str | None = None
    script: str | None = None
    script_sha256: str | None = None
    signer: str | None = None
    added_wall: float = 0.0
    note: str | None = None

    def __post_init__(self) -> None:
        if self.signer is not None and not self.signer.strip():
            raise TrustError("the signer is empty")
        if self.signer is None:
            if not self.exe:
                raise TrustError("an entry needs the executable's path (or a signer)")
            if self.sha256 is None:
                raise TrustError(f"an entry for {self.exe} needs its SHA-256 (or a signer)")
        if self.sha256 is not None and not is_sha256(self.sha256):
            raise TrustError(f"{self.sha256!r} is not a SHA-256 (64 lower-case hex digits)")
        if self.script_sha256 is not None:
            if not is_sha256(self.script_sha256):
                raise TrustError(
                    f"{self.script_sha256!r} is not a SHA-256 (64 lower-case hex digits)"
                )
            if not self.script:
                raise TrustError("a script hash was given without the script")

    @property
    def slot(self) -> tuple[WatchSpec, str | None, str | None, str | None]:
        """Entries in the same slot replace each other: trusting again updates the hash."""
        return (self.spec, self.exe, self.script, self.signer if self.sha256 is None else None)

    def covers(self, port: int, proto: Proto) -> bool:
        return self.spec.contains(port, proto)

    def matches(self, identity: Identity, signer: str | None = None) -> bool:
        """True when ``identity`` is the trusted program (ports are checked by the caller)."""
        if not same_path(self.script, identity.script):
            return False
        if self.script_sha256 is not None and self.script_sha256 != identity.script_sha256:
            return False
        if self.sha256 is not None:
            return same_path(self.exe, identity.exe) and self.sha256 == identity.sha256
        # Signer entry: the signature vouches for the file, whatever its hash.
        if self.exe is not None and not same_path(self.exe, identity.exe):
            return False
        return signer is not None and signer == self.signer

    def describe(self) -> str:
        """One line for people: ``3653/tcp  /usr/bin/x  sha256 0123456789ab``."""
        who = self.exe or "any path"
        if self.script:
            who += f" running {self.script}"
        pin = f"sha256 {short_hash(self.sha256)}" if self.sha256 else f"signed by {self.signer}"
        return f"{self.spec}  {who}  {pin}"


@dataclass(frozen=True)
class TrustList:
    """All trust entries plus whether the first-run review has been done."""

    entries: tuple[TrustEntry, ...] = ()
    # Wall-clock time the first-run review was completed; None while it is pending.
    reviewed_wall: float | None = None

    def __iter__(self) -> Iterator[TrustEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def first_run_review_done(self) -> bool:
        return self.reviewed_wall is not None

    def with_review_done(self, wall: float) -> TrustList:
        return replace(self, reviewed_wall=wall)

    def with_entry(self, entry: TrustEntry) -> TrustList:
        """Add ``entry``, replacing any entry in the same slot (same spec, path, script)."""
        kept = tuple(e for e in self.entries if e.slot != entry.slot)
        return replace(self, entries=(*kept, entry))

    def without(
        self, spec: WatchSpec, exe: str | None, script: str | None = None, any_script: bool = True
    ) -> TrustList:
        """Drop entries for ``spec`` and ``exe`` (all of that exe's scripts unless
        ``any_script`` is False, in which case only ``script``)."""
        return replace(
            self,
            entries=tuple(
                e
                for e in self.entries
                if not (
                    e.spec == spec
                    and same_path(e.exe, exe)
                    and (any_script or same_path(e.script, script))
                )
            ),
        )

    def without_entry(self, entry: TrustEntry) -> TrustList:
        """Drop exactly this entry (the window's "Remove")."""
        return replace(self, entries=tuple(e for e in self.entries if e != entry))

    def entries_for(self, port: int, proto: Proto) -> tuple[TrustEntry, ...]:
        return tuple(e for e in self.entries if e.covers(port, proto))

    def match(
        self, identity: Identity, port: int, proto: Proto, signer: str | None = None
    ) -> TrustEntry | None:
        """The entry that makes ``identity`` known on port/proto, if any."""
        for entry in self.entries_for(port, proto):
            if entry.matches(identity, signer):
                return entry
        return None

    def changed_from(self, identity: Identity, port: int, proto: Proto) -> TrustEntry | None:
        """An entry for the same path (and script) on this port whose file hash differs:
        the trusted program's file was replaced."""
        for entry in self.entries_for(port, proto):
            if entry.sha256 is None or not same_path(entry.exe, identity.exe):
                continue
            if not same_path(entry.script, identity.script):
                continue
            if entry.sha256 != identity.sha256:
                return entry
            if entry.script_sha256 is not None and entry.script_sha256 != identity.script_sha256:
                return entry
        return None


SignerLookup = Callable[[Owner], "str | None"]


class TrustJudge:
    """Judges listeners against a :class:`TrustList` (implements ``core.verdict.Judge``).

    ``signer_of`` reads an owner's code signer where the OS offers one; it is only
    asked when an entry for the port trusts a signer, so it costs nothing elsewhere.
    """

    def __init__(self, trust_list: TrustList, signer_of: SignerLookup | None = None) -> None:
        self.trust_list = trust_list
        self._signer_of = signer_of

    def set_trust_list(self, trust_list: TrustList) -> None:
        """Use an updated list from the next judgement on (e.g. after the user trusts one).

        Safe to call from another thread: one reference is replaced, and each judgement
        reads it once."""
        self.trust_list = trust_list

    @property
    def revision(self) -> object:
        """Replaced whenever the verdicts may change: the trust list itself (immutable)."""
        return self.trust_list

    def judge(self, listener: Listener) -> Verdict:
        """The verdict for ``listener``: known only when every process holding it is.

        A socket shared by several processes (inherited across fork, passed as a file
        descriptor, an SO_REUSEPORT group) lets each of them accept connections, so a
        trusted holder never vouches for an untrusted one: the verdict names the
        holders that are not trusted.
        """
        verdict = self._judge_holder(listener)
        if not listener.shared_with:
            return verdict
        untrusted: list[tuple[Owner, Verdict]] = []
        for other in listener.shared_with:
            judged = self._judge_holder(replace(listener, owner=other, shared_with=()))
            if judged.status is not Status.KNOWN:
                untrusted.append((other, judged))
        if not untrusted:
            return verdict
        names = ", ".join(_holder_label(owner) for owner, _ in untrusted)
        if verdict.status is not Status.KNOWN:
            return replace(verdict, reason=f"{verdict.reason}; the socket is also held by {names}")
        first = untrusted[0][1]
        status = (
            Status.UNKNOWN
            if any(v.status is Status.UNKNOWN for _, v in untrusted)
            else Status.UNATTRIBUTED
        )
        reason = f"the socket is also held by {names}, not trusted: {first.reason}"
        return replace(first, status=status, reason=reason)

    def _judge_holder(self, listener: Listener) -> Verdict:
        """The verdict for the listener's ``owner`` alone."""
        owner = listener.owner
        identity = Identity.of(owner)
        if identity is None or owner is None:
            reason = owner.note if owner is not None and owner.note else None
            return Verdict(Status.UNATTRIBUTED, reason or "the owner could not be inspected")
        port, proto = listener.port, listener.proto
        # One list for the whole judgement, even if the window swaps in a new one meanwhile.
        trust_list = self.trust_list
        entries = trust_list.entries_for(port, proto)
        if not entries:
            return Verdict(Status.UNKNOWN, f"no program is trusted for {port}/{proto}")
        if trust_list.match(identity, port, proto) is not None:
            return Verdict(Status.KNOWN, f"trusted for {port}/{proto}")
        if self._signer_of is not None and any(e.signer and e.sha256 is None for e in entries):
            signer = self._signer_of(owner)
            if signer and trust_list.match(identity, port, proto, signer) is not None:
                return Verdict(Status.KNOWN, f"signed by {signer}, trusted for {port}/{proto}")
        if script_is_file(identity.script) and identity.script_sha256 is None:
            return Verdict(
                Status.UNKNOWN,
                f"{identity.script} could not be read, so it cannot be matched to a trusted one",
            )
        changed = trust_list.changed_from(identity, port, proto)
        if changed is not None:
            return _changed_verdict(changed, identity)
        return Verdict(Status.UNKNOWN, f"{identity.describe()} is not trusted for {port}/{proto}")


def _holder_label(owner: Owner) -> str:
    """``/usr/bin/evil (pid 42)`` for the reason of a shared socket's verdict."""
    what = owner.exe or owner.name or "a process that could not be inspected"
    if owner.script:
        what += f" running {owner.script}"
    return f"{what} (pid {owner.pid})"


def _changed_verdict(entry: TrustEntry, identity: Identity) -> Verdict:
    old: str | None
    new: str | None
    if entry.sha256 != identity.sha256:
        old, new, what = entry.sha256, identity.sha256, identity.exe
    else:
        old, new = entry.script_sha256, identity.script_sha256
        what = identity.script or "script"
    reason = (
        f"the file at {what} changed since it was trusted: "
        f"trusted sha256 {old}, now sha256 {new or 'unreadable'}"
    )
    return Verdict(
        Status.UNKNOWN,
        reason,
        binary_changed=True,
        previous_sha256=old,
        current_sha256=new,
        changed_path=what,
    )


def entry_for_listener(
    listener: Listener,
    spec: WatchSpec,
    added_wall: float,
    note: str | None = None,
    signer: str | None = None,
) -> TrustEntry:
    """The entry that trusts this listener's program on ``spec``.

    Raises :class:`TrustError` when the owner has no identity (unattributed owners
    cannot be trusted: there is nothing to pin the trust to) or ``spec`` does not
    cover the listener's port.
    """
    identity = Identity.of(listener.owner)
    if identity is None:
        raise TrustError(
            f"the owner of {listener.endpoint.label()} could not be inspected, so it cannot "
            "be trusted"
        )
    if not spec.contains(listener.port, listener.proto):
        raise TrustError(f"{spec} does not cover {listener.port}/{listener.proto}")
    return TrustEntry(
        spec=spec,
        exe=identity.exe,
        sha256=identity.sha256,
        script=identity.script,
        script_sha256=identity.script_sha256,
        signer=signer,
        added_wall=added_wall,
        note=note,
    )


def trust_listener(
    trust_list: TrustList,
    listener: Listener,
    spec: WatchSpec,
    added_wall: float,
    note: str | None = None,
) -> TrustList:
    """The "Trust this program on this port" action, for the side panel and the review.

    Replaces an older entry for the same path and script on ``spec`` (so trusting a
    changed binary again updates its hash). Raises :class:`TrustError` for an owner
    that has no identity.
    """
    return trust_list.with_entry(entry_for_listener(listener, spec, added_wall, note))


ReviewCandidate = tuple[Listener, WatchSpec, Verdict]


def review_candidates(
    listeners: Iterable[Listener], watchlist: WatchList, judge: TrustJudge
) -> list[ReviewCandidate]:
    """Listeners on watched ports that are not known yet, for the first-run review.

    They are listed for the user to decide, never trusted silently. Each program is
    listed once per spec even when it listens on IPv4 and IPv6.
    """
    seen: set[tuple[object, ...]] = set()
    out: list[ReviewCandidate] = []
    for listener in sorted(listeners, key=lambda item: item.endpoint):
        spec = watchlist.spec_for(listener.port, listener.proto)
        if spec is None:
            continue
        verdict = judge.judge(listener)
        if verdict.status is Status.KNOWN:
            continue
        identity = Identity.of(listener.owner)
        key: tuple[object, ...] = (
            spec,
            listener.port,
            listener.proto,
            identity.key if identity else ("pid", listener.owner.pid if listener.owner else None),
        )
        if key in seen:
            continue
        seen.add(key)
        out.append((listener, spec, verdict))
    return out


def apply_review(
    trust_list: TrustList,
    candidates: Sequence[ReviewCandidate],
    chosen: Iterable[int],
    now_wall: float,
) -> tuple[TrustList, list[str]]:
    """Trust the chosen candidates (0-based indices) and mark the review done.

    Returns the new list and one line per candidate for the person: trusted, or why
    not (an unattributed owner has nothing to pin trust to).
    """
    updated = trust_list
    messages: list[str] = []
    for index in chosen:
        listener, spec, verdict = candidates[index]
        where = listener.endpoint.label()
        if verdict.status is Status.UNATTRIBUTED:
            messages.append(f"{where}: cannot be trusted: its program could not be inspected")
            continue
        try:
            updated = trust_listener(
                updated, listener, spec, now_wall, note="trusted in the first-run review"
            )
        except TrustError as exc:
            messages.append(f"{where}: {exc}")
            continue
        messages.append(f"{where}: trusted on {spec}")
    return updated.with_review_done(now_wall), messages
