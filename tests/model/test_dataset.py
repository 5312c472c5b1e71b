"""Dataset discovery, splits and bad input (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tinydata import TINY_CLASSES, draw_shape, make_dataset

from sortcam.cli import main
from sortcam.errors import DataError, UsageError
from sortcam.model.augment import augment_photo
from sortcam.model.data import (
    class_weights,
    dataset_fingerprints,
    index_dataset,
    load_split,
    parse_split_spec,
)


def test_flat_dataset_is_split_stratified_and_reproducibly(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", per_class=20)
    a = index_dataset(root, (0.7, 0.1, 0.2), seed=3)
    b = index_dataset(root, (0.7, 0.1, 0.2), seed=3)
    assert a.classes == list(TINY_CLASSES)
    assert a.split("train").paths == b.split("train").paths
    assert a.split("train").counts(3) == [14, 14, 14]
    assert a.split("val").counts(3) == [2, 2, 2]
    assert a.split("test").counts(3) == [4, 4, 4]
    assert not a.from_folders
    all_paths = a.split("train").paths + a.split("val").paths + a.split("test").paths
    assert len(set(all_paths)) == 60


def test_split_folders_are_used_when_present(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", per_class=8, splits=True)
    idx = index_dataset(root)
    assert idx.from_folders
    assert len(idx.split("train")) == 18 and len(idx.split("val")) == 6
    assert all("/train/" in str(p) for p in idx.split("train").paths)


@pytest.mark.parametrize("spec, expected", [("70/10/20", (0.7, 0.1, 0.2)), ("80/20", (0.8, 0.2, 0.0))])
def test_parse_split_spec(spec: str, expected: tuple[float, float, float]) -> None:
    assert parse_split_spec(spec) == pytest.approx(expected)


@pytest.mark.parametrize("spec", ["a/b/c", "0/50/50", "70/0/30", "1/2/3/4"])
def test_parse_split_spec_rejects(spec: str) -> None:
    with pytest.raises(UsageError):
        parse_split_spec(spec)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        index_dataset(tmp_path / "nope")


def test_no_class_folders(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"x")
    with pytest.raises(DataError, match="no class folders"):
        index_dataset(tmp_path)


def test_empty_class_folder(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", per_class=4)
    (root / "purple").mkdir()
    with pytest.raises(DataError, match="purple"):
        index_dataset(root)


def test_single_class(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", per_class=4, classes=("red",))
    with pytest.raises(DataError, match="single class"):
        index_dataset(root)


def test_classes_differ_from_the_model(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", per_class=4)
    with pytest.raises(DataError, match="missing yellow; unknown red"):
        index_dataset(root, classes=["blue", "green", "yellow"])


def test_corrupt_images_and_non_images_are_skipped_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = make_dataset(tmp_path / "d", per_class=6)
    (root / "red" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    good = (root / "red").glob("*.png").__next__().read_bytes()
    (root / "red" / "cut.png").write_bytes(good[: len(good) // 3])
    (root / "red" / "notes.txt").write_text("hello")
    idx = index_dataset(root, (0.5, 0.5, 0.0))
    assert [p.name for p in idx.skipped_files] == ["notes.txt"]
    everything = idx.split("train")
    everything.paths += idx.split("val").paths
    everything.labels += idx.split("val").labels
    loaded, _ = load_split(everything, 16, 16)
    assert sorted(p.name for p in loaded.corrupt) == ["broken.jpg", "cut.png"]
    assert len(loaded.images) == 18 and loaded.images.dtype == np.uint8
    assert "skipped 2 unreadable image(s)" in caplog.text


def test_train_cli_reports_bad_dataset_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_dataset(tmp_path / "d", per_class=3, classes=("red",))
    rc = main(["train", str(root), "--weights", "none", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1
    assert err == [f"sortcam: error: {root} has a single class (red): a classifier needs at least 2"]


def test_class_weights_balance_rare_classes() -> None:
    w = class_weights(np.array([0] * 30 + [1] * 10, np.int32), 2)
    assert w[1] == pytest.approx(3 * w[0])


def test_augment_keeps_size_and_changes_pixels() -> None:
    rng = np.random.default_rng(0)
    img = draw_shape("red", rng)
    out = augment_photo(img, np.random.default_rng(1))
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - img.astype(int)).mean() > 1.0


def test_fingerprint_follows_the_photos_bytes_not_their_folder(tmp_path: Path) -> None:
    """The same photos elsewhere give the same fingerprint; a photo rewritten at the very same
    size changes it (the older paths-and-sizes value, still accepted from old records, does not)."""
    import shutil

    data = make_dataset(tmp_path / "a", per_class=6, seed=3, splits=True)
    spec = parse_split_spec("70/10/20")
    first = dataset_fingerprints(index_dataset(str(data), spec, 1337))
    shutil.copytree(data, tmp_path / "b")
    assert dataset_fingerprints(index_dataset(str(tmp_path / "b"), spec, 1337)) == first
    assert first[0].startswith("c") and len(first[1]) == 16 and first[0] != first[1]

    index = index_dataset(str(data), spec, 1337)
    photo = index.split("val").paths[0]
    raw = bytearray(photo.read_bytes())
    raw[-3] ^= 0xFF  # one byte inside the file: the same size, other contents
    photo.write_bytes(bytes(raw))
    after = dataset_fingerprints(index_dataset(str(data), spec, 1337))
    assert after[0] != first[0] and after[1] == first[1]
