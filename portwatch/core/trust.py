"""The trust list: which programs may listen on which watched ports.

Trust is given to an :class:`~portwatch.core.identity.Identity` for one watched spec
(a port or range, on one or both protocols), pinned in one of three ways (the entry's
*kind*):

- ``hash``: the executable's path and the SHA-256 of its file (plus the script for
  interpreters); any change to the file makes it unknown ("binary changed").
- ``package``: the path and the installed package it came from, verified against the
  package manager's record; an upgrade of the package stays trusted, a file changed
  after install or a copy elsewhere does not.
- ``signer``: a code signature the OS verified (Windows Authenticode subject and
  issuer or thumbprint, a macOS Team ID), never a display name.

A name, a pid or a guessed path never makes an owner known, and an owner whose
executable could not be read is unattributed, never known.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

from portwatch.core.identity import (
    NAME_ONLY,
    STDIN_SCRIPT,
    Identity,
    is_sha256,
    path_key,
    pinned_by_name_only,
    same_path,
    script_is_file,
    short_hash,
)
from portwatch.core.types import Listener, Owner, PackageInfo, Proto, SignerInfo, Status
from portwatch.core.verdict import Verdict
from portwatch.core.watchlist import WatchList, WatchSpec


class TrustError(ValueError):
    """A trust entry that cannot be accepted; the message says why in plain words."""


KIND_HASH = "hash"
KIND_PACKAGE = "package"
KIND_SIGNER = "signer"
KINDS = (KIND_HASH, KIND_PACKAGE, KIND_SIGNER)


def signer_matches(trusted: SignerInfo, seen: SignerInfo | None) -> bool:
    """Whether a verified signature ``seen`` is the signer a trust entry names.

    Windows: the same subject *and* the same issuer or certificate thumbprint (a
    subject alone can be bought by anyone from another authority). macOS: the same
    Team ID from an Apple-anchored chain, or Apple's own signature.
    """
    if seen is None or seen.platform != trusted.platform:
        return False
    if trusted.platform == "windows":
        if not trusted.subject or trusted.subject != seen.subject:
            return False
        same_issuer = bool(trusted.issuer) and trusted.issuer == seen.issuer
        same_cert = bool(trusted.thumbprint) and (
            (trusted.thumbprint or "").lower() == (seen.thumbprint or "").lower()
        )
        return same_issuer or same_cert
    if trusted.platform == "macos":
        if trusted.team_id:
            return trusted.team_id == seen.team_id
        return trusted.apple and seen.apple
    return False


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
    # Package entries: the package the executable (and script) came from, and the
    # version that was installed when it was trusted (to report upgrades plainly).
    package: str | None = None
    package_version: str | None = None
    script_package: str | None = None
    # Signer entries: the verified signature. An entry with only a ``signer`` name
    # (written by older versions) is never matched: see ``needs_review``.
    signer_id: SignerInfo | None = None

    def __post_init__(self) -> None:
        if self.signer is not None and not self.signer.strip():
            raise TrustError("the signer is empty")
        if self.package is not None:
            if not self.package.strip():
                raise TrustError("the package name is empty")
            if not self.exe:
                raise TrustError(f"a package entry for {self.package} needs the executable's path")
            if self.sha256 is not None or self.signer_id is not None:
                raise TrustError("an entry is pinned by one kind: hash, package or signer")
        if self.script_package is not None and (self.package is None or not self.script):
            raise TrustError("a script package needs a package entry with a script")
        if self.signer_id is not None and self.sha256 is not None:
            raise TrustError("an entry is pinned by one kind: hash, package or signer")
        if self.package is None and self.signer_id is None and self.signer is None:
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
    def kind(self) -> str:
        """``hash``, ``package`` or ``signer``: what pins this entry."""
        if self.package is not None:
            return KIND_PACKAGE
        if self.sha256 is None and (self.signer_id is not None or self.signer is not None):
            return KIND_SIGNER
        return KIND_HASH

    @property
    def needs_review(self) -> bool:
        """A signer entry that holds only a display name (older versions wrote these): it
        cannot be verified, so it never matches until it is trusted again."""
        return self.kind == KIND_SIGNER and self.signer_id is None

    @property
    def slot(self) -> tuple[WatchSpec, str | None, str | None, str | None]:
        """Entries in the same slot replace each other: trusting again updates the hash
        (or turns a hash entry for the same path into a package entry)."""
        signer_key = None
        if self.kind == KIND_SIGNER:
            signer_key = self.signer_id.label() if self.signer_id else self.signer
        # Paths as the file system compares them: re-trusting C:\App\x.exe as c:\app\X.EXE
        # replaces the entry instead of adding a second one.
        return (self.spec, path_key(self.exe), path_key(self.script), signer_key)

    def covers(self, port: int, proto: Proto) -> bool:
        return self.spec.contains(port, proto)

    def matches(
        self, identity: Identity, signer: str | None = None, owner: Owner | None = None
    ) -> bool:
        """True when ``identity`` is the trusted program (ports are checked by the caller).

        Package and signer entries need the ``owner`` (its verified package or signer)."""
        if not same_path(self.script, identity.script):
            return False
        if self.signer_id is not None:
            if self.exe is not None and not same_path(self.exe, identity.exe):
                return False
            if self.script_sha256 is not None and self.script_sha256 != identity.script_sha256:
                return False
            return owner is not None and signer_matches(self.signer_id, owner.signer)
        if self.package is None and self.sha256 is None:
            # A signer entry holding only a name: a display name is no proof (anyone can
            # make a certificate with any name), so it never matches; it waits for review.
            return False
        return self._pinned_matches(identity, owner)

    def _pinned_matches(self, identity: Identity, owner: Owner | None) -> bool:
        """Hash and package entries: the same executable path, its file pinned by its
        hash or by the verified package it came from, and the script likewise by its
        own package or its hash."""
        if not same_path(self.exe, identity.exe):
            return False
        if self.package is not None:
            if owner is None or owner.package is None or owner.package.name != self.package:
                return False
            if self.script_package is not None:
                return owner.script_package is not None and (
                    owner.script_package.name == self.script_package
                )
        elif self.sha256 != identity.sha256:
            return False
        return self.script_sha256 is None or self.script_sha256 == identity.script_sha256

    def pin(self) -> str:
        """What vouches for the program, for people: ``package pw-demo 1.0``, …"""
        if self.package is not None:
            version = f" {self.package_version}" if self.package_version else ""
            return f"package {self.package}{version}"
        if self.signer_id is not None:
            return f"signed by {self.signer_id.label()}"
        if self.needs_review:
            return f"signed by {self.signer} (needs review: a name alone is not verified)"
        return f"sha256 {short_hash(self.sha256)}"

    def describe(self) -> str:
        """One line for people: ``3653/tcp  /usr/bin/x  sha256 0123456789ab``."""
        who = self.exe or "any path"
        if self.script:
            who += f" running {self.script}"
            if pinned_by_name_only(self.script):
                who += f" ({NAME_ONLY})"
        return f"{self.spec}  {who}  {self.pin()}"


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
        self,
        identity: Identity,
        port: int,
        proto: Proto,
        signer: str | None = None,
        owner: Owner | None = None,
    ) -> TrustEntry | None:
        """The entry that makes ``identity`` known on port/proto, if any."""
        for entry in self.entries_for(port, proto):
            if entry.matches(identity, signer, owner):
                return entry
        return None

    def changed_from(
        self, identity: Identity, port: int, proto: Proto, owner: Owner | None = None
    ) -> TrustEntry | None:
        """An entry for the same path (and script) on this port whose file differs:
        the trusted program's file was replaced (a hash entry whose hash differs, or a
        package entry whose file no longer matches the package's record)."""
        for entry in self.entries_for(port, proto):
            if not (
                same_path(entry.exe, identity.exe) and same_path(entry.script, identity.script)
            ):
                continue
            if entry.package is not None:
                if _package_changed(entry, owner):
                    return entry
            elif entry.sha256 is not None and (
                entry.sha256 != identity.sha256
                or (
                    entry.script_sha256 is not None
                    and entry.script_sha256 != identity.script_sha256
                )
            ):
                return entry
        return None


