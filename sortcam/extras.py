"""The optional parts of the install (``pyproject.toml``'s extras) and the one error for a missing one.

A conveyor host installs ``sortcam`` alone; the demo's embedded broker and the console's
web framework come with ``sortcam[demo]`` and ``sortcam[console]``. A command that needs an
extra calls :func:`require` before importing it, so a lean install answers with one line
naming the extra to install, never an ``ImportError`` traceback.
"""

from __future__ import annotations

import importlib

from sortcam.errors import DependencyError


def require(module: str, extra: str, what: str, instead: str = "") -> None:
    """Import ``module`` or raise :class:`DependencyError` saying that ``what`` needs ``sortcam[extra]``.

    ``instead`` names a way that needs no extra ("use --broker-kind mosquitto"), added to the message.
    """
    try:
        importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        why = "" if exc.name in (top, module) else f" ({exc})"  # a broken dependency of it: say which
        alternative = f", or {instead}" if instead else ""
        raise DependencyError(
            f"{what} needs {top}, which is not installed{why}: pip install 'sortcam[{extra}]'{alternative}"
        ) from None
