"""One error hierarchy for sortcam.

Library code raises a subclass of :class:`SortcamError`; only the CLI (``sortcam.cli``)
turns it into a one-line message and a non-zero exit code.
"""

from __future__ import annotations


class SortcamError(Exception):
    """Base of every error sortcam reports to a user. ``exit_code`` is what the CLI returns."""

    exit_code: int = 1


class UsageError(SortcamError):
    """Bad command-line arguments or option values."""

    exit_code = 2


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
