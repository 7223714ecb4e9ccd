"""The trust file (``trust.json`` beside the watch list): read, validated, written atomically.

The file is plain JSON a person can read::

    {
      "version": 1,
      "first_run_review": {"done": true, "wall": 1763700000.0},
      "entries": [
        {"port": "3653/tcp", "exe": "/usr/bin/foo", "sha256": "<64 hex>",
         "script": null, "script_sha256": null, "signer": null,
         "added_wall": 1763700000.0, "note": "trusted from the side panel"},
        {"kind": "package", "port": "80/tcp", "exe": "/usr/sbin/nginx",
         "package": "nginx-core", "package_version": "1.22.1-9", ...},
        {"kind": "signer", "port": "443/tcp", "exe": "C:\\Program Files\\…",
         "signer": "Contoso Ltd", "signer_id": {"platform": "windows",
         "subject": "CN=Contoso Ltd, …", "issuer": "CN=…", "thumbprint": "AB12…"}, ...}
      ]
    }

An entry without ``kind`` is read as files written by older versions meant it: a hash
entry, or a signer entry holding only a name (kept, but never matched until reviewed).

A file that is empty, truncated, of the wrong shape or holding bad values is not
silently coerced or overwritten: the valid entries are used and each problem is
reported with the value and the reason. Reading never writes; the next write (trusting
something) first sets the original aside for the user, then writes a clean file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portwatch import files
from portwatch.config import atomic, jsontext
from portwatch.config.follow import Follower, stamp_of
from portwatch.core.identity import is_absolute_path, is_sha256
from portwatch.core.problems import summarise
from portwatch.core.trust import (
    KINDS,
    PackageUpgrade,
    TrustEntry,
    TrustError,
    TrustList,
    with_versions,
)
from portwatch.core.types import SignerInfo
from portwatch.core.watchlist import SpecError, parse_spec

FORMAT_VERSION = 1
# A trust entry is a few hundred bytes: this holds tens of thousands of them, and keeps a
# mistaken or hostile file from filling memory.
MAX_BYTES = 16 << 20
_TOP_KEYS = frozenset({"version", "first_run_review", "entries"})
_ENTRY_KEYS = frozenset(
    {
        "kind",
        "port",
        "exe",
        "sha256",
        "script",
        "script_sha256",
        "signer",
        "signer_id",
        "package",
        "package_version",
        "script_package",
        "added_wall",
        "note",
    }
)
_SIGNER_KEYS = frozenset({"platform", "subject", "issuer", "thumbprint", "team_id", "apple"})
# Bounds for text read from the file: a hostile or corrupt file cannot make us hold or
# print megabytes per entry.
_MAX_TEXT = 4096


@dataclass(frozen=True)
class LoadedTrust:
    """A trust list read from disk, with every problem found and where the bad file went."""

    trust_list: TrustList
    problems: tuple[str, ...] = ()
    set_aside: Path | None = None
    # False when the file as a whole could not be used (unreadable, a link or a FIFO,
    # too large, not JSON, the wrong shape): a running monitor keeps the list it has.
    complete: bool = True


def load(path: Path) -> LoadedTrust:
    """Read the trust file. A missing file is an empty list with the review pending.

    Only reads: problems are reported (value and reason) and the valid entries used.
    Raises :class:`~portwatch.files.ResourceShortage` when no descriptor or memory is
    left to read it: that says nothing about the file.
    """
    try:
        raw = files.read_bytes(path, MAX_BYTES)
    except FileNotFoundError:
        return LoadedTrust(TrustList())
    except OSError as exc:
        # No descriptor left is no answer about the file: never "nothing is trusted".
        files.raise_if_short(exc)
        return LoadedTrust(
            TrustList(),
            (f"cannot use {path}: {exc.strerror or exc}; nothing is trusted for now",),
            complete=False,
        )
    trust_list, problems = parse(raw)
    if not problems:
        return LoadedTrust(trust_list)
    usable = bool(trust_list.entries) or trust_list.first_run_review_done or not _whole(problems)
    return LoadedTrust(trust_list, tuple(f"{path}: {p}" for p in problems), complete=usable)


def _whole(problems: list[str]) -> bool:
    # parse() reports a file it could not use at all with this ending.
    return any(p.endswith("nothing is trusted") for p in problems)


def parse(raw: bytes) -> tuple[TrustList, list[str]]:
    """Validate file content: the valid part and the list of problems (pure, no I/O)."""
    problems: list[str] = []
    text = files.decode_text(raw)
    if not text.strip():
        return TrustList(), ["the file is empty; nothing is trusted"]
    try:
        data = jsontext.loads(text)
    except jsontext.JsonProblem as exc:
        return TrustList(), [f"not valid JSON ({exc}); nothing is trusted"]
    if not isinstance(data, dict):
        return TrustList(), [
            f"expected a JSON object with 'entries', got {_kind(data)}; nothing is trusted"
        ]
    for key in sorted(set(data) - _TOP_KEYS, key=str):
        problems.append(f"unknown key {key!r} ignored")
    version = data.get("version", FORMAT_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version != FORMAT_VERSION:
        problems.append(
            f"version {version!r} is not {FORMAT_VERSION}; reading what this version understands"
        )
    reviewed = _review_wall(data.get("first_run_review"), problems)
    raw_entries = data.get("entries", [])
    if not isinstance(raw_entries, list):
        problems.append(f"'entries' should be a list, got {_kind(raw_entries)}; nothing is trusted")
        raw_entries = []
    entries: list[TrustEntry] = []
    slots: set[object] = set()
    for index, item in enumerate(raw_entries, start=1):
        try:
            entry, unknown = _entry(item)
        except (TrustError, SpecError) as exc:
            problems.append(f"entry {index} dropped: {exc}")
            continue
        for key in unknown:
            problems.append(f"entry {index}: unknown key {key!r} ignored")
        if entry.slot in slots:
            problems.append(
                f"entry {index} repeats an earlier entry for {entry.describe()}; "
                "the repeat is ignored"
            )
            continue
        slots.add(entry.slot)
        entries.append(entry)  # slots are unique: no with_entry() (quadratic) needed
    return TrustList(tuple(entries), reviewed_wall=reviewed), summarise(problems)


def _review_wall(value: object, problems: list[str]) -> float | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.append(
            f"'first_run_review' should be an object, got {_kind(value)}; "
            "the review will be offered again"
        )
        return None
    if value.get("done") is not True:
        return None
    wall = value.get("wall", 0.0)
    if not _is_number(wall):
        problems.append(f"'first_run_review.wall' {wall!r} is not a time; kept as done")
        return 0.0
    return float(wall)


def _entry(item: object) -> tuple[TrustEntry, list[str]]:
    if not isinstance(item, dict):
        raise TrustError(f"expected an object, got {_kind(item)}")
    unknown = sorted(str(k) for k in set(item) - _ENTRY_KEYS)
    if "port" not in item:
        raise TrustError("it has no 'port'")
    spec = parse_spec(item["port"])
    exe = _opt_str(item, "exe")
    if exe is not None and not is_absolute_path(exe):
        raise TrustError(f"'exe' {exe!r} is not an absolute path")
    sha = _opt_hash(item, "sha256")
    script = _opt_str(item, "script")
    script_sha = _opt_hash(item, "script_sha256")
    signer = _opt_str(item, "signer")
    added = item.get("added_wall", 0.0)
    if not _is_number(added):
        raise TrustError(f"'added_wall' {added!r} is not a time")
    note = _opt_str(item, "note")
    entry = TrustEntry(
        spec=spec,
        exe=exe,
        sha256=sha,
        script=script,
        script_sha256=script_sha,
        signer=signer,
        added_wall=float(added),
        note=note,
        package=_opt_str(item, "package"),
        package_version=_opt_str(item, "package_version"),
        script_package=_opt_str(item, "script_package"),
        signer_id=_signer_id(item.get("signer_id")),
    )
    kind = item.get("kind")
    if kind is not None:
        if kind not in KINDS:
            raise TrustError(f"'kind' {kind!r} is not one of {', '.join(KINDS)}")
        if kind != entry.kind:
            raise TrustError(f"'kind' is {kind!r} but the entry holds a {entry.kind} pin")
    return entry, unknown


def _signer_id(value: object) -> SignerInfo | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TrustError(f"'signer_id' should be an object, got {_kind(value)}")
    unknown = sorted(str(k) for k in set(value) - _SIGNER_KEYS)
    if unknown:
        raise TrustError(f"'signer_id' has unknown keys {', '.join(unknown)}")
    platform = value.get("platform")
    if platform not in ("windows", "macos"):
        raise TrustError(f"'signer_id.platform' {platform!r} is not windows or macos")
    apple = value.get("apple", False)
    if not isinstance(apple, bool):
        raise TrustError(f"'signer_id.apple' {apple!r} is not true/false")
    info = SignerInfo(
        platform=platform,
        subject=_opt_str(value, "subject"),
        issuer=_opt_str(value, "issuer"),
        thumbprint=_opt_str(value, "thumbprint"),
        team_id=_opt_str(value, "team_id"),
        apple=apple,
    )
    if platform == "windows" and not (info.subject and (info.issuer or info.thumbprint)):
        raise TrustError("a Windows signer needs its subject and its issuer or thumbprint")
    if platform == "macos" and not (info.team_id or info.apple):
        raise TrustError("a macOS signer needs its Team ID (or apple: true)")
    return info


def _opt_str(item: dict[str, Any], key: str) -> str | None:
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise TrustError(f"{key!r} {value!r:.80} should be non-empty text or null")
    if len(value) > _MAX_TEXT:
        raise TrustError(f"{key!r} is {len(value)} characters long (at most {_MAX_TEXT})")
    return value


def _opt_hash(item: dict[str, Any], key: str) -> str | None:
    value = _opt_str(item, key)
    if value is None:
        return None
    if not is_sha256(value.lower()):
        raise TrustError(f"{key!r} {value!r} is not a SHA-256 (64 hex digits)")
    return value.lower()


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def render(trust_list: TrustList) -> str:
    """The file text for a trust list (stable order, one entry per object)."""
    review: dict[str, Any] = {"done": trust_list.first_run_review_done}
    if trust_list.reviewed_wall is not None:
        review["wall"] = trust_list.reviewed_wall
    data = {
        "version": FORMAT_VERSION,
        "first_run_review": review,
        "entries": [_render_entry(entry) for entry in trust_list.entries],
    }
    return json.dumps(data, indent=2, ensure_ascii=True) + "\n"


def _render_entry(entry: TrustEntry) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": entry.kind,
        "port": str(entry.spec),
        "exe": entry.exe,
        "sha256": entry.sha256,
        "script": entry.script,
        "script_sha256": entry.script_sha256,
        "signer": entry.signer,
        "added_wall": entry.added_wall,
        "note": entry.note,
    }
    if entry.package is not None:
        data["package"] = entry.package
        data["package_version"] = entry.package_version
        data["script_package"] = entry.script_package
    if entry.signer_id is not None:
        signer = entry.signer_id
        data["signer_id"] = {
            key: value
            for key, value in (
                ("platform", signer.platform),
                ("subject", signer.subject),
                ("issuer", signer.issuer),
                ("thumbprint", signer.thumbprint),
                ("team_id", signer.team_id),
                ("apple", signer.apple),
            )
            if value is not None
        }
    return data


def save(path: Path, trust_list: TrustList) -> None:
    """Write the trust file atomically (the old or the new version, never half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, render(trust_list))


