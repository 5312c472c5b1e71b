"""The optional parts of the install (``pyproject.toml``'s extras) and the one error for a missing one.

A conveyor host installs ``sortcam`` alone; the demo's embedded broker and the console's
web framework come with ``sortcam[demo]`` and ``sortcam[console]``. A command that needs an
extra calls :func:`require` before importing it, so a lean install answers with one line
naming the extra to install, never an ``ImportError`` traceback.
"""

from __future__ import annotations

import importlib

from sortcam.errors import DependencyError


def require(module: str, extra: str, what: str) -> None:
    """Import ``module`` or raise :class:`DependencyError` saying that ``what`` needs ``sortcam[extra]``."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise DependencyError(
            f"{what} needs {module.split('.')[0]}, which is not installed: pip install 'sortcam[{extra}]' ({exc})"
        ) from None
