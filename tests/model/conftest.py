"""Fixtures of the model pipeline tests (see tinydata.py)."""

from __future__ import annotations

from tinydata import tiny_dataset, tiny_model  # noqa: F401  (pytest fixtures)
