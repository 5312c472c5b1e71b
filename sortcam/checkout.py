"""Where the repository checkout is, when sortcam runs from one.

Data that ships in the wheel (the model, the sample images, the console's templates) is
found through its package (:data:`sortcam.card.MODEL_DIR`). Folders that exist only in
a checkout (``firmware/``, ``benchmarks/``, ``platformio.ini``) are found here, and
:func:`repo_root` is ``None`` in an installed wheel, where ``Path(__file__).parent.parent``
is ``site-packages``: a default output there would write into the Python installation.
"""

from __future__ import annotations

from pathlib import Path


def repo_root() -> Path | None:
    """The checkout holding this package (``pyproject.toml`` and ``platformio.ini`` beside it), else ``None``."""
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "platformio.ini").is_file():
        return root
    return None
