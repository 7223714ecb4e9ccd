"""``portwatch describe PORT[/PROTO] [--json]``: explain what a port is for."""

from __future__ import annotations

import argparse
import json
import sys

from portwatch.core.types import Proto
from portwatch.core.watchlist import SpecError, parse_spec
from portwatch.knowledge import KnowledgeBase, PortInfo
from portwatch.knowledge.registry import Registration
from portwatch.knowledge.render import to_dict, to_text, to_text_brief
from portwatch.paths import Paths


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "describe",
        help="explain what a port is used for, e.g. 3653 or 3321/udp",
        description="Explain a port: its registered service, what really uses it, security "
        "notes and how to check it by hand. With no /PROTO, shows TCP and UDP when their "
        "descriptions differ.",
    )
    parser.add_argument("port", metavar="PORT[/PROTO]", help="a port such as 3653 or 3653/udp")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    # Writes nothing: runs in a scratch folder when the default ones are not usable.
    parser.set_defaults(handler=run, keeps_nothing=True)


def parse_port(text: str) -> tuple[int, tuple[Proto, ...]]:
    """``3653`` → (3653, (tcp, udp)); ``3653/udp`` → (3653, (udp,)). Raises SpecError."""
    spec = parse_spec(text)
    if spec.is_range:
        raise SpecError(text, "describe takes one port, not a range")
    return spec.lo, spec.protos


def descriptions(base: KnowledgeBase, port: int, protos: tuple[Proto, ...]) -> list[PortInfo]:
    """One description per protocol, merged into one when they read the same."""
    full, lesser = base.describe(port, protos)
    return full + lesser


def run(args: argparse.Namespace, paths: Paths) -> int:
    try:
        port, protos = parse_port(args.port)
    except SpecError as exc:
        # A bad port is a bad argument: exit status 2, like argparse.
        print(f"portwatch: error: {exc}", file=sys.stderr)
        return 2
    base, problems = KnowledgeBase.load(paths.knowledge_file)
    for problem in problems:
        print(f"portwatch: warning: {problem}", file=sys.stderr)
    full, lesser = base.describe(port, protos)
    if args.json:
        infos = full + lesser
        json.dump({"port": port, "descriptions": [to_dict(i) for i in infos]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    # A registration that covers both protocols is printed once, with the first of them.
    shown: list[Registration] = []
    printed: set[str] = set()
    parts = []
    for info in full:
        parts.append(to_text(info, shown=shown, printed=printed))
        shown.extend(info.iana)
    if lesser:
        briefs = "".join(to_text_brief(info, shown=shown) for info in lesser)
        parts.append("Other protocol\n" + briefs)
    sys.stdout.write("\n".join(parts))
    return 0
