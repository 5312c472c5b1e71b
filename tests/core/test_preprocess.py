"""The one preprocessing: properties that every caller (and the C++ mirror) relies on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sortcam.errors import DataError
from sortcam.preprocess import crop_box, fit_resize, int8_lut, load_image, preprocess_int8, resize_bilinear, to_float


@pytest.mark.parametrize(
    ("in_hw", "out_hw", "fit", "box"),
    [
        ((192, 256), (96, 96), "crop", (0, 32, 192, 192)),
        ((256, 192), (96, 96), "crop", (32, 0, 192, 192)),
        ((120, 160), (96, 96), "crop", (0, 20, 120, 120)),
        ((100, 100), (96, 96), "crop", (0, 0, 100, 100)),
        ((192, 256), (96, 96), "stretch", (0, 0, 192, 256)),
        ((121, 160), (96, 128), "crop", (0, 0, 120, 160)),
    ],
)
def test_crop_box(in_hw: tuple[int, int], out_hw: tuple[int, int], fit: str, box: tuple[int, int, int, int]) -> None:
    assert crop_box(*in_hw, *out_hw, fit) == box


def test_unknown_fit_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="unknown fit"):
        crop_box(10, 10, 5, 5, "zoom")


def test_identity_resize_keeps_pixels() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    assert np.array_equal(resize_bilinear(img, 17, 23), img)


def test_exact_2x_downscale_averages_pixel_pairs() -> None:
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    out = resize_bilinear(img, 4, 4).astype(int)
    # half-pixel centres: output (i, j) sits exactly between source pixels 2i, 2i+1
    block = img.astype(int).reshape(4, 2, 4, 2, 3)
    expected = (block.sum(axis=(1, 3)) * 64 + 128) >> 8  # weights 128*128 per tap, rounded
    assert np.abs(out - expected).max() <= 1


def test_constant_image_stays_constant() -> None:
    img = np.full((192, 256, 3), 77, dtype=np.uint8)
    assert (fit_resize(img, 96, 96) == 77).all()


def test_lut_is_monotonic_and_matches_formula() -> None:
    scale, zp = 0.007843137718737125, -1
    lut = int8_lut(scale, zp)
    assert lut.dtype == np.int8
    assert (np.diff(lut.astype(int)) >= 0).all()
    for u in (0, 1, 127, 128, 200, 255):
        f = -1.0 + 2.0 * u / 255.0
        x = f / float(np.float32(scale))
        expected = int(np.clip(np.sign(x) * np.floor(abs(x) + 0.5) + zp, -128, 127))
        assert lut[u] == expected
    assert lut[0] == -128  # 1.0 / scale is 127.49999..., so 255 maps to 126 here


def test_float_input_range() -> None:
    f = to_float(np.array([[[0, 128, 255]]], dtype=np.uint8))
    assert f.dtype == np.float32
    assert f[0, 0, 0] == -1.0 and f[0, 0, 2] == 1.0 and abs(float(f[0, 0, 1]) - 0.00392) < 1e-4


def test_preprocess_int8_of_real_jpeg(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    Image.fromarray(rng.integers(0, 256, (192, 256, 3), dtype=np.uint8)).save(tmp_path / "a.jpg")
    img = load_image(tmp_path / "a.jpg")
    q = preprocess_int8(img, 96, 96, 2 / 255, -1)
    assert q.shape == (96, 96, 3) and q.dtype == np.int8


@pytest.mark.parametrize("content", [b"", b"not an image", b"\xff\xd8\xff\xe0" + b"\x00" * 20])
def test_unreadable_images_are_data_errors(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "bad.jpg"
    p.write_bytes(content)
    with pytest.raises(DataError, match="cannot read image"):
        load_image(p)


def test_missing_image_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_image(tmp_path / "nope.png")


def _header_only_png(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` (no pixel data: nothing may get that far)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("width", "height"), [(30000, 30000), (8000, 5001)])
def test_images_over_the_pixel_limit_are_refused_from_their_header(tmp_path: Path, width: int, height: int) -> None:
    """Past Pillow's own limit (about 179 MP) it raised DecompressionBombError, a traceback for a folder source."""
    from sortcam.preprocess import decode_image

    p = tmp_path / "huge.png"
    p.write_bytes(_header_only_png(width, height))
    message = f"{width}x{height} pixels is more than the 40 MP limit"
    with pytest.raises(DataError, match=f"cannot read image {p}: {message}"):
        load_image(p)
    with pytest.raises(DataError, match=message):
        decode_image(p.read_bytes())
