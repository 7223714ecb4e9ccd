"""What the curated descriptions say about registration must agree with the embedded
IANA registry: registered or not, under which name, on which protocols."""

from __future__ import annotations

import re

import pytest

from portwatch.core.types import Proto
from portwatch.knowledge.base import parse_embedded
from portwatch.knowledge.model import Entry
from portwatch.knowledge.registry import Registry, load

ENTRIES = [entry for parsed in parse_embedded() for entry in parsed.entries]
# "IANA lists 3353 under the service name "fatpipe" for both TCP and UDP." and the like:
# the sentence that starts with "IANA lists" (up to its full stop) is the claim.
LISTS = re.compile(r"IANA lists (\d+)(?:-(\d+))?(?:/(tcp|udp))?([^.]*(?:\.\d[^.]*)*)")
QUOTED = re.compile(r'"([^"]+)"')
BOTH = re.compile(r"(?:on|for) (?:both )?TCP and UDP")
SAYS_UNREGISTERED = re.compile(
    r"[Nn]ot registered(?! for| to| as)|[Nn]o (?:widely used )?service is registered|"
    r"[Nn]ot (?:a )?registration"
)
SAYS_NOT_FOR_THIS = re.compile(
    r"[Nn]ot registered (?:for|to|as)|[Nn]ot what IANA|unrelated|nothing to do|"
    r"is not registered there|not for this use"
)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load()


def _label(entry: Entry) -> str:
    return f"{entry.ports_label()}/{'+'.join(p.value for p in entry.protocols)} ({entry.name})"


def _names_at(registry: Registry, port: int, proto: Proto) -> set[str]:
    names = {r.name for r in registry.services(port, proto)}
    covering = registry.range_for(port, proto)
    if covering is not None and covering.is_service:
        names.add(covering.name)
    return names


def _all_text(entry: Entry) -> str:
    parts = [entry.title, entry.summary, entry.registration, entry.usage, *entry.security]
    parts += [r.note for r in entry.related]
    return "\n".join(parts)


def test_every_iana_lists_claim_is_in_the_registry(registry: Registry) -> None:
    wrong: list[str] = []
    for entry in ENTRIES:
        for match in LISTS.finditer(_all_text(entry)):
            lo = int(match.group(1))
            hi = int(match.group(2) or lo)
            only = match.group(3)
            rest = match.group(4)
            protos = [Proto(only)] if only else list(entry.protocols)
            if BOTH.search(rest):
                protos = [Proto.TCP, Proto.UDP]
            quoted = QUOTED.findall(rest.split(";")[0])
            if not quoted:
                continue
            for proto in protos:
                # A range claim holds if each name is registered somewhere in the range.
                registered: set[str] = set().union(
                    *(_names_at(registry, port, proto) for port in range(lo, hi + 1))
                )
                missing = [n for n in quoted if n not in registered]
                if missing:
                    wrong.append(
                        f"{_label(entry)}: says IANA lists {lo}-{hi}/{proto.value} as "
                        f"{missing}; the registry has {sorted(registered) or 'nothing'}"
                    )
    assert wrong == []


def test_registered_or_not_matches_the_registry(registry: Registry) -> None:
    wrong: list[str] = []
    for entry in ENTRIES:
        if entry.is_range:
            continue
        text = entry.registration
        names: set[str] = set()
        for proto in entry.protocols:
            names |= _names_at(registry, entry.lo, proto)
        if names:
            if SAYS_UNREGISTERED.search(text):
                wrong.append(f"{_label(entry)}: says not registered; IANA has {sorted(names)}")
            if not any(f'"{name}"' in text for name in names):
                wrong.append(f"{_label(entry)}: does not name IANA's {sorted(names)}")
            if entry.name not in names and not SAYS_NOT_FOR_THIS.search(text):
                wrong.append(
                    f"{_label(entry)}: named {entry.name!r}, IANA's name is {sorted(names)}, "
                    "and the text does not say they are different services"
                )
        else:
            if "IANA lists" in text:
                wrong.append(f"{_label(entry)}: says 'IANA lists' but the registry has nothing")
            if not SAYS_UNREGISTERED.search(text) and "IANA reserves" not in text:
                wrong.append(f"{_label(entry)}: does not say the port is unregistered")
    assert wrong == []


def test_protocol_claims_match(registry: Registry) -> None:
    wrong: list[str] = []
    for entry in ENTRIES:
        if entry.is_range:
            continue
        for match in LISTS.finditer(entry.registration):
            if int(match.group(1)) != entry.lo or not BOTH.search(match.group(4)):
                continue
            for proto in (Proto.TCP, Proto.UDP):
                if not _names_at(registry, entry.lo, proto):
                    wrong.append(f"{_label(entry)}: says TCP and UDP; not on {proto.value}")
    assert wrong == []


def test_the_privileged_range_is_0_to_1023() -> None:
    wrong = re.compile(
        r"(?:below|under|less than) 1023|(?:0|1)-1024\b|up to 1024|above 1024|"
        r"1025[^.]*first (?:port|number) above the privileged|first unprivileged port is 1025"
    )
    bad = [_label(e) for e in ENTRIES if wrong.search(_all_text(e))]
    assert bad == []
