"""The one preprocessing: a photo to the model's input.

Every path that feeds the model follows this module: training and calibration (float
input), evaluation, the simulator and the console (int8 input), and, mirrored line by
line in C++, the firmware (``firmware/lib/sortcam_core/src/preprocess.cc``). The C++ and
Python versions are proven bit-identical by golden vectors (``tests/data/golden``).

Steps, all on 8-bit RGB:

1. **fit**: ``crop`` takes the largest centred region with the model's aspect ratio
   (integer arithmetic, offsets rounded down); ``stretch`` keeps the whole frame.
2. **resize**: bilinear with half-pixel centres in fixed point (8 fractional bits per
   axis, result rounded half up), so that C++ and NumPy give the same bytes.
3. **range**: a pixel ``u`` in 0..255 becomes ``lo + (hi - lo) * u / 255.0`` (double),
   the float range the network was trained on (``[-1, 1]`` for MobileNetV2).
4. **quantize** (int8 models): ``q = clamp(round_half_away(f / scale) + zero_point,
   -128, 127)`` with the input tensor's own ``scale`` and ``zero_point`` read at run
   time. Steps 3 and 4 are a 256-entry lookup table built once per model.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from sortcam.errors import DataError

Fit = Literal["crop", "stretch"]
FITS: tuple[str, ...] = ("crop", "stretch")
RESIZE_METHOD = "bilinear-fixed8"
"""Name recorded in the model card's ``preprocess.resize``."""

DEFAULT_RANGE: tuple[float, float] = (-1.0, 1.0)
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

U8Image = npt.NDArray[np.uint8]

_FRAC_BITS = 8
_ONE = 1 << _FRAC_BITS


MAX_PIXELS = 40_000_000
"""Largest image sortcam decodes (a 40 MP photo); a bigger one is refused from its header, before decoding."""

_HEADER_ERRORS = (SyntaxError, OSError, ValueError, IndexError, TypeError, struct.error)
"""What a Pillow format opener raises for bytes it cannot read (as ``Image.open`` catches them)."""


def header_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from an image's header, even past Pillow's decompression-bomb limit.

    ``Image.open`` refuses an image over ``2 * Image.MAX_IMAGE_PIXELS`` (about 179 MP)
    without saying how big it is; this calls the format openers ``Image.open`` itself
    calls (they read the header only), skipping that one check, so that a 30000x30000
    PNG is refused with its size and :data:`MAX_PIXELS` rather than as "not an image".
    ``None`` when no opener reads the header.
    """
    from PIL import Image

    Image.init()
    prefix = data[:16]
    for factory, accept in list(Image.OPEN.values()):
        if accept is not None and not accept(prefix):
            continue
        try:
            with factory(io.BytesIO(data), "") as image:
                return image.size
        except _HEADER_ERRORS:
            continue
    return None


def pixel_limit_error(size: tuple[int, int] | None) -> str | None:
    """The one-line reason an image of ``size`` is refused (``None`` size: too big to read), or ``None``."""
    limit = f"the {MAX_PIXELS // 1_000_000} MP limit"
    if size is None:
        return f"more pixels than {limit}"
    w, h = size
    return f"{w}x{h} pixels is more than {limit}" if w * h > MAX_PIXELS else None


def _decode(source: Path | bytes) -> U8Image:
    """Open, check the pixel count from the header, then decode (EXIF rotation applied) to RGB."""
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as opened:
            if (too_big := pixel_limit_error(opened.size)) is not None:
                raise DataError(too_big)
            rgb = ImageOps.exif_transpose(opened).convert("RGB")
            rgb.load()
    except Image.DecompressionBombError:
        data = source if isinstance(source, bytes) else source.read_bytes()
        raise DataError(pixel_limit_error(header_size(data)) or "image too large to decode") from None
    return np.asarray(rgb, dtype=np.uint8)


def load_image(path: str | Path) -> U8Image:
    """Read an image file as an ``(H, W, 3)`` uint8 RGB array (EXIF rotation applied).

    Raises :class:`DataError` with a one-line reason when the file is missing, not an
    image, truncated, or over :data:`MAX_PIXELS`.
    """
    from PIL import UnidentifiedImageError

    p = Path(path)
    try:
        return _decode(p)
    except FileNotFoundError:
        raise DataError(f"image not found: {p}") from None
    except DataError as exc:
        raise DataError(f"cannot read image {p}: {exc}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"cannot read image {p}: {exc}") from None


def decode_image(data: bytes) -> U8Image:
    """Decode encoded image bytes (JPEG, PNG, ...) to ``(H, W, 3)`` uint8 RGB; at most :data:`MAX_PIXELS`."""
    from PIL import UnidentifiedImageError

    try:
        return _decode(data)
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"cannot decode image: {exc}") from None


def crop_box(in_h: int, in_w: int, out_h: int, out_w: int, fit: str) -> tuple[int, int, int, int]:
    """Region ``(y, x, h, w)`` of the input that ``fit`` keeps."""
    if fit == "stretch":
        return 0, 0, in_h, in_w
    if fit != "crop":
        raise DataError(f"unknown fit {fit!r}: expected one of {', '.join(FITS)}")
    if in_w * out_h > in_h * out_w:  # input wider than the model: trim the sides
        crop_w = in_h * out_w // out_h
        return 0, (in_w - crop_w) // 2, in_h, crop_w
    crop_h = in_w * out_h // out_w
    return (in_h - crop_h) // 2, 0, crop_h, in_w


def _axis_taps(in_n: int, out_n: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Source index pairs and 8-bit weights of the far pixel for one axis.

    Source coordinate of output ``i`` is ``(i + 0.5) * in_n / out_n - 0.5``, computed as
    the exact fraction ``((2i + 1) * in_n - out_n) / (2 * out_n)``; negative values clamp
    to 0, the index past the edge clamps to ``in_n - 1``.
    """
    i = np.arange(out_n, dtype=np.int64)
    num = (2 * i + 1) * in_n - out_n
    den = 2 * out_n
    num = np.maximum(num, 0)
    i0 = num // den
    frac = ((num % den) * _ONE) // den
    i1 = np.minimum(i0 + 1, in_n - 1)
    return i0, i1, frac


