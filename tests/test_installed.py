"""CI runs the tests against a non-editable install: prove that is what was imported."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import pytest

import portwatch

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(
    not os.environ.get("PORTWATCH_REQUIRE_INSTALLED"),
    reason="only CI requires the installed package",
)
def test_package_comes_from_the_installation_not_the_source_tree() -> None:
    package = Path(portwatch.__file__).resolve().parent
    assert REPO not in package.parents, package
    assert "site-packages" in str(package)


def test_resources_load_through_importlib() -> None:
    files = resources.files("portwatch.resources")
    assert files.is_dir()
