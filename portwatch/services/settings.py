"""The desktop app's settings: a small JSON file the user could read, written atomically.

Bad values are reported with the value and the reason and replaced by the default for
that one key; nothing is coerced (``"true"`` is not a poll interval, ``1`` is not ``True``).
"""

from __future__ import annotations

import json
import math
from dataclasses import Field, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from portwatch import files
from portwatch.config import atomic, jsontext
from portwatch.core.alert_policy import DEFAULT_COOLDOWN_S


@dataclass(frozen=True)
class Bounds:
    """The accepted range of a number-of-seconds setting (both ends included)."""

    lo: float
    hi: float


def _seconds(default: float, lo: float, hi: float, label: str) -> Any:
    return field(default=default, metadata={"bounds": Bounds(lo, hi), "label": label})


def _flag(default: bool, label: str) -> Any:
    return field(default=default, metadata={"label": label})


# A list of names read from the file is capped: it only ever names columns.
MAX_NAMES = 64
MAX_NAME_LENGTH = 64


def _names(label: str, default: tuple[str, ...] = ()) -> Any:
    return field(default=default, metadata={"label": label, "names": True})


@dataclass(frozen=True)
class Settings:
    """Every user-tunable setting of the desktop app: its type, default and range are
    declared here once; loading, saving and the settings dialog all read them from here."""

    poll_interval_s: float = _seconds(2.0, 0.5, 3600.0, "Check ports every")
    notifications: bool = _flag(True, "Show desktop notifications for alerts")
    start_minimized: bool = _flag(False, "Start hidden in the tray")
    # One alert per program and port per half hour by default (the alert policy's own).
    alert_cooldown_s: float = _seconds(
        DEFAULT_COOLDOWN_S, 0.0, 7 * 24 * 3600.0, "Repeat an alert for the same port after"
    )
    # The listeners table's columns the user hid (by column name), kept across restarts.
    # Started by and reachable from are long text the side panel also gives: hidden until
    # the user shows them.
    hidden_columns: tuple[str, ...] = _names(
        "Hidden columns of the listeners table", ("started_by", "reachable")
    )
    # The columns the table had when the choice above was saved: a column added later
    # that starts hidden stays hidden for someone who chose before it existed.
    columns_known: tuple[str, ...] = _names("Columns of the listeners table when chosen")
    # The connections table's columns the user hid, and the columns it had then (as above).
    connection_hidden_columns: tuple[str, ...] = _names("Hidden columns of the connections table")
    connection_columns_known: tuple[str, ...] = _names(
        "Columns of the connections table when chosen"
    )
    # The connections tab's one switch: every port, not only the watched ones.
    connections_all_ports: bool = _flag(False, "Show connections on every port")
    # Off by default: a lookup tells the DNS server which addresses this computer talks to.
    reverse_dns: bool = _flag(False, "Show remote host names (reverse DNS lookups)")


def setting(name: str) -> Field[Any]:
    """The declaration of one setting (its default, ``bounds`` and ``label`` metadata)."""
    found = next((f for f in fields(Settings) if f.name == name), None)
    if found is None:
        raise KeyError(name)
    return found


def bounds(name: str) -> Bounds:
    """The accepted range of the number setting ``name``."""
    found: Bounds = setting(name).metadata["bounds"]
    return found


# Settings are a handful of keys; anything this large is not a settings file.
MAX_SETTINGS_BYTES = 1 << 20
MIN_POLL_INTERVAL_S = bounds("poll_interval_s").lo
MAX_POLL_INTERVAL_S = bounds("poll_interval_s").hi
MAX_ALERT_COOLDOWN_S = bounds("alert_cooldown_s").hi


@dataclass(frozen=True)
class LoadedSettings:
    """Settings read from disk plus one line per problem found (value and reason)."""

    settings: Settings
    problems: tuple[str, ...] = ()


def validate(key: str, value: object) -> str | None:
    """The reason ``value`` is not acceptable for ``key``, or None when it is.

    Types are strict: JSON ``true`` is not a number of seconds and ``1`` is not ``true``.
    """
    try:
        declared = setting(key)
    except KeyError:
        return f"{key}: unknown setting (ignored)"
    if declared.metadata.get("names"):
        if not isinstance(value, (list, tuple)) or len(value) > MAX_NAMES:
            return f"{key}: expected a list of at most {MAX_NAMES} names"
        for name in value:
            if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_LENGTH:
                return f"{key}: {name!r} is not a name"
        return None
    if declared.type in (bool, "bool"):
        if not isinstance(value, bool):
            return f"{key}: {value!r} is not true or false"
        return None
    limits: Bounds = declared.metadata["bounds"]
    # bool is a subclass of int in Python, so it is refused by name.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{key}: {value!r} is not a number of seconds"
    if not math.isfinite(value) or not limits.lo <= value <= limits.hi:
        return f"{key}: {value!r} is outside {limits.lo:g}-{limits.hi:g} seconds"
    return None


def from_mapping(data: object) -> LoadedSettings:
    """Build settings from parsed JSON, keeping every good value and reporting every bad one."""
    if not isinstance(data, dict):
        return LoadedSettings(Settings(), (f"expected a JSON object, got {type(data).__name__}",))
    values: dict[str, Any] = {}
    problems: list[str] = []
    known = {f.name for f in fields(Settings)}
    for key, value in data.items():
        reason = validate(str(key), value)
        if reason is not None:
            problems.append(f"{reason}; using the default" if key in known else reason)
            continue
        if isinstance(value, (list, tuple)):
            values[str(key)] = tuple(str(name) for name in value)
        else:
            values[str(key)] = value if isinstance(value, bool) else float(value)
    return LoadedSettings(replace(Settings(), **values), tuple(problems))


def load(path: Path) -> LoadedSettings:
    """Read the settings file; a missing file gives the defaults without complaint."""
    # A regular file, not through a link, of bounded size; BOM, huge numbers and deep
    # nesting are reported, not crashes (see portwatch.files and config.jsontext).
    try:
        raw = files.read_bytes(path, MAX_SETTINGS_BYTES)
    except FileNotFoundError:
        return LoadedSettings(Settings())
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return LoadedSettings(Settings(), (f"cannot read {path}: {reason}; using the defaults",))
    try:
        data = jsontext.loads(raw)
    except jsontext.JsonProblem as exc:
        return LoadedSettings(
            Settings(), (f"{path} is not valid JSON ({exc}); using the defaults",)
        )
    loaded = from_mapping(data)
    return LoadedSettings(loaded.settings, tuple(f"{path}: {p}" for p in loaded.problems))


def save(path: Path, settings: Settings) -> None:
    """Write the settings atomically; raises OSError with the OS's reason."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, json.dumps(asdict(settings), indent=2, sort_keys=True) + "\n")