def _package_changed(entry: TrustEntry, owner: Owner | None) -> bool:
    """The package's record still names the file but its bytes differ, or the file now
    comes from another package."""
    if owner is None:
        return False
    if owner.package_problem:
        return True
    return owner.package is not None and owner.package.name != entry.package


SignerLookup = Callable[[Owner], "SignerInfo | None"]


class TrustJudge:
    """Judges listeners against a :class:`TrustList` (implements ``core.verdict.Judge``).

    The probe puts an owner's verified package and signer on the :class:`Owner`;
    ``signer_of`` is asked only when the owner carries no signer and an entry for the
    port trusts one (a probe that does not read signers), so it costs nothing elsewhere.
    """

    def __init__(self, trust_list: TrustList, signer_of: SignerLookup | None = None) -> None:
        self.trust_list = trust_list
        self._signer_of = signer_of
        # Package upgrades said already, by (entry slot, version): each is said once,
        # however many processes of the new version start (and before it is recorded).
        self._said: set[tuple[object, str]] = set()
        # Upgrades to record in the trust file, taken by whoever owns the file.
        self._upgrades: deque[PackageUpgrade] = deque()

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

    def take_upgrades(self) -> list[PackageUpgrade]:
        """The package upgrades seen since the last call, for the trust file's owner to
        record (:func:`with_versions`). Safe to call from another thread."""
        taken: list[PackageUpgrade] = []
        while self._upgrades:
            taken.append(self._upgrades.popleft())
        return taken

    def _is_news(self, entry: TrustEntry, owner: Owner) -> bool:
        """Whether ``owner`` runs an upgrade of ``entry``'s package not said before."""
        package = owner.package
        if upgrade_line(entry, package, owner) is None:
            return False
        assert package is not None
        key = (entry.slot, package.version)
        if key in self._said:
            return False
        self._said.add(key)
        self._upgrades.append((entry, package.version))
        return True

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
        if identity.extra_code:
            # Whatever the entries say about its files, this process also runs code
            # that no trust entry pins.
            return Verdict(
                Status.UNKNOWN,
                f"{identity.describe()} was started with {identity.extra_code}, which loads"
                " code that trust does not cover",
            )
        if (
            owner.signer is None
            and self._signer_of is not None
            and any(e.signer_id is not None for e in entries)
        ):
            owner = replace(owner, signer=self._signer_of(owner))
        matched = trust_list.match(identity, port, proto, owner=owner)
        if matched is not None:
            return _known_verdict(matched, owner, port, proto, self._is_news(matched, owner))
        if script_is_file(identity.script) and identity.script_sha256 is None:
            return Verdict(
                Status.UNKNOWN,
                f"{identity.script} could not be read, so it cannot be matched to a trusted one",
            )
        changed = trust_list.changed_from(identity, port, proto, owner)
        if changed is not None:
            return _changed_verdict(changed, identity, owner)
        for entry in entries:
            if entry.package is not None and same_path(entry.exe, identity.exe):
                return Verdict(
                    Status.UNKNOWN,
                    f"{identity.exe} is not part of an installed {entry.package} package"
                    f" any more, so it is not trusted for {port}/{proto}",
                )
        return Verdict(Status.UNKNOWN, f"{identity.describe()} is not trusted for {port}/{proto}")


