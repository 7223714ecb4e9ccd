"""The three watched ports carry every fact of their reference pages (in portwatch's own
words), and `describe` prints them exactly as the snapshots under tests/snapshots/ show.

To accept a deliberate change of wording: PORTWATCH_UPDATE_SNAPSHOTS=1 pytest this file,
then read the diff of the snapshots before committing it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from portwatch.core.types import Proto
from portwatch.knowledge import KnowledgeBase
from portwatch.knowledge.render import to_text

SNAPSHOTS = Path(__file__).parent / "snapshots"

# One regular expression per fact; all must match the port's text (wrapping undone).
FACTS: dict[int, list[str]] = {
    3321: [
        r'"vnsstr"',
        r"both TCP and UDP",
        r"registered range \(1024-49151\)",
        r"no public specification",
        r"Framehawk",
        r"3224-3324",
        r"one per session|own port",
        r"101",
        r"ICA/HDX",
        r"mobile data|cellular",
        r"Wi-Fi",
        r"accepts some loss",
        r"application instead of the transport layer",
        r"Citrix Virtual Apps and Desktops",
        r"malware association",
        r"in-house tools that never became public",
        r"companies that no longer exist",
    ],
    3353: [
        r'"fatpipe"',
        r"both TCP and UDP",
        r"registered range \(1024-49151, 48,128 numbers\)",
        r"no administrator rights",
        r"based in Utah",
        r"WARP",
        r"Wide Area Redundancy Protocol",
        r"several internet providers",
        r"one link fails",
        r"SD-WAN",
        r"proprietary protocol",
        r"not published",
        r"coordination between appliances or management",
        r"nothing should be using",
        r"silent everywhere else",
    ],
    3653: [
        r'"tsp"',
        r"Tunnel Setup Protocol",
        r"tunnel broker",
        r"TCP where it can, for reliability",
        r"UDP where a NAT",
        r"RFC 5572",
        r"2010",
        r"SASL",
        r"6in4",
        r"6over4",
        r"Before TSP each broker had its own",
        r"call 3653 unassigned",
        r"registered range \(1024-49151\)",
        r"Freenet6",
        r"Hexago",
        r"Ericsson",
        r"Hurricane Electric",
        r"2005 to 2015",
        r"native IPv6",
        r"RFC 7123",
        r"IP protocol 41",
        r"443/tcp",
        r"for setting the tunnel up",
    ],
}


@pytest.fixture(scope="module")
def base() -> KnowledgeBase:
    loaded, problems = KnowledgeBase.load(None)
    assert problems == ()
    return loaded


@pytest.mark.parametrize("port", sorted(FACTS))
def test_every_seed_fact_is_there(base: KnowledgeBase, port: int) -> None:
    for proto in (Proto.TCP, Proto.UDP):
        text = " ".join(to_text(base.lookup(port, proto), width=10_000).split())
        missing = [fact for fact in FACTS[port] if not re.search(fact, text)]
        assert missing == [], f"{port}/{proto.value} lacks {missing}"


@pytest.mark.parametrize("port", sorted(FACTS))
def test_describe_matches_its_snapshot(tmp_path: Path, port: int) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "portwatch", "--data-dir", str(tmp_path), "describe", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "100"},
    )
    assert result.returncode == 0, result.stderr
    snapshot = SNAPSHOTS / f"describe-{port}.txt"
    if os.environ.get("PORTWATCH_UPDATE_SNAPSHOTS") == "1":
        snapshot.write_text(result.stdout, encoding="utf-8")
    assert result.stdout == snapshot.read_text(encoding="utf-8")
    # Shown once: both protocols share one description.
    assert result.stdout.count("What it is") == 1
