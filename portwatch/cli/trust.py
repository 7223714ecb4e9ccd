"""``portwatch trust list | add | remove | review``: edit which programs may use which ports.

Trust is given to an executable path (and the script for interpreters), for one
watched port or range, pinned by the file's SHA-256, by the installed package it
verifiably came from, or by its verified code signer (``--by hash|package|signer``;
without it the strongest that verifies is chosen and printed). ``review`` lists the listeners
already on watched ports so the person decides about each, rather than portwatch
trusting whatever happened to be running on the first start.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from portwatch import files
from portwatch.cli import CommandError, common
from portwatch.config import trustfile, watchfile
from portwatch.core.identity import (
    NAME_ONLY,
    STDIN_SCRIPT,
    Identity,
    is_sha256,
    pinned_by_name_only,
    script_is_file,
)
from portwatch.core.text import visible
from portwatch.core.trust import (
    KINDS,
    TrustError,
    TrustJudge,
    TrustList,
    apply_review,
    entry_for_identity,
    review_candidates,
    signer_named,
)
from portwatch.core.types import Listener
from portwatch.core.watchlist import SpecError, WatchList, WatchSpec, parse_spec
from portwatch.paths import Paths
from portwatch.probe.interpreter import interpreter_family
from portwatch.probe.packages import default_verifier as package_verifier
from portwatch.probe.signature import default_verifier as signature_verifier


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("trust", help="show or edit which programs may use which ports")
    actions = parser.add_subparsers(dest="trust_action", metavar="ACTION", required=True)
    actions.add_parser("list", help="print the trusted programs and their ports")
    add = actions.add_parser(
        "add", help="trust a program on a port or range, e.g. 3653/tcp --exe /usr/bin/foo"
    )
    add.add_argument("spec", metavar="PORTSPEC")
    add.add_argument("--exe", required=True, metavar="PATH", help="the executable's path")
    add.add_argument(
        "--sha256", metavar="HASH", help="the file's SHA-256 (default: hash the file at PATH now)"
    )
    add.add_argument(
        "--script",
        metavar="PATH",
        help=(
            "for interpreters (required for them): the script file they run, hashed now;"
            " or '-m MODULE' (trusted by module name only: the file the interpreter"
            " loads for it is not checked); or -c with --script-sha256 for inline code"
        ),
    )
    add.add_argument("--script-sha256", metavar="HASH", help="the script's SHA-256")
    add.add_argument(
        "--signer",
        metavar="NAME",
        help="trust any build at PATH whose verified signer is NAME (macOS/Windows)",
    )
    add.add_argument(
        "--by",
        choices=KINDS,
        help="what vouches for the program: its file's hash, the installed package it came"
        " from (verified), or its verified code signer (default: the strongest that verifies)",
    )
    add.add_argument("--note", help="why it is trusted, for your future self")
    remove = actions.add_parser("remove", help="stop trusting a program on a port or range")
    remove.add_argument("spec", metavar="PORTSPEC")
    remove.add_argument("--exe", required=True, metavar="PATH")
    remove.add_argument("--script", metavar="PATH", help="only the entry for this script")
    review = actions.add_parser(
        "review", help="list what already listens on watched ports and choose what to trust"
    )
    review.add_argument(
        "--by",
        choices=KINDS,
        help="trust the accepted programs by this kind (default: the strongest that verifies)",
    )
    review.add_argument(
        "--accept",
        metavar="N,..",
        help="trust the listed numbers (e.g. 1,3), or 'none'; asked interactively on a terminal",
    )
    parser.set_defaults(handler=run)


def _usage_error(message: str) -> SystemExit:
    # A bad argument: exit status 2, like argparse.
    print(f"portwatch: error: {message}", file=sys.stderr)
    return SystemExit(2)


def _spec_or_exit(text: str) -> WatchSpec:
    try:
        return parse_spec(text)
    except SpecError as exc:
        raise _usage_error(str(exc)) from None


def _hash_or_exit(value: str, what: str) -> str:
    lowered = value.strip().lower()
    if not is_sha256(lowered):
        raise _usage_error(f"{what} {value!r} is not a SHA-256 (64 hex digits)")
    return lowered


def _hash_file(path: str) -> str:
    digest = hashlib.sha256()
    try:
        # Links are followed (/bin/ls may be one); a FIFO or a device such as /dev/zero
        # is refused at once instead of waiting or reading for ever.
        fd = files.open_regular(path, os.O_RDONLY, follow=True)
        with open(fd, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise CommandError(f"cannot read {path} to hash it: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def _load(paths: Paths) -> TrustList:
    loaded = trustfile.load(paths.trust_file)
    for problem in loaded.problems:
        print(f"portwatch: warning: {problem}", file=sys.stderr)
    return common.review_signers(paths, loaded.trust_list)


def _save(paths: Paths, trust_list: TrustList) -> None:
    try:
        trustfile.save(paths.trust_file, trust_list)
    except OSError as exc:
        raise CommandError(f"cannot write {paths.trust_file}: {exc.strerror or exc}") from exc


def _when(wall: float) -> str:
    if not wall:
        return "unknown time"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(wall))


def print_entries(trust_list: TrustList, out: TextIO) -> None:
    """The trust list as text: one block per entry with full hashes."""
    if not trust_list.entries:
        print("nothing is trusted yet", file=out)
    for number, entry in enumerate(trust_list.entries, start=1):
        # The trust file is editable text: every field is shown with visible escapes.
        print(f"{number}. {entry.spec}  {visible(entry.exe) or 'any path'}", file=out)
        print(f"     by {entry.kind}", file=out)
        if entry.sha256:
            print(f"     sha256 {visible(entry.sha256)}", file=out)
        if entry.package:
            version = f" (trusted at {entry.package_version})" if entry.package_version else ""
            print(f"     package {visible(entry.package)}{visible(version)}", file=out)
        if entry.script_package:
            print(f"     script package {visible(entry.script_package)}", file=out)
        if entry.signer_id is not None:
            signer = entry.signer_id
            print(f"     signed by {visible(signer.label())}", file=out)
            for label, value in (
                ("subject", signer.subject),
                ("issuer", signer.issuer),
                ("thumbprint", signer.thumbprint),
            ):
                if value:
                    print(f"       {label} {visible(value)}", file=out)
        elif entry.signer:
            print(
                f"     signed by {visible(entry.signer)} - needs review: a name alone is not"
                " verified, so this entry trusts nothing until the program is trusted again",
                file=out,
            )
        if entry.script:
            print(_script_line(entry.script, entry.script_sha256), file=out)
        added = f"     added {_when(entry.added_wall)}"
        if entry.note:
            added += f": {visible(entry.note)}"
        print(added, file=out)
    review = (
        f"done {_when(trust_list.reviewed_wall or 0.0)}"
        if trust_list.first_run_review_done
        else "pending (run `portwatch trust review`)"
    )
    print(f"first-run review: {review}", file=out)


def _script_line(script: str, script_sha256: str | None) -> str:
    """``     script /srv/app.py (sha256 …)``, or a module marked as trusted by name only."""
    if pinned_by_name_only(script):
        return f"     module {visible(script)} ({NAME_ONLY})"
    pin = f" (sha256 {visible(script_sha256)})" if script_sha256 else ""
    return f"     script {visible(script)}{pin}"


def _absolute(path: str) -> str:
    return os.path.realpath(os.path.expanduser(path))


def _add(args: argparse.Namespace, paths: Paths, trust_list: TrustList) -> int:
    spec = _spec_or_exit(args.spec)
    exe = _absolute(args.exe)
    by: str | None = args.by
    # The older flags name their kind: --sha256 pins a hash, --signer a signer.
    for flag, implied in ((args.sha256, "hash"), (args.signer, "signer")):
        if flag:
            if by not in (None, implied):
                raise _usage_error(f"--by {by} cannot be combined with --{_implied_flag(implied)}")
            by = implied
    if interpreter_family(exe) is not None and not args.script:
        # An interpreter's identity includes what it runs: a bare entry would trust
        # any program it is given (and never match one that names its script).
        raise _usage_error(
            f"{visible(exe)} is an interpreter: say which program it runs with --script PATH"
            " (the script file), --script '-m MODULE', or --script -c --script-sha256 HASH"
            " (inline code)"
        )
    if args.script and args.script.strip() == STDIN_SCRIPT:
        raise _usage_error(
            "--script -: code read from standard input has no file to pin; trust the script"
            " file instead"
        )
    sha = _hash_or_exit(args.sha256, "--sha256") if args.sha256 else _hash_file(exe)
    script, script_sha = _script_pin(args)
    packages = package_verifier()
    check = packages.check(exe) if by in (None, "package") else None
    script_check = (
        packages.check(script)
        if check is not None and check.verified and script_is_file(script) and script
        else None
    )
    signer = None
    if by in (None, "signer"):
        verifier = signature_verifier()
        signer = verifier.signer(exe) if verifier.supported else None
        if by == "signer" and signer is None:
            answer = verifier.check(exe)
            raise CommandError(
                f"cannot trust {exe} by signer: {answer.detail or answer.state}"
                if verifier.supported
                else f"cannot trust {exe} by signer: there are no code signatures to verify"
                " on this system (use --by package or --by hash)"
            )
        if signer is not None and args.signer and not signer_named(signer, args.signer):
            raise CommandError(
                f"{exe} is signed by {signer.label()}, not {args.signer!r}; nothing was trusted"
            )
    try:
        entry = entry_for_identity(
            Identity(exe, sha, script, script_sha),
            spec,
            time.time(),
            note=args.note,
            package=check.package if check else None,
            script_package=script_check.package if script_check else None,
            package_problem=check.problem if check else None,
            signer=signer,
            by=by,
        )
    except TrustError as exc:
        raise CommandError(f"cannot trust {exe}: {exc}") from None
    replaced = any(e.slot == entry.slot for e in trust_list.entries)
    _save(paths, trust_list.with_entry(entry))
    verb = "updated" if replaced else "trusted"
    print(f"{verb}: {visible(entry.describe())}  (by {entry.kind})")
    return 0


def _implied_flag(kind: str) -> str:
    return "sha256" if kind == "hash" else "signer"


def _script_pin(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """The script and its hash from --script and --script-sha256."""
    script = script_sha = None
    if args.script:
        if args.script.startswith("-"):
            # "-m module" or "-c" (inline code). Inline code has no file to hash, so it
            # must be pinned by its hash: otherwise any `python -c ...` would be trusted.
            script = args.script.strip()
            if args.script_sha256:
                script_sha = _hash_or_exit(args.script_sha256, "--script-sha256")
            elif script == "-c":
                raise _usage_error(
                    "--script -c needs --script-sha256 (the hash of the inline code), or any"
                    " inline code would be trusted"
                )
        else:
            script = _absolute(args.script)
            script_sha = (
                _hash_or_exit(args.script_sha256, "--script-sha256")
                if args.script_sha256
                else _hash_file(script)
            )
    elif args.script_sha256:
        raise _usage_error("--script-sha256 needs --script")
    return script, script_sha


def _remove(args: argparse.Namespace, paths: Paths, trust_list: TrustList) -> int:
    spec = _spec_or_exit(args.spec)
    exe = _absolute(args.exe)
    script = None
    if args.script:
        script = args.script.strip() if args.script.startswith("-") else _absolute(args.script)
    updated = trust_list.without(spec, exe, script, any_script=args.script is None)
    removed = len(trust_list) - len(updated)
    if not removed:
        raise CommandError(f"nothing is trusted for {spec} at {exe} (see `portwatch trust list`)")
    _save(paths, updated)
    plural = "y" if removed == 1 else "ies"
    print(f"removed {removed} entr{plural} for {spec} at {visible(exe)}")
    return 0


ProbeFactory = Callable[[str], Any]


def _default_probe(kind: str) -> Any:
    from portwatch import probe as probe_package

    return probe_package.create(kind)


def _parse_choice(text: str, count: int) -> list[int]:
    text = text.strip().lower()
    if text in ("", "none", "0"):
        return []
    if text == "all":
        return list(range(1, count + 1))
    chosen: list[int] = []
    for part in text.replace(" ", ",").split(","):
        if not part:
            continue
        # ASCII digits, and few of them: int() of thousands of digits raises.
        if (
            not (part.isascii() and part.isdigit() and len(part) <= 9)
            or not 1 <= int(part) <= count
        ):
            shown = part if len(part) <= 20 else f"{part[:20]}..."
            raise ValueError(f"{shown!r} is not one of the numbers 1-{count}")
        if int(part) not in chosen:
            chosen.append(int(part))
    return chosen


def _ask(stdin: TextIO, out: TextIO, count: int) -> list[int] | None:
    """Ask at the terminal until the answer is understood; None at end of input."""
    while True:
        print(
            "Trust which? numbers separated by commas, 'all' or empty for none: ",
            end="",
            file=out,
            flush=True,
        )
        answer = stdin.readline()
        if not answer:
            return None
        try:
            return _parse_choice(answer, count)
        except ValueError as exc:
            # A typo is asked again, not an error about a flag nobody typed.
            print(f"{visible(str(exc))}; please try again", file=out)


def review(
    trust_list: TrustList,
    listeners: Sequence[Listener],
    watchlist: WatchList,
    *,
    accept: str | None,
    stdin: TextIO,
    out: TextIO,
    now_wall: float,
    by: str | None = None,
) -> TrustList | None:
    """The first-run review as a testable function: prints the candidates and returns
    the updated list, or None when nothing was decided (no --accept, not a terminal)."""
    judge = TrustJudge(trust_list)
    candidates = review_candidates(listeners, watchlist, judge)
    if not candidates:
        print("nothing untrusted is listening on the watched ports", file=out)
    for number, (listener, spec, verdict) in enumerate(candidates, start=1):
        # Paths, names and reasons were written by processes: visible escapes only, so
        # no control character, bidi override or newline can forge a line.
        owner = listener.owner
        who = visible(owner.exe) if owner and owner.exe else "(owner hidden)"
        print(f"{number}. {listener.endpoint.label()}  watched as {spec}", file=out)
        print(f"     {who}", file=out)
        if owner is not None and owner.script:
            print(_script_line(owner.script, owner.script_sha256), file=out)
        if owner is not None and owner.sha256:
            print(f"     sha256 {owner.sha256}", file=out)
        if owner is not None and owner.package is not None:
            print(
                f"     package {visible(owner.package.label())}, verified by"
                f" {owner.package.manager}",
                file=out,
            )
        elif owner is not None and owner.package_problem:
            print(f"     package: {visible(owner.package_problem)}", file=out)
        if owner is not None and owner.signer is not None:
            print(f"     signed by {visible(owner.signer.label())}", file=out)
        for other in listener.shared_with:
            print(
                f"     also held by pid {other.pid}: {visible(other.exe or other.name) or '?'}",
                file=out,
            )
        pid = f"pid {owner.pid}, " if owner else ""
        print(f"     {pid}{verdict.status}: {visible(verdict.reason)}", file=out)
    if accept is None:
        if not candidates or not stdin.isatty():
            if candidates:
                print(
                    "trust some with `portwatch trust review --accept N,..` (or --accept none)",
                    file=out,
                )
                return None
            return trust_list.with_review_done(now_wall)
        chosen_or_none = _ask(stdin, out, len(candidates))
        if chosen_or_none is None:
            # End of input (Ctrl-D) is not an answer: the review stays pending.
            print("\nnothing decided; the review is still pending", file=out)
            return None
        chosen = chosen_or_none
    else:
        try:
            chosen = _parse_choice(accept, len(candidates))
        except ValueError as exc:
            raise _usage_error(f"--accept: {exc}") from None
    updated, messages = apply_review(
        trust_list, candidates, [n - 1 for n in chosen], now_wall, by=by
    )
    for number, message in zip(chosen, messages, strict=True):
        print(f"{number}. {visible(message)}", file=out)
    return updated


def _review(
    args: argparse.Namespace, paths: Paths, trust_list: TrustList, probe_factory: ProbeFactory
) -> int:
    loaded = watchfile.load(paths.watchlist_file)
    for problem in loaded.problems:
        print(f"portwatch: warning: {problem}", file=sys.stderr)
    probe = probe_factory(getattr(args, "probe", "auto"))
    try:
        sample = probe.poll(loaded.watchlist)
    finally:
        probe.close()
    if sample.partial:
        print(
            f"portwatch: warning: the OS showed only part of the system: {sample.partial_reason}",
            file=sys.stderr,
        )
    updated = review(
        trust_list,
        sample.listeners,
        loaded.watchlist,
        accept=args.accept,
        stdin=sys.stdin,
        out=sys.stdout,
        now_wall=time.time(),
        by=args.by,
    )
    if updated is not None:
        _save(paths, updated)
    return 0


def run(args: argparse.Namespace, paths: Paths, probe_factory: ProbeFactory | None = None) -> int:
    trust_list = _load(paths)
    action = args.trust_action
    if action == "list":
        print_entries(trust_list, sys.stdout)
        return 0
    if action == "add":
        return _add(args, paths, trust_list)
    if action == "remove":
        return _remove(args, paths, trust_list)
    return _review(args, paths, trust_list, probe_factory or _default_probe)
