"""Watch-list specs: single ports and ranges with an optional protocol.

``3653`` watches TCP and UDP, ``3653/tcp`` only TCP, ``3224-3324/udp`` a UDP range.
Bad specs are refused with the value and the reason; nothing is coerced.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from portwatch.core.problems import ProblemList
from portwatch.core.types import Proto

MIN_PORT = 1
MAX_PORT = 65535
# A range wider than this is almost always a typo and would make the chart unreadable.
MAX_RANGE_PORTS = 4096

# ASCII digits only: int() would read other scripts' digits too, and a port typed as
# Arabic-Indic digits is not what the file appears to say. Lengths are bounded so that a
# number of thousands of digits is refused as out of range, not converted.
_SPEC_RE = re.compile(
    r"^(?P<lo>[0-9]{1,20})(?:-(?P<hi>[0-9]{1,20}))?(?:/(?P<proto>[A-Za-z]{1,10}))?$"
)
_LONG_NUMBER_RE = re.compile(r"^-?[0-9]{21,}")

DEFAULT_SPECS = ("3321", "3353", "3653")


def shorten(value: object, limit: int = 40) -> str:
    """A value quoted in a message (``repr``): long ones cut, so one bad line stays one
    readable line."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to convert to text
        return "<a number of thousands of digits>"
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


class SpecError(ValueError):
    """A watch-list spec that cannot be accepted; the message names the value and why."""

    def __init__(self, value: object, reason: str) -> None:
        super().__init__(f"{shorten(value)} is not a valid port spec: {reason}")
        self.value = value
        self.reason = reason


@dataclass(frozen=True, order=True)
class WatchSpec:
    """One entry of the watch list: ports ``lo``..``hi`` on the given protocols."""

    lo: int
    hi: int
    protos: tuple[Proto, ...] = (Proto.TCP, Proto.UDP)

    def __str__(self) -> str:
        ports = str(self.lo) if self.lo == self.hi else f"{self.lo}-{self.hi}"
        if set(self.protos) == {Proto.TCP, Proto.UDP}:
            return ports
        return f"{ports}/{self.protos[0].value}"

    def contains(self, port: int, proto: Proto) -> bool:
        return self.lo <= port <= self.hi and proto in self.protos

    def overlaps(self, other: WatchSpec) -> bool:
        return (
            self.lo <= other.hi
            and other.lo <= self.hi
            and bool(set(self.protos) & set(other.protos))
        )

    @property
    def is_range(self) -> bool:
        return self.lo != self.hi


