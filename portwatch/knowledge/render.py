"""Port descriptions as terminal text, as HTML for the desktop side panel, and as JSON data.

The HTML escapes every string: the embedded text is ours, but the user's file and the
OS services database are not, and nothing from a process ever reaches this module.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Collection
from typing import Any, NamedTuple

from portwatch.knowledge.model import PortInfo
from portwatch.knowledge.registry import DYNAMIC_FIRST, Registration

_SOURCE_NOTE = {
    "curated": "Description shipped with portwatch.",
    "user": "Description from your own ports.toml.",
    "registry": "From IANA's port registry, as embedded in portwatch.",
    "os-services": "Only a name, from this computer's services database.",
    "none": "Nothing known about this port.",
}
PROGRAMS_HEADING = "Programs you would expect here"
PROGRAMS_CAVEAT = (
    "Hints only: a program can take any port and any name, so never trust a listener "
    "because it matches this list."
)


def heading(info: PortInfo) -> str:
    """``3653/tcp+udp — tsp: Tunnel Setup Protocol`` (the title alone when it is the name)."""
    protocols = info.protocols if not info.is_range else (info.proto,)
    label = f"{info.port}/{'+'.join(p.value for p in protocols)}"
    if not info.name:
        return f"{label} — {info.title}"
    if info.title == info.name:
        return f"{label} — {info.name}"
    return f"{label} — {info.name}: {info.title}"


def _covers(info: PortInfo) -> str | None:
    if info.is_range:
        return f"Covers {info.covers_label()}; {info.port} is one port of the range."
    return None


def _os_note(info: PortInfo) -> str | None:
    if info.os_service and info.os_service != info.name and info.source != "os-services":
        return (
            f"This computer's services database calls {info.port}/{info.proto.value} "
            f"'{info.os_service}'."
        )
    return None


def registration_line(row: Registration, title: str = "") -> str:
    """One registry row as a sentence: name, ports, description and the details IANA
    records (who, when, which document)."""
    text = f'IANA registry: "{row.name}" on {row.label()}'
    if row.description and row.description != title:
        text += f", {row.description}"
    details = []
    if row.assignee:
        details.append(f"assignee {row.assignee}")
    if row.contact and row.contact != row.assignee:
        details.append(f"contact {row.contact}")
    if row.registered:
        details.append(f"registered {row.registered}")
    if row.modified:
        details.append(f"modified {row.modified}")
    if row.reference:
        details.append(f"reference {row.reference}")
    if details:
        text += "; " + ", ".join(details)
    text += "."
    if row.notes:
        text += f" Note: {row.notes}"
    return text


def status_line(info: PortInfo) -> str | None:
    """What the registry says of a port it registers no service on."""
    row = info.iana_status
    if row is None:
        return None
    protocols = info.protocols if info.source == "none" else (info.proto,)
    where = f"{info.port}/{'+'.join(p.value for p in protocols)}"
    if row.is_service:
        return (
            f"IANA registry: {where} lies in {row.label()}, registered as a range for "
            f'"{row.name}" ({row.description}).'
        )
    if row.lo >= DYNAMIC_FIRST:
        return (
            f"IANA registry: {where} is in the dynamic and private range "
            f"{row.ports_label()}, which IANA never assigns."
        )
    status = row.description.rstrip(".") or "Unassigned"
    span = f" (the range {row.ports_label()})" if row.is_range else ""
    if status.lower() in ("unassigned", "reserved"):
        return f"IANA registry: {where} is {status.lower()}{span}; no service is registered on it."
    return f"IANA registry: {where} is listed without a service name: {status}{span}."


def _also(info: PortInfo) -> str | None:
    if not info.also_in:
        return None
    return "Also in range " + "; also in range ".join(info.also_in) + "."


class _Section(NamedTuple):
    title: str
    paragraphs: list[str]
    note: str = ""


def _sections(info: PortInfo, shown: Collection[Registration] = ()) -> list[_Section]:
    """The sections in reading order; empty ones left out. Registry rows in ``shown``
    were printed already (for the other protocol) and are not repeated."""
    sections = [_Section("What it is", [info.summary])]
    registration = [info.registration] if info.registration else []
    registration.extend(registration_line(row, info.title) for row in info.iana if row not in shown)
    status = status_line(info)
    if status:
        registration.append(status)
    also = _also(info)
    if also:
        registration.append(also)
    os_note = _os_note(info)
    if os_note:
        registration.append(os_note)
    if registration:
        sections.append(_Section("Registration", registration))
    if info.usage:
        sections.append(_Section("In practice", [info.usage]))
    if info.security:
        sections.append(_Section("Security", list(info.security)))
    if info.related:
        sections.append(_Section("Related", [f"{r.what}: {r.note}" for r in info.related]))
    if info.programs:
        sections.append(_Section(PROGRAMS_HEADING, list(info.programs), PROGRAMS_CAVEAT))
    return sections


def to_text(
    info: PortInfo,
    width: int = 88,
    shown: Collection[Registration] = (),
    printed: set[str] | None = None,
) -> str:
    """Readable, wrapped text for a terminal. When several descriptions are printed one
    after another, registry rows in ``shown`` and paragraphs and notes in ``printed``
    (which this call adds to) appeared already and are left out."""
    printed = set() if printed is None else printed

    def fresh(text: str) -> bool:
        if text in printed:
            return False
        printed.add(text)
        return True

    def wrap(text: str, indent: str = "  ", bullet: str = "") -> list[str]:
        lines: list[str] = []
        for paragraph in text.split("\n"):
            lines.extend(
                textwrap.wrap(
                    paragraph,
                    width=width,
                    initial_indent=indent + bullet,
                    subsequent_indent=indent + " " * len(bullet),
                    break_on_hyphens=False,
                )
                or [""]
            )
        return lines

    out = [heading(info), "=" * min(len(heading(info)), width)]
    covers = _covers(info)
    if covers:
        out.append(covers)
    out.append("")
    for title, all_paragraphs, note in _sections(info, shown):
        paragraphs = [p for p in all_paragraphs if fresh(p)]
        if not paragraphs:
            continue
        out.append(title)
        bullet = "- " if len(paragraphs) > 1 else ""
        for paragraph in paragraphs:
            out.extend(wrap(paragraph, bullet=bullet))
        if note and fresh(note):
            out.extend(wrap(f"({note})"))
        out.append("")
    out.append("Check by hand")
    for check in info.checks:
        out.append(f"  {check.platform}:")
        out.extend(f"    {command}" for command in check.commands)
        if check.note and fresh(check.note):
            out.extend(wrap(check.note, indent="    "))
    out.append("")
    if fresh(_SOURCE_NOTE[info.source]):
        out.append(_SOURCE_NOTE[info.source])
    return "\n".join(out) + "\n"


def brief(info: PortInfo, shown: Collection[Registration] = ()) -> str:
    """One paragraph for the other protocol of a port described in full above it
    (``shown``: the registry rows already printed there)."""
    where = f"{info.port}/{info.proto.value}"
    if info.iana and all(row in shown for row in info.iana):
        names = ", ".join(f'"{row.name}"' for row in info.iana)
        text = (
            f"{where}: IANA registers {names} on {info.proto.value.upper()} too (the "
            "registration above); the description above is about the other protocol."
        )
    elif info.iana:
        text = f"{where}: " + " ".join(registration_line(row) for row in info.iana)
        text += " The description above is about the other protocol."
    elif info.source == "os-services":
        text = f"{where}: only this computer's services database names it, '{info.name}'."
    else:
        text = f"{where}: " + (status_line(info) or "nothing is known about it.")
    also = _also(info)
    return text + (" " + also if also else "")


def to_text_brief(info: PortInfo, width: int = 88, shown: Collection[Registration] = ()) -> str:
    """:func:`brief` wrapped for a terminal."""
    text = brief(info, shown)
    return "\n".join(textwrap.wrap(text, width=width, break_on_hyphens=False)) + "\n"


def brief_html(info: PortInfo, shown: Collection[Registration] = ()) -> str:
    """:func:`brief` as a paragraph for the side panel."""
    return f"\n<p><small>{html.escape(brief(info, shown))}</small></p>"


def to_html(info: PortInfo) -> str:
    """Rich text for the side panel: headings, paragraphs and copyable commands."""
    esc = html.escape
    parts = [f"<h2>{esc(heading(info))}</h2>"]
    covers = _covers(info)
    if covers:
        parts.append(f"<p><small>{esc(covers)}</small></p>")
    for title, paragraphs, note in _sections(info):
        parts.append(f"<h3>{esc(title)}</h3>")
        if len(paragraphs) > 1:
            items = "".join(f"<li>{esc(p)}</li>" for p in paragraphs)
            parts.append(f"<ul>{items}</ul>")
        else:
            parts.append(f"<p>{esc(paragraphs[0])}</p>")
        if note:
            parts.append(f"<p><small>{esc(note)}</small></p>")
    parts.append("<h3>Check by hand</h3>")
    for check in info.checks:
        parts.append(f"<h4>{esc(check.platform)}</h4>")
        commands = "\n".join(esc(command) for command in check.commands)
        parts.append(f"<pre><code>{commands}</code></pre>")
        if check.note:
            parts.append(f"<p><small>{esc(check.note)}</small></p>")
    parts.append(f"<p><i>{esc(_SOURCE_NOTE[info.source])}</i></p>")
    return "\n".join(parts)


def to_dict(info: PortInfo) -> dict[str, Any]:
    """Plain data for ``--json``: strings, numbers and lists only."""
    return {
        "port": info.port,
        "proto": info.proto.value,
        "covers": {
            "low": info.lo,
            "high": info.hi,
            "protocols": [p.value for p in info.protocols],
        },
        "source": info.source,
        "name": info.name,
        "title": info.title,
        "summary": info.summary,
        "registration": info.registration,
        "usage": info.usage,
        "security": list(info.security),
        "related": [{"what": r.what, "note": r.note} for r in info.related],
        "programs": list(info.programs),
        "os_service": info.os_service,
        "iana": [
            {
                "name": r.name,
                "ports": r.ports_label(),
                "protocols": [p.value for p in r.protocols],
                "description": r.description,
                "assignee": r.assignee,
                "contact": r.contact,
                "registered": r.registered,
                "modified": r.modified,
                "reference": r.reference,
                "notes": r.notes,
            }
            for r in info.iana
        ],
        "iana_status": status_line(info),
        "also_in": list(info.also_in),
        "checks": [
            {"platform": c.platform, "commands": list(c.commands), "note": c.note}
            for c in info.checks
        ],
    }
