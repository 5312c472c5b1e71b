"""Fixtures of the export and benchmark tests: the model tests' tiny trained model."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model"))

from tinydata import tiny_dataset, tiny_model  # noqa: E402,F401  (pytest fixtures)
