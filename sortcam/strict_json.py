"""JSON that refuses an object with the same key twice.

Python's :func:`json.loads` keeps the last of two equal keys, so ``{"seq":1,"seq":2}``
reads as ``{"seq":2}`` and ``{"device":"cam2","device":"cam1"}`` as ``cam1``: a reader
that checks the first copy and acts on the second can be steered by whoever writes the
payload. Every sortcam reader of JSON from outside the process (MQTT payloads, the
console's API bodies, config files, model cards) goes through :func:`loads`, which
raises :class:`DuplicateKeyError` instead; each caller turns that into its own one-line
error (a :class:`~sortcam.errors.ContractError`, ``ConfigError``, ...).

:func:`dumps` is the writer's half: training records go through it, so a figure that does not
exist is ``null`` rather than ``NaN``, which is not JSON.
"""

from __future__ import annotations

import json
import math
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


def finite(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float (nested ones included) replaced by ``None``."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def dumps(obj: Any, **kwargs: Any) -> str:
    """:func:`json.dumps` that any JSON parser reads: a figure that does not exist (NaN, such as
    the val accuracy of a run fitted with no val split) is written ``null``, where
    :func:`json.dumps` writes the non-standard ``NaN`` that strict readers (browsers' ``JSON.parse``,
    ``jq``) refuse."""
    return json.dumps(finite(obj), allow_nan=False, **kwargs)
