"""Where the device twin's frames come from: a folder of images, a video file, a webcam.

A folder is a stream of *items*: each image is one item photographed on the belt, and
its true class is the name of the folder it sits in (``samples/glass/glass11.jpg`` is a
glass item) when that name is one of the model's classes. Video files and webcams are a
stream of *frames*; items are found in them by the device's own presence test.

OpenCV is optional (``pip install 'sortcam[video]'``): it is imported only when a video
or webcam source is opened, and its absence is a one-line :class:`DependencyError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sortcam.errors import DataError, DependencyError, UsageError
from sortcam.preprocess import IMAGE_SUFFIXES, U8Image, load_image

VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
WEBCAM_RE = re.compile(r"webcam:([0-9]{1,3})")
"""Matched whole (``fullmatch``), ASCII digits only (``\\d`` also takes "٣")."""
SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
"""The bundled sample images (4 per TrashNet class, attribution in ``README.md``)."""


@dataclass(frozen=True)
class SourceItem:
    """One image of a folder source: the file and its true class (None when unknown)."""

    path: Path
    truth: str | None

    @property
    def name(self) -> str:
        """``<class folder>/<file>`` (or the file name), how reports refer to the item."""
        return f"{self.path.parent.name}/{self.path.name}" if self.truth else self.path.name


def list_folder(folder: str | Path, classes: list[str] | None = None) -> list[SourceItem]:
    """Images under ``folder`` (one level of class sub-folders, or images directly in it).

    Classes are interleaved (first image of each class, then the second, ...) so a short
    run sees every class. Raises :class:`DataError` when there is no image.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"source folder not found: {root}")
    known = set(classes) if classes else None
    per_class: list[list[SourceItem]] = []
    direct = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if direct:
        per_class.append([SourceItem(p, None) for p in direct])
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in sub.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        truth = sub.name if known is None or sub.name in known else None
        if files:
            per_class.append([SourceItem(p, truth) for p in files])
    items: list[SourceItem] = []
    for i in range(max((len(c) for c in per_class), default=0)):
        items.extend(c[i] for c in per_class if i < len(c))
    if not items:
        raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {root} or its sub-folders")
    return items


def source_kind(source: str) -> str:
    """``folder``, ``video`` or ``webcam`` for a ``--source`` value; raises :class:`UsageError`."""
    if WEBCAM_RE.fullmatch(source):
        return "webcam"
    path = Path(source)
    if path.is_dir():
        return "folder"
    if path.is_file():
        if path.suffix.lower() in VIDEO_SUFFIXES:
            return "video"
        raise UsageError(f"source {source} is a file but not a video ({', '.join(VIDEO_SUFFIXES)}); give its folder")
    if source.startswith("webcam"):
        raise UsageError(f"bad webcam source {source!r}: expected webcam:N (N = camera index, e.g. webcam:0)")
    raise DataError(f"source not found: {source}")


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise DependencyError(
            "video and webcam sources need OpenCV: pip install 'sortcam[video]' (opencv-python-headless)"
        ) from None
    return cv2


class VideoFrames:
    """Frames of a video file or a webcam as ``(H, W, 3)`` uint8 RGB, through OpenCV.

    ``fps`` is the source's frame rate (0 when unknown, e.g. many webcams).
    """

    def __init__(self, source: str) -> None:
        cv2 = _cv2()
        match = WEBCAM_RE.fullmatch(source)
        self.source = source
        self.live = match is not None
        self._cap = cv2.VideoCapture(int(match.group(1))) if match else cv2.VideoCapture(source)
        if not self._cap.isOpened():
            self._cap.release()
            if self.live:
                raise DataError(f"cannot open camera {source}: no such camera or it is busy")
            raise DataError(f"cannot open video {source}: not a video OpenCV can read")
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0 < fps < 1000 else 0.0
        self._cv2 = cv2

    def __iter__(self) -> Iterator[U8Image]:
        first = True
        while True:
            ok, bgr = self._cap.read()
            if not ok or bgr is None:
                if first:
                    raise DataError(f"{self.source} gave no frame")
                return
            first = False
            yield np.ascontiguousarray(bgr[:, :, ::-1])

    def rewind(self) -> bool:
        """Back to the first frame (files only); False for a live camera."""
        if self.live:
            return False
        return bool(self._cap.set(self._cv2.CAP_PROP_POS_FRAMES, 0))

    def close(self) -> None:
        self._cap.release()


def read_item(item: SourceItem) -> U8Image:
    """The image of a folder item (raises :class:`DataError` for an unreadable file)."""
    return load_image(item.path)