def parse_spec(value: object) -> WatchSpec:
    """Parse one spec; raise :class:`SpecError` naming the value and the reason."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise SpecError(value, f"expected text such as '3653/tcp', got {type(value).__name__}")
    if isinstance(value, int) and not MIN_PORT <= value <= MAX_PORT:
        raise SpecError(value, f"it is outside {MIN_PORT}-{MAX_PORT}")
    text = str(value).strip()
    if not text:
        raise SpecError(value, "it is empty")
    match = _SPEC_RE.match(text)
    if match is None:
        long_number = _LONG_NUMBER_RE.match(text)
        if long_number:
            digits = len(long_number.group().lstrip("-"))
            raise SpecError(value, f"a number of {digits:,} digits is not a port")
        if text.startswith("-"):
            raise SpecError(value, "ports cannot be negative")
        if re.match(r"^\d+\.\d+", text):
            raise SpecError(value, "a port is a whole number")
        raise SpecError(value, "expected PORT, LOW-HIGH, optionally followed by /tcp or /udp")
    lo = int(match["lo"])
    hi = int(match["hi"]) if match["hi"] is not None else lo
    for port in (lo, hi):
        if not MIN_PORT <= port <= MAX_PORT:
            raise SpecError(value, f"port {port} is outside {MIN_PORT}-{MAX_PORT}")
    if hi < lo:
        raise SpecError(value, f"the range is reversed ({lo} is above {hi})")
    if hi - lo + 1 > MAX_RANGE_PORTS:
        raise SpecError(value, f"the range covers {hi - lo + 1} ports; at most {MAX_RANGE_PORTS}")
    proto_text = match["proto"]
    if proto_text is None:
        protos: tuple[Proto, ...] = (Proto.TCP, Proto.UDP)
    else:
        try:
            protos = (Proto(proto_text.lower()),)
        except ValueError:
            raise SpecError(value, f"unknown protocol {proto_text!r}; use tcp or udp") from None
    return WatchSpec(lo, hi, protos)


@dataclass(frozen=True)
class WatchList:
    """An ordered, duplicate-free set of specs with fast membership tests."""

    specs: tuple[WatchSpec, ...] = ()

    @classmethod
    def default(cls) -> WatchList:
        return cls(tuple(parse_spec(s) for s in DEFAULT_SPECS))

    def __iter__(self) -> Iterator[WatchSpec]:
        return iter(self.specs)

    def __len__(self) -> int:
        return len(self.specs)

    def contains(self, port: int, proto: Proto) -> bool:
        return (port, proto) in self.ports()

    def spec_for(self, port: int, proto: Proto) -> WatchSpec | None:
        """The first spec that covers this port and protocol."""
        for spec in self.specs:
            if spec.contains(port, proto):
                return spec
        return None

    @functools.cached_property
    def _port_set(self) -> frozenset[tuple[int, Proto]]:
        # Overlapping ranges are merged first, so the work is bounded by the ports
        # covered (at most 65,535 a protocol), not by the sum of the ranges' widths.
        pairs: list[tuple[int, Proto]] = []
        for proto in Proto:
            spans = sorted((s.lo, s.hi) for s in self.specs if proto in s.protos)
            covered = 0  # every port below this one is already in pairs
            for lo, hi in spans:
                start = max(lo, covered)
                pairs.extend((port, proto) for port in range(start, hi + 1))
                covered = max(covered, hi + 1)
        return frozenset(pairs)

    def ports(self) -> frozenset[tuple[int, Proto]]:
        """Every watched (port, proto) pair (computed once: it is asked on every poll)."""
        return self._port_set

    def port_numbers(self) -> frozenset[int]:
        return frozenset(port for port, _ in self.ports())

    def with_added(self, spec: WatchSpec) -> WatchList:
        if spec in self.specs:
            return self
        return WatchList((*self.specs, spec))

    def without(self, spec: WatchSpec) -> WatchList:
        return WatchList(tuple(s for s in self.specs if s != spec))


@dataclass(frozen=True)
class ParseReport:
    """The result of reading a watch-list text: what is valid and what was refused."""

    watchlist: WatchList
    errors: tuple[str, ...]


def parse_lines(lines: Iterable[str]) -> ParseReport:
    """Parse watch-list file lines: one spec a line, ``#`` starts a comment.

    Valid lines are kept, each bad line is reported with its line number, value and
    reason, and duplicates are reported once and dropped.
    """
    specs: list[WatchSpec] = []
    seen: set[WatchSpec] = set()
    errors = ProblemList()
    for number, raw in enumerate(lines, start=1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            spec = parse_spec(text)
        except SpecError as exc:
            errors.add(f"line {number}: {exc}", "refused lines")
            continue
        if spec in seen:
            errors.add(
                f"line {number}: {shorten(text)} is listed twice; the repeat is ignored",
                "repeated lines",
            )
            continue
        seen.add(spec)
        specs.append(spec)
    return ParseReport(WatchList(tuple(specs)), errors.summary())


def render_lines(watchlist: WatchList) -> str:
    """The file text for a watch list, with a header that explains the format."""
    header = (
        "# portwatch watch list: one port spec a line.\n"
        "# PORT watches TCP and UDP; PORT/tcp or PORT/udp one protocol; LOW-HIGH a range.\n"
    )
    return header + "".join(f"{spec}\n" for spec in watchlist.specs)
