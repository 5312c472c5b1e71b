"""Image-folder datasets: discovery, splits, and preloading at model size.

A dataset is a folder with one sub-folder per class (``DATA/<class>/<image>``), or with
``train/``, ``val/`` (and optionally ``test/``) sub-folders that each hold the class
folders. Without split folders, the images are split per class with a fixed seed
(70/10/20 by default), so every run of the same command sees the same split.

Images are read once and kept in memory as uint8 at model size through
:func:`sortcam.preprocess.fit_resize`, the one preprocessing every model path uses.
No TensorFlow here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sortcam.errors import DataError, UsageError
from sortcam.preprocess import IMAGE_SUFFIXES, fit_resize, load_image

log = logging.getLogger(__name__)

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")
MANIFEST = "MERGED.json"
"""Written by scripts/merge_splits.py in a folder whose train/ holds the photos of other splits."""


@dataclass
class Split:
    """File list of one split: ``paths[i]`` has class index ``labels[i]``."""

    paths: list[Path] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def counts(self, num_classes: int) -> list[int]:
        """Images per class (index order)."""
        return [self.labels.count(c) for c in range(num_classes)]


@dataclass
class DatasetIndex:
    """Classes (sorted folder names) and the train/val/test file lists."""

    root: Path
    classes: list[str]
    splits: dict[str, Split]
    skipped_files: list[Path] = field(default_factory=list)
    """Files that are not images (by suffix), counted and reported."""
    from_folders: bool = True
    """True when the dataset had its own ``train/`` ``val/`` folders, False when split here."""

    def split(self, name: str) -> Split:
        return self.splits.get(name, Split())


@dataclass
class LoadedSplit:
    """A split read into memory: ``images`` uint8 ``(N, H, W, 3)``, ``labels`` int32 ``(N,)``."""

    images: npt.NDArray[np.uint8]
    labels: npt.NDArray[np.int32]
    paths: list[Path]
    corrupt: list[Path] = field(default_factory=list)


def parse_split_spec(spec: str) -> tuple[float, float, float]:
    """``"70/10/20"`` to fractions (train, val, test); raises :class:`UsageError` on bad text."""
    parts = spec.replace(",", "/").split("/")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise UsageError(f"--split {spec!r}: expected three numbers like 70/10/20") from None
    if len(values) == 2:
        values.append(0.0)
    if len(values) != 3 or any(v < 0 for v in values) or values[0] <= 0 or values[1] <= 0:
        raise UsageError(f"--split {spec!r}: expected train/val/test percentages, train and val > 0")
    total = sum(values)
    return values[0] / total, values[1] / total, values[2] / total


def _class_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """Image files (sorted) and non-image files in one class folder."""
    images: list[Path] = []
    other: list[Path] = []
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or p.name.startswith("."):
            continue
        (images if p.suffix.lower() in IMAGE_SUFFIXES else other).append(p)
    return images, other


def _scan_classes(folder: Path) -> tuple[dict[str, list[Path]], list[Path]]:
    if not folder.is_dir():
        raise DataError(f"dataset folder not found: {folder}")
    class_dirs = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise DataError(f"{folder} has no class folders (expected {folder}/<class>/<image>.jpg)")
    files: dict[str, list[Path]] = {}
    skipped: list[Path] = []
    for d in class_dirs:
        images, other = _class_files(d)
        files[d.name] = images
        skipped.extend(other)
    return files, skipped


def index_dataset(
    root: str | Path,
    split: tuple[float, float, float] = (0.7, 0.1, 0.2),
    seed: int = 1337,
    classes: Sequence[str] | None = None,
) -> DatasetIndex:
    """Find classes and files; use ``train/ val/ test/`` folders when present, else split.

    ``classes``, when given, is the class list a model expects; a dataset whose class
    folders differ raises :class:`DataError` naming the difference.
    """
    root_p = Path(root)
    if not root_p.is_dir():
        raise DataError(f"dataset folder not found: {root_p}")
    present = [n for n in SPLIT_NAMES if (root_p / n).is_dir()]
    splits: dict[str, Split] = {}
    skipped: list[Path] = []
    if "train" in present or "val" in present:
        per_split: dict[str, dict[str, list[Path]]] = {}
        for name in present:
            files, skip = _scan_classes(root_p / name)
            per_split[name] = files
            skipped.extend(skip)
        names = sorted(set().union(*(set(f) for f in per_split.values())))
        for name, files in per_split.items():
            s = Split()
            for ci, cname in enumerate(names):
                for p in files.get(cname, []):
                    s.paths.append(p)
                    s.labels.append(ci)
            splits[name] = s
        from_folders = True
        all_counts = {c: sum(len(f.get(c, [])) for f in per_split.values()) for c in names}
    else:
        files, skipped = _scan_classes(root_p)
        names = sorted(files)
        all_counts = {c: len(files[c]) for c in names}
        rng = random.Random(seed)
        splits = {n: Split() for n in SPLIT_NAMES}
        for ci, cname in enumerate(names):
            paths = list(files[cname])
            rng.shuffle(paths)
            n = len(paths)
            n_val = max(1, round(n * split[1])) if n >= 3 else 0
            n_test = round(n * split[2]) if n - n_val >= 2 else 0
            n_train = n - n_val - n_test
            for name, chunk in (
                ("train", paths[:n_train]),
                ("val", paths[n_train : n_train + n_val]),
                ("test", paths[n_train + n_val :]),
            ):
                splits[name].paths.extend(chunk)
                splits[name].labels.extend([ci] * len(chunk))
        from_folders = False
    empty = [c for c in names if all_counts[c] == 0]
    if empty:
        raise DataError(f"class folder(s) with no images in {root_p}: {', '.join(empty)}")
    if len(names) < 2:
        raise DataError(f"{root_p} has a single class ({names[0]}): a classifier needs at least 2")
    if classes is not None and list(classes) != names:
        missing = [c for c in classes if c not in names]
        extra = [c for c in names if c not in classes]
        detail = []
        if missing:
            detail.append(f"missing {', '.join(missing)}")
        if extra:
            detail.append(f"unknown {', '.join(extra)}")
        if not detail:
            detail.append("different order")
        raise DataError(
            f"dataset classes differ from the model's ({'; '.join(detail)}); model classes: {', '.join(classes)}"
        )
    if skipped:
        log.warning("skipped %d non-image file(s) in %s (e.g. %s)", len(skipped), root_p, skipped[0].name)
    return DatasetIndex(root_p, names, splits, skipped, from_folders)


def load_split(
    split: Split,
    height: int,
    width: int,
    fit: str = "crop",
    progress: Callable[[int, int], None] | None = None,
    keep_full: bool = False,
) -> tuple[LoadedSplit, list[npt.NDArray[np.uint8]]]:
    """Read every image of ``split`` at model size (uint8), skipping unreadable ones.

    Corrupt or unreadable images are skipped, counted and logged as one warning.
    With ``keep_full`` the decoded full-size photos are returned too (for augmentation
    views that must be cut from the original photo); else the second item is empty.
    """
    images: list[npt.NDArray[np.uint8]] = []
    full: list[npt.NDArray[np.uint8]] = []
    labels: list[int] = []
    paths: list[Path] = []
    corrupt: list[Path] = []
    for i, (p, lab) in enumerate(zip(split.paths, split.labels, strict=False)):
        try:
            img = load_image(p)
            small = fit_resize(img, height, width, fit)
        except DataError as exc:
            corrupt.append(p)
            log.debug("skipping %s: %s", p, exc)
            continue
        images.append(small)
        if keep_full:
            full.append(img)
        labels.append(lab)
        paths.append(p)
        if progress is not None:
            progress(i + 1, len(split))
    if corrupt:
        log.warning("skipped %d unreadable image(s) (e.g. %s)", len(corrupt), corrupt[0])
    arr = np.stack(images) if images else np.zeros((0, height, width, 3), np.uint8)
    return LoadedSplit(arr, np.asarray(labels, np.int32), paths, corrupt), full


def class_weights(labels: npt.NDArray[np.int32], num_classes: int) -> npt.NDArray[np.float32]:
    """Balanced weights ``n / (k * n_c)`` per class, so rare classes (TrashNet's trash) count as much."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    counts[counts == 0] = 1.0
    return (len(labels) / (num_classes * counts)).astype(np.float32)


def dataset_fingerprints(index: DatasetIndex) -> tuple[str, str]:
    """Two short hashes of a data set's classes and its train and val photos: ``(by content,
    by size)``. A new record stores the first; a record matches these photos when its
    fingerprint is either one, so a run recorded before 2026-12-07 (paths and sizes only) still
    resumes.

    By content: relative paths, labels and the bytes of every file, starting with ``c``. Two
    indexes of the same photos give the same value wherever the folder lives; a renamed, added,
    removed or rewritten photo changes it, also one rewritten at the same size. Hashing
    TrashNet's 25 MB takes about 0.1 s. By size: the same with each file's size in place of its
    bytes (16 hex digits).
    """
    by_content = hashlib.sha256(json.dumps(index.classes, sort_keys=True).encode())
    by_size = by_content.copy()
    for name in ("train", "val"):
        s = index.split(name)
        for p, lab in zip(s.paths, s.labels, strict=True):
            try:
                data: bytes | None = p.read_bytes()
            except OSError:
                data = None
            rel = p.relative_to(index.root).as_posix()
            size = -1 if data is None else len(data)
            digest = "-" if data is None else hashlib.sha256(data).hexdigest()
            by_size.update(f"{name}\0{rel}\0{lab}\0{size}\n".encode())
            by_content.update(f"{name}\0{rel}\0{lab}\0{digest}\n".encode())
    return "c" + by_content.hexdigest()[:16], by_size.hexdigest()[:16]


def merged_from(data_dir: str | Path) -> dict[str, Any] | None:
    """The :data:`MANIFEST` of a merged dataset folder (source, splits, photos), or None."""
    try:
        data = json.loads((Path(data_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("splits"), list):
        return None
    return {k: data[k] for k in ("source", "source_name", "splits", "photos") if k in data}


def index_for(
    data_dir: str | Path, training: dict[str, Any] | None, classes: Sequence[str] | None = None
) -> DatasetIndex:
    """Index ``data_dir`` with the split a model's training drew (its ``--split`` and ``--seed``).

    A folder without train/ val/ folders is split here by seed; a training run with
    ``--seed 7`` drew another val than the default seed does, so evaluation, calibration and
    QAT must draw with the training's seed or they score (or fit) photos it trained on.
    Folders with split folders are unaffected.
    """
    spec, seed = (0.7, 0.1, 0.2), 1337
    if training:
        try:
            spec = parse_split_spec(str(training.get("split", "70/10/20")))
        except UsageError:
            pass
        value = training.get("seed", 1337)
        if isinstance(value, int) and not isinstance(value, bool):
            seed = value
    return index_dataset(data_dir, split=spec, seed=seed, classes=classes)