def update(path: Path, change: Callable[[TrustList], TrustList]) -> LoadedTrust:
    """Re-read the file, apply ``change`` and save: what the window's "Trust this program
    on this port" and the review dialog call, so an edit made meanwhile by the command
    line is kept rather than overwritten with an older list.

    Raises OSError when the file cannot be written and whatever ``change`` raises
    (``TrustError`` for an owner that cannot be trusted); the file is then untouched.
    """
    loaded = load(path)
    updated = change(loaded.trust_list)
    kept: Path | None = None
    problems = list(loaded.problems)
    # check_target refuses a link or a FIFO there (OSError): never written over.
    if loaded.problems and files.check_target(path):
        # The clean file replaces one with problems: keep what the user wrote.
        kept = files.set_aside(path, "rejected")
        problems.append(f"the original file was kept as {kept}")
    save(path, updated)
    return LoadedTrust(updated, tuple(problems), kept)


def record_upgrades(path: Path, upgrades: Sequence[PackageUpgrade]) -> LoadedTrust | None:
    """Record in the file the new version of packages seen upgraded, so each upgrade is
    said once; the updated list, or None when nothing was written.

    A monitor must not fight the person editing the file: it writes only a file that
    loads without a problem (one with problems is the user's to fix, never rewritten),
    changes only entries still exactly as they were judged with, and gives up (the
    upgrade has been said; the next run says it once more) when the file changed
    between reading and writing. Raises OSError when it cannot be written.
    """
    before = stamp_of(path)
    loaded = load(path)
    if loaded.problems or not loaded.complete:
        return None
    updated = with_versions(loaded.trust_list, upgrades)
    if updated is loaded.trust_list:
        return None
    if stamp_of(path) != before:
        return None  # edited meanwhile: theirs stands
    save(path, updated)
    return LoadedTrust(updated)


class Reloader(Follower[LoadedTrust]):
    """Notices when the trust file changed on disk (another process edited it), so a
    running monitor judges with the new list on its next tick. A load that is not
    ``complete`` should not replace the list in use."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, load)
