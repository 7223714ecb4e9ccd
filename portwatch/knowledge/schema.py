"""The TOML format of port descriptions, and its validation.

A file holds ``[[entry]]`` tables::

    [[entry]]
    port = 3653                 # or: range = [3224, 3324]
    protocols = ["tcp", "udp"]
    name = "tsp"                # short: the table's and CSV's service column
    title = "Tunnel Setup Protocol"
    summary = "One or two sentences."
    registration = "What IANA lists, and what that does and does not mean."
    usage = "What really uses the port."
    security = ["A note.", "Another note."]
    programs = ["What one would expect to own it (a hint, never trust)."]
    related = [{ what = "IP protocol 41", note = "Why it matters here." }]
    systems = ["linux"]         # optional: only true on these OSes (linux, windows, macos)

Embedded (curated) entries must fill every text field except ``security``,
``programs`` and ``related``. The user's entries need only the port, protocols, name and
summary. Every problem is reported with where it is and why; a bad entry is skipped,
the rest are kept.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from portwatch.core.types import Proto
from portwatch.knowledge.model import SYSTEMS, Entry, Related, Source

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

MIN_PORT = 1
MAX_PORT = 65535
MAX_NAME = 40
# Longer than any sensible description; stops a pasted novel from flooding the panel.
MAX_TEXT = 4000
MAX_LIST = 20

_TEXT_FIELDS = ("title", "summary", "registration", "usage")
_LIST_FIELDS = ("security", "programs")
_KNOWN_FIELDS = frozenset(
    {"port", "range", "protocols", "name", "related", "systems", *_TEXT_FIELDS, *_LIST_FIELDS}
)
_REQUIRED_CURATED = ("name", "title", "summary", "registration", "usage")
_REQUIRED_USER = ("name", "summary")


# What a new ports.toml starts as: every line a comment, so it changes nothing until
# the user edits it. The test suite checks that the example, uncommented, is valid.
USER_TEMPLATE = """\
# Your own port descriptions for portwatch. They add to the ones portwatch ships with,
# and replace them where they describe the same port. Remove the leading '# ' from the
# example below to use it; a broken file is reported and ignored, never fatal.
#
# Required: port (or range = [LOW, HIGH]), protocols, name, summary.
# Optional: title, registration, usage, security, programs, related, systems.
#
# [[entry]]
# port = 8123
# protocols = ["tcp"]
# name = "home-assistant"
# title = "Home Assistant on the media PC"
# summary = "Our Home Assistant server's web interface."
# usage = "Started by the homeassistant service; only reachable at home."
# security = ["Exposed to the internet only through the VPN."]
# programs = ["python3 (running as the homeassistant user)"]
# related = [{ what = "1883/tcp", note = "The MQTT broker it talks to." }]
"""


@dataclass(frozen=True)
class ParsedFile:
    """The valid entries of one file and a message for each problem found."""

    entries: tuple[Entry, ...]
    problems: tuple[str, ...]


def parse_text(text: str, origin: str, source: Source) -> ParsedFile:
    """Parse a whole TOML document; a syntax error makes the whole file a problem."""
    try:
        document = tomllib.loads(text)
    except RecursionError:
        return ParsedFile((), (f"{origin}: nested too deeply; the file is ignored",))
    except ValueError as exc:
        # TOMLDecodeError, and the plain ValueError of an integer of thousands of digits.
        reason = str(exc)
        if len(reason) > 200:
            reason = reason[:200] + "..."
        return ParsedFile((), (f"{origin}: not valid TOML ({reason}); the file is ignored",))
    return parse_document(document, origin, source)


def parse_document(document: Mapping[str, Any], origin: str, source: Source) -> ParsedFile:
    """Validate a decoded document: ``entry`` must be a list of tables."""
    problems: list[str] = []
    extra = sorted(set(document) - {"entry"})
    if extra:
        problems.append(f"{origin}: unknown top-level key(s) {', '.join(extra)}; ignored")
    raw_entries = document.get("entry", [])
    if not isinstance(raw_entries, list):
        problems.append(f"{origin}: 'entry' must be a list of [[entry]] tables")
        return ParsedFile((), tuple(problems))
    entries: list[Entry] = []
    seen: dict[tuple[int, int, Proto], int] = {}
    for index, raw in enumerate(raw_entries, start=1):
        where = f"{origin}: entry {index}"
        if isinstance(raw, dict) and isinstance(raw.get("name"), str):
            where += f" ({raw['name']})"
        entry, entry_problems = _parse_entry(raw, where, source, origin)
        problems.extend(entry_problems)
        if entry is None:
            continue
        clash = [
            seen[(entry.lo, entry.hi, p)]
            for p in entry.protocols
            if (entry.lo, entry.hi, p) in seen
        ]
        if clash:
            problems.append(
                f"{where}: {entry.ports_label()} is already described by entry {clash[0]}; "
                "the repeat is ignored"
            )
            continue
        for proto in entry.protocols:
            seen[(entry.lo, entry.hi, proto)] = index
        entries.append(entry)
    return ParsedFile(tuple(entries), tuple(problems))


def duplicates(entries: Iterable[Entry]) -> tuple[str, ...]:
    """Entries that describe the same port or range on the same protocol, across files."""
    seen: dict[tuple[int, int, Proto], Entry] = {}
    problems: list[str] = []
    for entry in entries:
        for proto in entry.protocols:
            key = (entry.lo, entry.hi, proto)
            first = seen.setdefault(key, entry)
            if first is not entry:
                problems.append(
                    f"{entry.origin}: {entry.ports_label()}/{proto.value} ({entry.name}) is "
                    f"already described in {first.origin} ({first.name})"
                )
    return tuple(problems)


def _parse_entry(
    raw: object, where: str, source: Source, origin: str
) -> tuple[Entry | None, list[str]]:
    if not isinstance(raw, dict):
        return None, [f"{where}: expected a table, got {type(raw).__name__}"]
    problems: list[str] = []
    unknown = sorted(set(raw) - _KNOWN_FIELDS)
    if unknown:
        problems.append(f"{where}: unknown field(s) {', '.join(unknown)}; ignored")
    fatal: list[str] = []

    span = _parse_span(raw, fatal)
    protocols = _parse_protocols(raw.get("protocols"), fatal)
    required = _REQUIRED_CURATED if source == "curated" else _REQUIRED_USER
    texts: dict[str, str] = {}
    for key in ("name", *_TEXT_FIELDS):
        value = raw.get(key)
        if value is None:
            if key in required:
                fatal.append(f"'{key}' is missing")
            texts[key] = ""
            continue
        reason = _text_problem(value, single_line=key in ("name", "title"))
        if reason is None and key == "name" and len(value) > MAX_NAME:
            reason = f"it is {len(value)} characters long; at most {MAX_NAME}"
        if reason is not None:
            fatal.append(f"'{key}' {reason}")
            continue
        texts[key] = value.strip()
    lists: dict[str, tuple[str, ...]] = {}
    for key in _LIST_FIELDS:
        lists[key] = _parse_text_list(raw.get(key, []), key, fatal)
    related = _parse_related(raw.get("related", []), fatal)
    systems = _parse_systems(raw.get("systems", []), fatal)

    if fatal or span is None or protocols is None:
        problems.extend(f"{where}: {reason}; the entry is ignored" for reason in fatal)
        return None, problems
    lo, hi = span
    return (
        Entry(
            lo=lo,
            hi=hi,
            protocols=protocols,
            name=texts["name"],
            title=texts["title"] or texts["name"],
            summary=texts["summary"],
            registration=texts["registration"],
            usage=texts["usage"],
            security=lists["security"],
            related=related,
            programs=lists["programs"],
            source=source,
            origin=origin,
            systems=systems,
        ),
        problems,
    )


def _is_port(value: object) -> bool:
    # bool is an int in Python; `port = true` is a mistake, not port 1.
    return isinstance(value, int) and not isinstance(value, bool) and MIN_PORT <= value <= MAX_PORT


def _parse_span(raw: Mapping[str, Any], fatal: list[str]) -> tuple[int, int] | None:
    has_port, has_range = "port" in raw, "range" in raw
    if has_port == has_range:
        fatal.append("give exactly one of 'port' or 'range'")
        return None
    if has_port:
        port = raw["port"]
        if not _is_port(port):
            fatal.append(f"'port' = {port!r} is not a whole number in {MIN_PORT}-{MAX_PORT}")
            return None
        return port, port
    value = raw["range"]
    if not (isinstance(value, list) and len(value) == 2 and all(_is_port(v) for v in value)):
        fatal.append(f"'range' = {value!r} must be [LOW, HIGH], ports in {MIN_PORT}-{MAX_PORT}")
        return None
    lo, hi = value
    if lo >= hi:
        fatal.append(f"'range' = {value!r} must go from a lower to a higher port")
        return None
    return lo, hi


def _parse_protocols(value: object, fatal: list[str]) -> tuple[Proto, ...] | None:
    if not isinstance(value, list) or not value:
        fatal.append('\'protocols\' must be a list such as ["tcp"] or ["tcp", "udp"]')
        return None
    protocols: list[Proto] = []
    for item in value:
        if not isinstance(item, str) or item.lower() not in ("tcp", "udp"):
            fatal.append(f'\'protocols\' has {item!r}; use "tcp" or "udp"')
            return None
        proto = Proto(item.lower())
        if proto in protocols:
            fatal.append(f"'protocols' lists {item!r} twice")
            return None
        protocols.append(proto)
    # Always tcp before udp, whatever order the file used, so labels are stable.
    return tuple(sorted(protocols, key=lambda p: p.value))


def _text_problem(value: object, *, single_line: bool) -> str | None:
    if not isinstance(value, str):
        return f"must be text, got {type(value).__name__}"
    if not value.strip():
        return "is empty"
    if len(value) > MAX_TEXT:
        return f"is {len(value)} characters long; at most {MAX_TEXT}"
    allowed = "" if single_line else "\n"
    # Control characters could rewrite a terminal or hide text on screen.
    bad = [ch for ch in value if (ord(ch) < 32 and ch not in allowed) or 0x7F <= ord(ch) < 0xA0]
    bad += [ch for ch in value if ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"]
    if bad:
        return f"contains the control character {bad[0]!r}"
    return None


def _parse_text_list(value: object, key: str, fatal: list[str]) -> tuple[str, ...]:
    if not isinstance(value, list):
        fatal.append(f"'{key}' must be a list of text")
        return ()
    if len(value) > MAX_LIST:
        fatal.append(f"'{key}' has {len(value)} items; at most {MAX_LIST}")
        return ()
    items: list[str] = []
    for number, item in enumerate(value, start=1):
        reason = _text_problem(item, single_line=False)
        if reason is not None:
            fatal.append(f"'{key}' item {number} {reason}")
            return ()
        items.append(str(item).strip())
    return tuple(items)


def _parse_systems(value: object, fatal: list[str]) -> tuple[str, ...]:
    names = ", ".join(f'"{name}"' for name in SYSTEMS)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        fatal.append(f"'systems' must be a list of {names}")
        return ()
    unknown = [v for v in value if v not in SYSTEMS]
    if unknown:
        fatal.append(f"'systems' has {unknown[0]!r}; use {names}")
        return ()
    return tuple(dict.fromkeys(value))


def _parse_related(value: object, fatal: list[str]) -> tuple[Related, ...]:
    if not isinstance(value, list) or len(value) > MAX_LIST:
        fatal.append(f"'related' must be a list of at most {MAX_LIST} {{ what, note }} tables")
        return ()
    related: list[Related] = []
    for number, item in enumerate(value, start=1):
        if not isinstance(item, dict) or set(item) != {"what", "note"}:
            fatal.append(f"'related' item {number} must have exactly 'what' and 'note'")
            return ()
        for key in ("what", "note"):
            reason = _text_problem(item[key], single_line=key == "what")
            if reason is not None:
                fatal.append(f"'related' item {number} '{key}' {reason}")
                return ()
        related.append(Related(item["what"].strip(), item["note"].strip()))
    return tuple(related)
