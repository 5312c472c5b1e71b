"""Labelled images in the training layout: ``<data>/labelled/<class>/<file>.jpg``.

The folder is a dataset that ``sortcam train`` reads as is (one folder per class).
Writes go through a temp file and a rename, so a crash never leaves half an image; a
corrected label moves the file, so an item is in exactly one class folder.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from sortcam.errors import DataError
from sortcam.preprocess import IMAGE_SUFFIXES

SAFE_RE = re.compile(r"[A-Za-z0-9_.-]{1,128}")
"""File stems, matched whole (``fullmatch``: ``$`` would let a final newline through)."""


class LabelStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def save(self, src: Path, label: str, classes: list[str], stem: str) -> Path:
        """Copy the image ``src`` into ``<root>/<label>/<stem><suffix>``, removing it from other classes."""
        if label not in classes:
            raise DataError(f"unknown label {label!r}: expected one of {', '.join(classes)}")
        if not SAFE_RE.fullmatch(stem) or stem.startswith("."):
            raise DataError(f"bad file name {stem!r}")
        if not src.is_file():
            raise DataError(f"the item's image is gone: {src}")
        suffix = src.suffix.lower() if src.suffix.lower() in IMAGE_SUFFIXES else ".jpg"
        dest = self.root / label / f"{stem}{suffix}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp")
        shutil.copyfile(src, tmp)
        tmp.replace(dest)
        for other in self.root.iterdir():  # a correction: the item now lives only under its new label
            if other.is_dir() and other.name != label:
                stale = other / dest.name
                if stale.exists():
                    stale.unlink()
        return dest

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        if not self.root.is_dir():
            return out
        for d in sorted(self.root.iterdir()):
            if d.is_dir() and not d.name.startswith("."):
                out[d.name] = sum(1 for f in d.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        return out