def _holder_label(owner: Owner) -> str:
    """``/usr/bin/evil (pid 42)`` for the reason of a shared socket's verdict."""
    what = owner.exe or owner.name or "a process that could not be inspected"
    if owner.script:
        what += f" running {owner.script}"
    return f"{what} (pid {owner.pid})"


# An upgrade seen: the entry as it was judged with, and the version now installed.
PackageUpgrade = tuple[TrustEntry, str]


def upgrade_line(
    entry: TrustEntry, package: PackageInfo | None, owner: Owner | None = None
) -> str | None:
    """``nginx-core 1.22.1-9 → 1.22.1-10, verified by dpkg`` when the trusted package
    was upgraded since it was trusted; None otherwise.

    A process still running the file of an earlier version (replaced or deleted on disk
    by the upgrade, ``owner.replaced``) is not an upgrade of what is installed: after
    the new version is recorded, it must not read as a step back."""
    if package is None or entry.package is None:
        return None
    if entry.package_version is None or entry.package_version == package.version:
        return None
    if owner is not None and owner.replaced:
        return None
    return (
        f"{package.name} {entry.package_version} → {package.version}, verified by {package.manager}"
    )


def with_versions(trust_list: TrustList, upgrades: Iterable[PackageUpgrade]) -> TrustList:
    """``trust_list`` with each upgraded entry recording its new version, so the upgrade
    is said once. An entry that is no longer exactly the one judged with (the user
    edited or removed it meanwhile) is left as the user has it. Returns ``trust_list``
    itself when nothing changes."""
    updated = trust_list
    for entry, version in upgrades:
        if entry.package_version == version or entry not in updated.entries:
            continue
        bumped = replace(entry, package_version=version)
        updated = replace(
            updated, entries=tuple(bumped if e == entry else e for e in updated.entries)
        )
    return updated


