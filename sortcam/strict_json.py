"""JSON that refuses an object with the same key twice.

Python's :func:`json.loads` keeps the last of two equal keys, so ``{"seq":1,"seq":2}``
reads as ``{"seq":2}`` and ``{"device":"cam2","device":"cam1"}`` as ``cam1``: a reader
that checks the first copy and acts on the second can be steered by whoever writes the
payload. Every sortcam reader of JSON from outside the process (MQTT payloads, the
console's API bodies, config files, model cards) goes through :func:`loads`, which
raises :class:`DuplicateKeyError` instead; each caller turns that into its own one-line
error (a :class:`~sortcam.errors.ContractError`, ``ConfigError``, ...).
"""

from __future__ import annotations

import json
from typing import Any


class DuplicateKeyError(ValueError):
    """An object holds ``key`` twice (a :class:`ValueError`, like :class:`json.JSONDecodeError`)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key = key


def unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for :func:`json.loads`: the pairs as a dict, or :class:`DuplicateKeyError`."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(key)
        out[key] = value
    return out


def loads(text: str | bytes, **kwargs: Any) -> Any:
    """:func:`json.loads` with :func:`unique_object` for every object, nested ones included."""
    return json.loads(text, object_pairs_hook=unique_object, **kwargs)
