"""The desktop app's settings: a small JSON file the user could read, written atomically.

Bad values are reported with the value and the reason and replaced by the default for
that one key; nothing is coerced (``"true"`` is not a poll interval, ``1`` is not ``True``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from portwatch.config import atomic
from portwatch.core.alert_policy import DEFAULT_COOLDOWN_S

MIN_POLL_INTERVAL_S = 0.5
MAX_POLL_INTERVAL_S = 3600.0
MAX_ALERT_COOLDOWN_S = 7 * 24 * 3600.0


@dataclass(frozen=True)
class Settings:
    """Every user-tunable setting of the desktop app, with its default."""

    poll_interval_s: float = 2.0
    notifications: bool = True
    start_minimized: bool = False
    # One alert per program and port per half hour by default (the alert policy's own).
    alert_cooldown_s: float = DEFAULT_COOLDOWN_S


@dataclass(frozen=True)
class LoadedSettings:
    """Settings read from disk plus one line per problem found (value and reason)."""

    settings: Settings
    problems: tuple[str, ...] = ()


def _check_number(key: str, value: object, lo: float, hi: float) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{key}: {value!r} is not a number of seconds"
    if not math.isfinite(value) or not lo <= value <= hi:
        return f"{key}: {value!r} is outside {lo:g}-{hi:g} seconds"
    return None


def _check_bool(key: str, value: object) -> str | None:
    if not isinstance(value, bool):
        return f"{key}: {value!r} is not true or false"
    return None


def validate(key: str, value: object) -> str | None:
    """The reason ``value`` is not acceptable for ``key``, or None when it is."""
    if key == "poll_interval_s":
        return _check_number(key, value, MIN_POLL_INTERVAL_S, MAX_POLL_INTERVAL_S)
    if key == "alert_cooldown_s":
        return _check_number(key, value, 0.0, MAX_ALERT_COOLDOWN_S)
    if key in ("notifications", "start_minimized"):
        return _check_bool(key, value)
    return f"{key}: unknown setting (ignored)"


def from_mapping(data: object) -> LoadedSettings:
    """Build settings from parsed JSON, keeping every good value and reporting every bad one."""
    if not isinstance(data, dict):
        return LoadedSettings(Settings(), (f"expected a JSON object, got {type(data).__name__}",))
    values: dict[str, object] = {}
    problems: list[str] = []
    known = {f.name for f in fields(Settings)}
    for key, value in data.items():
        reason = validate(str(key), value)
        if reason is not None:
            problems.append(f"{reason}; using the default" if key in known else reason)
            continue
        values[str(key)] = float(value) if key.endswith("_s") else value  # type: ignore[arg-type]
    return LoadedSettings(replace(Settings(), **values), tuple(problems))  # type: ignore[arg-type]


def load(path: Path) -> LoadedSettings:
    """Read the settings file; a missing file gives the defaults without complaint."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return LoadedSettings(Settings())
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        return LoadedSettings(Settings(), (f"cannot read {path}: {reason}; using the defaults",))
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        return LoadedSettings(
            Settings(),
            (f"{path} is not valid JSON ({exc.msg}, line {exc.lineno}); using the defaults",),
        )
    loaded = from_mapping(data)
    return LoadedSettings(loaded.settings, tuple(f"{path}: {p}" for p in loaded.problems))


def save(path: Path, settings: Settings) -> None:
    """Write the settings atomically; raises OSError with the OS's reason."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, json.dumps(asdict(settings), indent=2, sort_keys=True) + "\n")
