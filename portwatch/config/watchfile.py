"""The watch-list file: the single source of truth shared by the window and the CLI.

Reading never writes: problems are reported, the file is left as the user wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from portwatch import files
from portwatch.core.watchlist import WatchList, parse_lines, render_lines

# A hand-written watch list is a few lines; this leaves room for a generated one
# (every port as a line is under 400 KiB) and keeps a mistake from filling memory.
MAX_BYTES = 16 << 20


@dataclass(frozen=True)
class LoadedWatchList:
    """A watch list read from disk, with every problem found on the way.

    ``readable`` is False when the file as a whole could not be used (a link, a FIFO,
    too large, unreadable): ``watchlist`` is then the defaults, and a running monitor
    should keep the list it has.
    """

    watchlist: WatchList
    problems: tuple[str, ...] = ()
    readable: bool = True

    @property
    def replaces_last_good(self) -> bool:
        """Whether a running watcher should switch to this list: the file could be read,
        and it is not all refused lines (half-written, or saved in another encoding),
        which would silently stop every watch."""
        return self.readable and bool(self.watchlist.specs or not self.problems)


def load(path: Path, *, create: bool = True) -> LoadedWatchList:
    """Read the watch list. A missing file is created with the defaults (the first
    run; with ``create`` False, as when following edits, it is taken as unreadable
    for now: mid-replace or deleted); an existing file is only ever read. Raises
    :class:`~portwatch.files.ResourceShortage` when no descriptor or memory is left."""
    try:
        raw = files.read_bytes(path, MAX_BYTES)
    except FileNotFoundError:
        if not create:
            return LoadedWatchList(WatchList.default(), readable=False)
        watchlist = WatchList.default()
        try:
            save(path, watchlist)
        except OSError as exc:
            return LoadedWatchList(
                watchlist, (f"cannot create {path}: {exc.strerror or exc}",), readable=True
            )
        return LoadedWatchList(watchlist)
    except OSError as exc:
        files.raise_if_short(exc)  # not a fact about the file: never the defaults
        return LoadedWatchList(
            WatchList.default(),
            (f"cannot use the watch list {path}: {exc.strerror or exc}",),
            readable=False,
        )
    text = files.decode_text(raw)
    report = parse_lines(text.splitlines())
    problems = [f"{path}: {problem}" for problem in report.errors]
    watchlist = report.watchlist
    if not watchlist.specs and not text.strip():
        # An empty file is most likely a crash artefact from an older version.
        problems.append(f"{path} is empty; using the default watch list until it is edited")
        watchlist = WatchList.default()
    return LoadedWatchList(watchlist, tuple(problems))


def follow_load(path: Path) -> LoadedWatchList:
    """:func:`load` for following edits: never creates the file."""
    return load(path, create=False)


def save(path: Path, watchlist: WatchList) -> Path | None:
    """Write the watch list atomically; raises OSError (``files.RefusedFile`` when a
    link or a special file is in the way, which is never replaced).

    The file is written in the canonical form, without the lines it could not use; so
    that what the user wrote is not silently lost, a file with such lines is first kept
    as ``watchlist.txt.rejected-TIME``, whose path is returned (None otherwise)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = None
    try:
        raw = files.read_bytes(path, MAX_BYTES)
    except OSError:
        raw = b""  # missing, or not a file we would replace: write_text says which
    if raw and parse_lines(files.decode_text(raw).splitlines()).errors:
        kept = files.keep_copy(path, raw, "rejected")
    files.write_text(path, render_lines(watchlist))
    return kept