def _known_verdict(
    entry: TrustEntry, owner: Owner, port: int, proto: Proto, announce: bool = True
) -> Verdict:
    if entry.package is not None and owner.package is not None:
        upgraded = upgrade_line(entry, owner.package, owner) if announce else None
        if upgraded is not None:
            return Verdict(
                Status.KNOWN, f"trusted for {port}/{proto}: {upgraded}", upgraded=upgraded
            )
        return Verdict(
            Status.KNOWN,
            f"trusted for {port}/{proto}: {owner.package.label()}, verified by"
            f" {owner.package.manager}",
        )
    if entry.signer_id is not None:
        return Verdict(
            Status.KNOWN, f"signed by {entry.signer_id.label()}, trusted for {port}/{proto}"
        )
    if pinned_by_name_only(entry.script):
        return Verdict(Status.KNOWN, f"trusted for {port}/{proto}, {NAME_ONLY}")
    return Verdict(Status.KNOWN, f"trusted for {port}/{proto}")


def _changed_verdict(entry: TrustEntry, identity: Identity, owner: Owner | None = None) -> Verdict:
    if entry.package is not None:
        problem = owner.package_problem if owner is not None else None
        if not problem and owner is not None and owner.package is not None:
            problem = f"it now comes from {owner.package.label()}, not {entry.package}"
        reason = (
            f"the file at {identity.exe} changed since it was trusted as part of"
            f" {entry.package}: {problem or 'it does not verify'}"
        )
        return Verdict(
            Status.UNKNOWN,
            reason,
            binary_changed=True,
            current_sha256=identity.sha256,
            changed_path=identity.exe,
        )
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
    by: str | None = None,
) -> TrustEntry:
    """The entry that trusts this listener's program on ``spec``.

    ``by`` chooses the kind (``hash``, ``package``, ``signer``); without it the
    strongest identity that verifies is used: package, then signer, then hash.
    Raises :class:`TrustError` when the owner has no identity (unattributed owners
    cannot be trusted: there is nothing to pin the trust to), the chosen kind does not
    verify, or ``spec`` does not cover the listener's port.
    """
    owner = listener.owner
    identity = Identity.of(owner)
    if identity is None or owner is None:
        raise TrustError(
            f"the owner of {listener.endpoint.label()} could not be inspected, so it cannot "
            "be trusted"
        )
    if not spec.contains(listener.port, listener.proto):
        raise TrustError(f"{spec} does not cover {listener.port}/{listener.proto}")
    return entry_for_identity(
        identity,
        spec,
        added_wall,
        note=note,
        package=owner.package,
        script_package=owner.script_package,
        package_problem=owner.package_problem,
        signer=owner.signer,
        by=by,
    )


def entry_for_identity(
    identity: Identity,
    spec: WatchSpec,
    added_wall: float,
    *,
    note: str | None = None,
    package: PackageInfo | None = None,
    script_package: PackageInfo | None = None,
    package_problem: str | None = None,
    signer: SignerInfo | None = None,
    by: str | None = None,
) -> TrustEntry:
    """The entry of kind ``by`` (or the strongest that verifies) for a program whose
    package and signer were verified by the probe. The one place the kind is chosen."""
    if by is not None and by not in KINDS:
        raise TrustError(f"{by!r} is not one of {', '.join(KINDS)}")
    if identity.extra_code:
        raise TrustError(
            f"{identity.exe} was started with {identity.extra_code}, which loads code trust "
            "cannot pin: start it without that to trust it"
        )
    if identity.script == STDIN_SCRIPT:
        raise TrustError(
            f"{identity.exe} reads its program from standard input, so nothing pins what "
            "it runs: start it with a script file to trust it"
        )
    # A script that is a file must verify as well: by its own package, else by its hash.
    script_pinned = identity.script_sha256 is not None or not script_is_file(identity.script)
    if by is None:
        if package is not None and (script_package is not None or script_pinned):
            by = KIND_PACKAGE
        elif signer is not None:
            by = KIND_SIGNER
        else:
            by = KIND_HASH
    if by == KIND_PACKAGE:
        if package is None:
            why = f": {package_problem}" if package_problem else ""
            raise TrustError(f"{identity.exe} does not verify against an installed package{why}")
        return TrustEntry(
            spec=spec,
            exe=identity.exe,
            script=identity.script,
            script_sha256=None if script_package is not None else identity.script_sha256,
            added_wall=added_wall,
            note=note,
            package=package.name,
            package_version=package.version,
            script_package=script_package.name if script_package is not None else None,
        )
    if by == KIND_SIGNER:
        if signer is None:
            raise TrustError(f"{identity.exe} has no valid code signature that was verified")
        return TrustEntry(
            spec=spec,
            exe=identity.exe,
            script=identity.script,
            script_sha256=identity.script_sha256,
            signer=signer.label(),
            signer_id=signer,
            added_wall=added_wall,
            note=note,
        )
    return TrustEntry(
        spec=spec,
        exe=identity.exe,
        sha256=identity.sha256,
        script=identity.script,
        script_sha256=identity.script_sha256,
        added_wall=added_wall,
        note=note,
    )


