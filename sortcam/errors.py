"""One error hierarchy for sortcam.

Library code raises a subclass of :class:`SortcamError`; only the CLI (``sortcam.cli``)
turns it into a one-line message and a non-zero exit code, and the console into an HTTP
answer whose status is the error's own ``http_status`` (never read from its text).
"""

from __future__ import annotations


class SortcamError(Exception):
    """Base of every error sortcam reports to a user. ``exit_code`` is what the CLI returns.

    ``http_status`` is what the console answers an HTTP request that raised it.
    """

    exit_code: int = 1
    http_status: int = 400


class UsageError(SortcamError):
    """Bad command-line arguments or option values."""

    exit_code = 2


class BusyError(SortcamError):
    """The action cannot run now because another one holds the resource (a retrain is running)."""

    http_status = 409


class DataError(SortcamError):
    """A dataset or image cannot be used (missing folders, one class, unreadable files)."""


class ModelError(SortcamError):
    """A model file or model card is missing, broken, or does not fit its use."""


class ConfigError(SortcamError):
    """A configuration file or value is invalid."""


class ContractError(SortcamError):
    """A message breaks the MQTT or serial contract (docs/DESIGN.md)."""


class BrokerError(SortcamError):
    """The MQTT broker cannot be reached or refuses us."""


class SerialLinkError(SortcamError):
    """The serial port to the sorter cannot be opened or went away."""


class DependencyError(SortcamError):
    """An optional dependency (an extra such as ``sortcam[train]``) is not installed."""


def first_line(exc: BaseException, limit: int | None = 200) -> str:
    """The first line of ``exc``'s message, at most ``limit`` characters, or its type's name when it
    has none: what a one-line error quotes of an exception from a library (Keras, TFLM, h5py)."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    return text.splitlines()[0][:limit]