def resize_bilinear(image: U8Image, out_h: int, out_w: int) -> U8Image:
    """Fixed-point bilinear resize of an ``(H, W, 3)`` uint8 image (see module doc)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise DataError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    in_h, in_w = int(image.shape[0]), int(image.shape[1])
    if in_h < 1 or in_w < 1:
        raise DataError("empty image")
    y0, y1, fy = _axis_taps(in_h, out_h)
    x0, x1, fx = _axis_taps(in_w, out_w)
    img = image.astype(np.int64)
    fx_ = fx[None, :, None]
    top = img[y0][:, x0] * (_ONE - fx_) + img[y0][:, x1] * fx_
    bottom = img[y1][:, x0] * (_ONE - fx_) + img[y1][:, x1] * fx_
    fy_ = fy[:, None, None]
    acc = top * (_ONE - fy_) + bottom * fy_
    out = np.right_shift(acc.astype(np.int64) + (1 << (2 * _FRAC_BITS - 1)), 2 * _FRAC_BITS)
    return out.astype(np.uint8)


def fit_resize(image: U8Image, out_h: int, out_w: int, fit: str = "crop") -> U8Image:
    """Steps 1 and 2: the model-sized uint8 RGB image the network sees."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise DataError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    y, x, h, w = crop_box(int(image.shape[0]), int(image.shape[1]), out_h, out_w, fit)
    if h < 1 or w < 1:
        raise DataError(f"image {image.shape[1]}x{image.shape[0]} is too small to crop")
    return resize_bilinear(image[y : y + h, x : x + w], out_h, out_w)


def to_float(image_u8: U8Image, value_range: tuple[float, float] = DEFAULT_RANGE) -> npt.NDArray[np.float32]:
    """Step 3 as float32, the input of the float (Keras) model."""
    lo, hi = float(value_range[0]), float(value_range[1])
    return (lo + (hi - lo) * image_u8.astype(np.float64) / 255.0).astype(np.float32)


def int8_lut(scale: float, zero_point: int, value_range: tuple[float, float] = DEFAULT_RANGE) -> npt.NDArray[np.int8]:
    """Steps 3 and 4 as a 256-entry table from a pixel value to the int8 input."""
    if not scale > 0:
        raise DataError(f"input scale must be > 0, got {scale}")
    lo, hi = float(value_range[0]), float(value_range[1])
    u = np.arange(256, dtype=np.float64)
    f = lo + (hi - lo) * u / 255.0
    x = f / float(np.float32(scale))
    rounded = np.sign(x) * np.floor(np.abs(x) + 0.5)  # half away from zero, as std::round
    q = rounded + int(zero_point)
    return np.clip(q, -128, 127).astype(np.int8)


def to_int8(
    image_u8: U8Image, scale: float, zero_point: int, value_range: tuple[float, float] = DEFAULT_RANGE
) -> npt.NDArray[np.int8]:
    """Steps 3 and 4: uint8 RGB to the int8 input tensor values (same shape)."""
    return int8_lut(scale, zero_point, value_range)[image_u8]


def preprocess_int8(
    image: U8Image,
    height: int,
    width: int,
    scale: float,
    zero_point: int,
    fit: str = "crop",
    value_range: tuple[float, float] = DEFAULT_RANGE,
) -> npt.NDArray[np.int8]:
    """The whole path: any-size RGB photo to the model's ``(height, width, 3)`` int8 input."""
    return to_int8(fit_resize(image, height, width, fit), scale, zero_point, value_range)
