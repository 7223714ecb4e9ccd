"""Entry point: argument parsing, then paths, then logging, then the chosen command."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn


def _out_of_memory() -> NoReturn:
    # Before anything else is loaded: only what the interpreter already holds is used.
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write("portwatch: error: out of memory while starting; portwatch stopped\n")
        sys.stderr.flush()
    raise SystemExit(1)


# A memory limit (ulimit -v) can be reached while loading portwatch itself: one line,
# not the traceback of an import.
try:
    from portwatch import __version__, files, logs, paths
    from portwatch.cli import CommandError, add_commands
    from portwatch.cli.common import warn
    from portwatch.cli.console import make_output_safe
except MemoryError:
    _out_of_memory()


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line naming the problem, exit status 2 (sub-commands too)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="portwatch",
        description="Watch network ports, explain what listens on them, and alert when a "
        "program you have not trusted takes one. With no command, opens the desktop app.",
    )
    parser.add_argument("--version", action="version", version=f"portwatch {__version__}")
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="keep all config, history and logs under DIR (also PORTWATCH_DATA_DIR)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    parser.add_argument(
        "--probe",
        choices=("auto", "psutil", "netlink"),
        default="auto",
        help="which OS source to read sockets from (default: the fastest available)",
    )
    gui = parser.add_argument_group("desktop app options")
    gui.add_argument("--minimized", action="store_true", help="start hidden in the tray")
    gui.add_argument(
        "--smoke",
        metavar="PNG",
        help="open the window, save a screenshot to PNG and exit (checks a build works)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    make_output_safe()
    try:
        parser = build_parser()  # imports every command's module
    except MemoryError:
        _out_of_memory()
    args = parser.parse_args(argv)
    where = paths.resolve(args.data_dir)
    with contextlib.ExitStack() as cleanup:
        problem = _prepare_folders(where)
        if problem is not None and _may_run_without_folders(args):
            # A one-off look (scan, connections, describe) run by a user whose default
            # folders are not theirs (``setpriv``/``runuser`` keep or set a HOME they
            # cannot write): it keeps nothing, so a scratch folder does, with a warning.
            try:
                scratch = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="portwatch-"))
            except OSError:
                return _error(problem)
            where = paths.rooted(Path(scratch))
            warn(f"{problem}; this run uses the defaults and keeps nothing (--data-dir DIR)")
            problem = _prepare_folders(where)
        if problem is not None:
            return _error(problem)
        return _run(args, where)


def _prepare_folders(where: paths.Paths) -> str | None:
    """Create portwatch's folders; what is wrong with the first that cannot be used."""
    folders = {where.log_dir: "log", where.config_dir: "config", where.data_dir: "data"}
    for folder, role in sorted(folders.items(), key=lambda item: len(item[0].parts)):
        try:
            # Another user who can write here could swap our files for links; a folder
            # portwatch makes inside its own (logs) is never a link.
            inside = any(other in folder.parents for other in folders)
            files.prepare_folder(folder, link_ok=not inside)
        except OSError as exc:
            return f"cannot use the {role} folder {folder}: {exc.strerror or exc}"
    return None


def _may_run_without_folders(args: argparse.Namespace) -> bool:
    """A command that writes nothing, run with the default folders (a folder the user
    chose and cannot use stays an error)."""
    chosen = args.data_dir or os.environ.get(paths.ENV_DATA_DIR)
    return bool(getattr(args, "keeps_nothing", False)) and not chosen


def _run(args: argparse.Namespace, where: paths.Paths) -> int:
    logs.configure(where.log_file, verbose=args.verbose, console=args.command is not None)
    if args.command is None:
        refused = _smoke_target_refused(args.smoke, where)
        if refused is not None:
            return _error(refused)
        from portwatch.display import NO_DISPLAY_MESSAGE, missing_display

        if missing_display():
            with contextlib.suppress(OSError, ValueError):
                print(NO_DISPLAY_MESSAGE, file=sys.stderr, flush=True)
            return 1
        from portwatch.app import run_app

        try:
            return run_app(where, args)
        except (MemoryError, files.ResourceShortage) as exc:
            return _error(f"{files.shortage(exc)}; portwatch stopped")
    try:
        status = int(args.handler(args, where))
        sys.stdout.flush()  # here, where a failure can still be reported
        return status
    except CommandError as exc:
        return _error(str(exc))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `portwatch scan | head`: the reader went away; not an error worth a traceback.
        _drop_stdout()
        return 0
    except (MemoryError, files.ResourceShortage) as exc:
        return _error(f"{files.shortage(exc)}; portwatch stopped")
    except OSError as exc:
        # A full disk on stdout, no file descriptors left, ...: one line, not a traceback.
        _drop_stdout()
        short = files.shortage(exc)
        if short is not None:
            return _error(f"{short}; portwatch stopped")
        where_ = f" ({exc.filename})" if exc.filename else ""
        return _error(f"{exc.strerror or exc}{where_}")


def _smoke_target_refused(smoke: str | None, where: paths.Paths) -> str | None:
    """Why the ``--smoke`` screenshot cannot be written where asked, before the window
    opens: the rules of an export (no link, device, FIFO, read-only file or file of
    portwatch's own; Qt's own save wrote through a link, over the history too)."""
    if not smoke:
        return None
    from portwatch.engine.export import ExportError, check_target

    if smoke.endswith(("/", os.sep)):
        return f"cannot write {smoke}: it names a folder, not a file"
    target = Path(smoke).expanduser()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        check_target(target, where.own_files())
    except ExportError as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot write {target}: {exc.strerror or exc}"
    return None


def _drop_stdout() -> None:
    # What is still buffered cannot be written either; without this, the interpreter
    # tries once more at exit and prints a traceback.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _error(message: str) -> int:
    with contextlib.suppress(OSError, ValueError):
        print(f"portwatch: error: {message}", file=sys.stderr, flush=True)
    return 1


def gui_main() -> int:
    """The double-click entry point: always the desktop app."""
    return main([arg for arg in sys.argv[1:] if not arg.startswith("-psn_")])


if __name__ == "__main__":
    sys.exit(main())
