"""Shared pytest fixtures for every area (tests/<area>/test_*.py).

Area-specific fixtures live in tests/<area>/conftest.py.
"""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``hw`` tests need a board: they run only with SORTCAM_HW=1 (and are reported as skipped)."""
    if os.environ.get("SORTCAM_HW") == "1":
        return
    skip = pytest.mark.skip(reason="needs a board: set SORTCAM_HW=1")
    for item in items:
        if "hw" in item.keywords:
            item.add_marker(skip)
