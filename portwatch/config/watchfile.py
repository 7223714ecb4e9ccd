"""The watch-list file: the single source of truth shared by the window and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from portwatch.config import atomic
from portwatch.core.watchlist import WatchList, parse_lines, render_lines


@dataclass(frozen=True)
class LoadedWatchList:
    """A watch list read from disk, with every problem found on the way."""

    watchlist: WatchList
    problems: tuple[str, ...] = ()
    set_aside: Path | None = None


def load(path: Path) -> LoadedWatchList:
    """Read the watch list; create it with the defaults when it does not exist yet.

    A file with bad lines is kept aside (copied, never silently overwritten) and the app
    goes on with the valid lines; an unreadable file falls back to the defaults.
    """
    if not path.exists():
        watchlist = WatchList.default()
        save(path, watchlist)
        return LoadedWatchList(watchlist)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return LoadedWatchList(
            WatchList.default(),
            (f"cannot read {path}: {exc.strerror or exc}; using the default watch list",),
        )
    text = raw.decode("utf-8", errors="replace")
    report = parse_lines(text.splitlines())
    problems = list(report.errors)
    kept: Path | None = None
    if problems:
        kept = path.with_name(path.name + ".rejected")
        atomic.write_bytes(kept, raw)
        problems.append(f"the original file was copied to {kept}")
    watchlist = report.watchlist
    if not watchlist.specs and not text.strip():
        # An empty file is most likely a crash artefact from an older version: defaults.
        problems.append(f"{path} is empty; using the default watch list")
        watchlist = WatchList.default()
        save(path, watchlist)
    return LoadedWatchList(watchlist, tuple(problems), kept)


def save(path: Path, watchlist: WatchList) -> None:
    """Write the watch list atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, render_lines(watchlist))
