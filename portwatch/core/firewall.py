"""Whether the host firewall lets a port in: a small, honest reading of nftables rules.

What is evaluated, exactly (anything else is "rules present, not evaluated"):

- The ruleset as ``nft -j list ruleset`` prints it. Tables of family ``ip`` apply to
  IPv4, ``ip6`` to IPv6, ``inet`` to both; other families are not about local input.
- Only base chains of type ``filter`` on the ``input`` hook. Every one of them must let
  a packet through (a drop in any one drops it); none at all means nothing filters input.
- A chain is read rule by rule, for a new connection from another machine to the port:
  a rule whose every match is understood and holds decides with its verdict (``accept``,
  ``drop``, ``reject``); a rule with a match that cannot hold for such a packet
  (``ct state established,related``, ``iif lo``, another port or protocol, ICMP) is
  skipped; the end of the chain is its policy. Understood matches: the destination port
  (``tcp dport``, ``udp dport``, ``th dport``: a number, a set, a range), the transport
  protocol (``meta l4proto``, ``ip protocol``, ``ip6 nexthdr``), the family
  (``meta nfproto``), ``ct state`` and the input device being or not being loopback.
- Anything else that could decide (a source address, another input device, a jump or
  goto into another chain, a rate limit, iptables' compatibility expressions) stops the
  reading: the answer is then "rules present, not evaluated", never a guess.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

NO_RULES = "no firewall rules loaded"
NO_INPUT_FILTER = "no firewall rules filter incoming connections"
NOT_EVALUATED = "firewall rules present, not evaluated"
_FAMILIES = {"ip": {4}, "ip6": {6}, "inet": {4, 6}}
_VERDICTS = ("accept", "drop", "reject")
# Statements that neither match nor decide.
_PASSIVE = frozenset({"counter", "log", "comment", "meta_set", "mangle", "notrack", "quota_off"})


class _Unknown(Exception):
    """A match or statement this reading does not evaluate."""


@dataclass(frozen=True)
class Chain:
    """One input base chain: its table's family, its policy and its rules' expressions."""

    family: str
    table: str
    name: str
    policy: str
    rules: tuple[tuple[Mapping[str, Any], ...], ...]


@dataclass(frozen=True)
class _Step:
    """A rule read for one protocol and IP version: it holds when each port condition
    does (``values``, negated or not); ``unknown`` when it then cannot be told."""

    conditions: tuple[tuple[frozenset[int], tuple[tuple[int, int], ...], bool], ...]
    unknown: bool
    verdict: str | None
    text: str


@dataclass(frozen=True)
class Ruleset:
    """The parts of an nftables ruleset that decide local input."""

    tables: int
    chains: tuple[Chain, ...]
    # Why rules are known to exist that were not read (iptables-legacy tables), if so.
    unreadable: str = ""
    # (chain index, proto, version) → the chain's rules read for them: each rule is
    # read once, then a port is a set lookup per rule.
    _steps: dict[tuple[int, str, int], _Compiled] = field(
        default_factory=dict, compare=False, repr=False
    )

    def verdict(self, proto: str, port: int, families: Iterable[int]) -> str:
        """What the firewall does with a new ``proto`` connection to ``port`` (over the
        IP versions in ``families``), in words."""
        if self.unreadable:
            return f"{NOT_EVALUATED} ({self.unreadable})"
        if self.tables == 0:
            return NO_RULES
        answers = {version: self._verdict(proto, port, version) for version in sorted(families)}
        texts = set(answers.values())
        if len(texts) == 1:
            return texts.pop()
        return "; ".join(f"IPv{version}: {text}" for version, text in answers.items())

    def _verdict(self, proto: str, port: int, version: int) -> str:
        chains = [
            (index, c)
            for index, c in enumerate(self.chains)
            if version in _FAMILIES.get(c.family, set())
        ]
        if not chains:
            return NO_INPUT_FILTER
        reasons = []
        for index, chain in chains:
            key = (index, proto, version)
            steps = self._steps.get(key)
            if steps is None:
                steps = self._steps[key] = _compile_chain(chain, proto, version)
            try:
                verdict, why = _run(steps, chain.policy, port)
            except _Unknown:
                return NOT_EVALUATED
            where = f"{chain.family} {chain.table} {chain.name}"
            if verdict != "accept":
                return f"the firewall drops it ({why} in {where})"
            reasons.append(f"{why} in {where}")
        return "the firewall lets it in (" + "; ".join(reasons) + ")"


def parse(document: Mapping[str, Any]) -> Ruleset:
    """The input chains of ``nft -j list ruleset`` output; raises ValueError when it is
    not that."""
    items = document.get("nftables")
    if not isinstance(items, list):
        raise ValueError("not an nftables JSON ruleset")
    tables = 0
    heads: dict[tuple[str, str, str], dict[str, Any]] = {}
    rules: dict[tuple[str, str, str], list[tuple[Mapping[str, Any], ...]]] = {}
    for item in items:
        if not isinstance(item, dict):
            continue
        if "table" in item:
            tables += 1
        chain = item.get("chain")
        if (
            isinstance(chain, dict)
            and chain.get("hook") == "input"
            and chain.get("type") == "filter"
        ):
            key = (str(chain.get("family")), str(chain.get("table")), str(chain.get("name")))
            heads[key] = chain
        rule = item.get("rule")
        if isinstance(rule, dict):
            key = (str(rule.get("family")), str(rule.get("table")), str(rule.get("chain")))
            expr = rule.get("expr")
            rules.setdefault(key, []).append(tuple(expr) if isinstance(expr, list) else ({},))
    # Base chains run in priority order (lower first).
    ordered = sorted(heads.items(), key=lambda kv: _priority(kv[1].get("prio")))
    return Ruleset(
        tables=tables,
        chains=tuple(
            Chain(
                family=key[0],
                table=key[1],
                name=key[2],
                policy=str(head.get("policy", "accept")),
                rules=tuple(rules.get(key, [])),
            )
            for key, head in ordered
        ),
    )


def _priority(value: object) -> int:
    return value if isinstance(value, int) else 0


@dataclass(frozen=True)
class _Compiled:
    """A chain read for one protocol and IP version, indexed by port: ``exact`` maps a
    port to the first rule that is only "dport is one of these" and holds for it;
    ``others`` are the positions of every other rule, checked in order."""

    steps: tuple[_Step, ...]
    exact: dict[int, int]
    others: tuple[int, ...]


def _compile_chain(chain: Chain, proto: str, version: int) -> _Compiled:
    steps: list[_Step] = []
    for expressions in chain.rules:
        step = _compile(expressions, proto, version)
        if step is not None:
            steps.append(step)
    exact: dict[int, int] = {}
    others: list[int] = []
    for index, step in enumerate(steps):
        if len(step.conditions) == 1 and not step.conditions[0][1] and not step.conditions[0][2]:
            for port in step.conditions[0][0]:
                exact.setdefault(port, index)
        else:
            others.append(index)
    return _Compiled(tuple(steps), exact, tuple(others))


def _holds(step: _Step, port: int) -> bool:
    return all(
        (port in values or any(low <= port <= high for low, high in ranges)) != negate
        for values, ranges, negate in step.conditions
    )


def _run(chain: _Compiled, policy: str, port: int) -> tuple[str, str]:
    first = chain.exact.get(port)
    for index in chain.others:
        if first is not None and index > first:
            break
        if _holds(chain.steps[index], port):
            first = index
            break
    if first is not None:
        step = chain.steps[first]
        if step.unknown:
            raise _Unknown
        if step.verdict is not None:
            return step.verdict, f"rule {step.text}"
    return policy, f"policy {policy}"


class _PortCondition(Exception):
    """A destination port match, decided per port (carries its values)."""

    def __init__(self, right: Any) -> None:
        super().__init__()
        self.right = right


def _compile(expressions: Sequence[Mapping[str, Any]], proto: str, version: int) -> _Step | None:
    """The rule read for ``proto`` over IP ``version``: None when it cannot hold for a
    new connection from another machine, or decides nothing."""
    conditions = []
    unknown = False
    verdict = None
    for expression in expressions:
        if not isinstance(expression, dict) or len(expression) != 1:
            unknown = True
            continue
        ((kind, body),) = expression.items()
        if kind == "match":
            try:
                if not _match(body, proto, version):
                    return None  # cannot hold, whatever else the rule says
            except _PortCondition as condition:
                try:
                    conditions.append(_port_values(condition.right, body.get("op") == "!="))
                except _Unknown:
                    unknown = True
            except _Unknown:
                unknown = True  # decides only if every understood match holds
        elif kind in _VERDICTS:
            verdict = "accept" if kind == "accept" else "drop"
        elif kind not in _PASSIVE:
            unknown = True  # jump, goto, limit, xt, set updates, …
    if verdict is None and not unknown:
        return None
    return _Step(tuple(conditions), unknown, verdict, _describe(expressions))


def _port_values(
    right: Any, negate: bool
) -> tuple[frozenset[int], tuple[tuple[int, int], ...], bool]:
    values: set[int] = set()
    ranges: list[tuple[int, int]] = []
    for item in _values(right):
        if isinstance(item, bool):
            raise _Unknown
        if isinstance(item, int):
            values.add(item)
        elif isinstance(item, dict) and "range" in item:
            low, high = item["range"]
            if not (isinstance(low, int) and isinstance(high, int)):
                raise _Unknown
            ranges.append((low, high))
        else:
            raise _Unknown  # a named set, a service name, …
    return frozenset(values), tuple(ranges), negate


def _match(body: Any, proto: str, version: int) -> bool:
    if not isinstance(body, dict):
        raise _Unknown
    op = body.get("op", "==")
    left, right = body.get("left"), body.get("right")
    if op not in ("==", "!=", "in"):
        raise _Unknown
    value = _left_value(left, proto, version)
    if value is None:
        # A field of another protocol's header: the packet has no such header.
        return False
    if value is _PORT:
        raise _PortCondition(right)
    found = _contains(right, value)
    return found if op != "!=" else not found


_PORT = object()


def _left_value(left: Any, proto: str, version: int) -> object:
    if not isinstance(left, dict):
        raise _Unknown
    payload = left.get("payload")
    if isinstance(payload, dict):
        protocol, field_name = payload.get("protocol"), payload.get("field")
        if field_name == "dport" and protocol in ("tcp", "udp", "th"):
            if protocol not in ("th", proto):
                return None
            return _PORT
        if protocol in ("icmp", "icmpv6", "sctp", "dccp", "udplite", "tcp", "udp"):
            if protocol != proto:
                return None
            raise _Unknown  # another field of our own header (flags, sport)
        if protocol == "ip" and field_name == "protocol":
            return proto if version == 4 else None
        if protocol == "ip6" and field_name == "nexthdr":
            return proto if version == 6 else None
        raise _Unknown  # addresses and the rest
    meta = left.get("meta")
    if isinstance(meta, dict):
        key = meta.get("key")
        if key == "l4proto":
            return proto
        if key == "nfproto":
            return "ipv4" if version == 4 else "ipv6"
        if key in ("iif", "iifname"):
            return _FromOutside()
        raise _Unknown
    ct = left.get("ct")
    if isinstance(ct, dict) and ct.get("key") == "state":
        return "new"
    raise _Unknown


class _FromOutside:
    """The input device of a packet from another machine: not loopback, else unknown."""


def _contains(right: Any, value: object) -> bool:
    if isinstance(value, _FromOutside):
        names = _values(right)
        if all(name in ("lo", 1) for name in names):
            return False
        raise _Unknown  # another device: depends on where the packet comes from
    return any(_equal(item, value) for item in _values(right))


def _values(right: Any) -> list[Any]:
    if isinstance(right, dict) and "set" in right:
        items = right["set"]
        return list(items) if isinstance(items, list) else [items]
    if isinstance(right, list):
        return list(right)
    return [right]


def _equal(item: Any, value: object) -> bool:
    if isinstance(item, dict) and "range" in item and isinstance(value, int):
        low, high = item["range"]
        if isinstance(low, int) and isinstance(high, int):
            return low <= value <= high
        raise _Unknown
    if isinstance(item, dict):
        raise _Unknown  # a named set, a prefix, …
    return bool(item == value)


def _describe(expressions: Sequence[Mapping[str, Any]]) -> str:
    """A short text for a rule that decided (``tcp dport 80 accept``)."""
    words: list[str] = []
    for expression in expressions:
        if not isinstance(expression, dict) or len(expression) != 1:
            continue
        ((kind, body),) = expression.items()
        if kind in _VERDICTS:
            words.append(kind)
        elif kind == "match" and isinstance(body, dict):
            left = body.get("left")
            right = body.get("right")
            if isinstance(left, dict) and isinstance(left.get("payload"), dict):
                payload = left["payload"]
                words.append(f"{payload.get('protocol')} {payload.get('field')} {_short(right)}")
            elif isinstance(left, dict) and isinstance(left.get("meta"), dict):
                words.append(f"meta {left['meta'].get('key')} {_short(right)}")
            elif isinstance(left, dict) and isinstance(left.get("ct"), dict):
                words.append(f"ct {left['ct'].get('key')} {_short(right)}")
    return " ".join(words) or "(empty rule)"


def _short(right: Any) -> str:
    values = _values(right)
    shown = []
    for item in values[:4]:
        if isinstance(item, dict) and "range" in item:
            low, high = item["range"]
            shown.append(f"{low}-{high}")
        else:
            shown.append(str(item))
    text = ",".join(shown) + ("…" if len(values) > 4 else "")
    return "{" + text + "}" if len(values) > 1 else text
