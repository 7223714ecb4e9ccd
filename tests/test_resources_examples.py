"""The example files in resources/ stay valid for the formats they document."""

from __future__ import annotations

from pathlib import Path

import pytest

from portwatch.config import watchfile
from portwatch.core.types import Proto
from portwatch.knowledge import KnowledgeBase

EXAMPLES = Path(__file__).resolve().parents[1] / "resources"

pytestmark = pytest.mark.skipif(
    not EXAMPLES.is_dir(), reason="examples are in the source tree, not in the installed package"
)


def test_watchlist_example_parses_without_problems(tmp_path: Path) -> None:
    target = tmp_path / "watchlist.txt"
    target.write_text((EXAMPLES / "watchlist.example.txt").read_text(encoding="utf-8"))
    loaded = watchfile.load(target)
    assert loaded.problems == ()
    assert [str(s) for s in loaded.watchlist] == ["3321", "3353", "3653", "3224-3324/udp", "22/tcp"]


def test_ports_example_is_a_valid_user_file_and_its_uncommented_entry_loads(tmp_path: Path) -> None:
    text = (EXAMPLES / "ports.example.toml").read_text(encoding="utf-8")
    _, problems = KnowledgeBase.load(EXAMPLES / "ports.example.toml")
    assert problems == ()
    keys = ("[", "port", "protocols", "name", "title", "summary", "usage", "security")
    keys += ("programs", "related")
    uncommented = "\n".join(
        line[2:] for line in text.splitlines() if line.startswith(tuple(f"# {k}" for k in keys))
    )
    user_file = tmp_path / "ports.toml"
    user_file.write_text(uncommented, encoding="utf-8")
    knowledge, problems = KnowledgeBase.load(user_file)
    assert problems == ()
    assert knowledge.service_name(8123, Proto.TCP) == "home-assistant"