def trust_listener(
    trust_list: TrustList,
    listener: Listener,
    spec: WatchSpec,
    added_wall: float,
    note: str | None = None,
    by: str | None = None,
) -> TrustList:
    """The "Trust this program on this port" action, for the side panel and the review.

    Replaces an older entry for the same path and script on ``spec`` (so trusting a
    changed binary again updates its hash). Raises :class:`TrustError` for an owner
    that has no identity.
    """
    return trust_list.with_entry(entry_for_listener(listener, spec, added_wall, note, by=by))


def signer_named(signer: SignerInfo, name: str) -> bool:
    """Whether a verified signer is the one an older entry named by display name (its
    label, subject, subject CN or Team ID, compared without regard to case)."""
    wanted = name.strip().casefold()
    names = {signer.label(), signer.subject, signer.team_id}
    for part in (signer.subject or "").split(","):
        key, _, value = part.strip().partition("=")
        if key.strip().upper() in ("CN", "O"):
            names.add(value.strip().strip('"'))
    # codesign showed "Developer ID Application: Tool Co (TEAMID)" as the authority.
    if signer.team_id and wanted.endswith(f"({signer.team_id.casefold()})"):
        return True
    return any(n is not None and n.strip().casefold() == wanted for n in names)


def review_legacy_signers(
    trust_list: TrustList, signer_of_path: Callable[[str], SignerInfo | None] | None
) -> tuple[TrustList, list[str]]:
    """Re-verify signer entries that hold only a display name (written by older
    versions): each whose file now verifies with a signature of that name becomes a
    full signer entry; the others stay, never matching, and are reported for review.

    Returns the (possibly) updated list and one message per entry concerned."""
    updated = trust_list
    messages: list[str] = []
    for entry in trust_list.entries:
        if not entry.needs_review:
            continue
        assert entry.signer is not None
        verified = signer_of_path(entry.exe) if entry.exe and signer_of_path else None
        if verified is not None and signer_named(verified, entry.signer):
            upgraded = replace(entry, signer=verified.label(), signer_id=verified)
            updated = replace(
                updated,
                entries=tuple(upgraded if e is entry else e for e in updated.entries),
            )
            messages.append(f"re-verified and upgraded: {upgraded.describe()}")
            continue
        why = (
            f"the file is signed by {verified.label()}"
            if verified is not None
            else "its signature cannot be verified here"
            if entry.exe
            else "it names no executable to verify"
        )
        messages.append(
            f"needs review: {entry.describe()}: {why}; it is not trusted until you trust the"
            " program again (`portwatch trust add … --by signer`)"
        )
    return updated, messages


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
    by: str | None = None,
) -> tuple[TrustList, list[str]]:
    """Trust the chosen candidates (0-based indices) and mark the review done.

    ``by`` picks the kind of every entry (default: the strongest that verifies).

    Returns the new list and one line per candidate for the person: trusted, or why
    not (an unattributed owner has nothing to pin trust to).
    """
    updated = trust_list
    messages: list[str] = []
    for index in chosen:
        listener, _spec, verdict = candidates[index]
        where = listener.endpoint.label()
        if verdict.status is Status.UNATTRIBUTED:
            messages.append(f"{where}: cannot be trusted: its program could not be inspected")
            continue
        try:
            # The row ticked is one listener: its port and protocol, not the whole spec
            # it is watched by (a TCP row must not trust UDP, nor a range).
            exact = WatchSpec(listener.port, listener.port, (listener.proto,))
            entry = entry_for_listener(
                listener, exact, now_wall, note="trusted in the first-run review", by=by
            )
        except TrustError as exc:
            messages.append(f"{where}: {exc}")
            continue
        updated = updated.with_entry(entry)
        messages.append(
            f"{where}: trusted on {listener.port}/{listener.proto.value} "
            f"by {entry.kind} ({entry.pin()})"
        )
    return updated.with_review_done(now_wall), messages
