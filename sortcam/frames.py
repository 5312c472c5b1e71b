"""Camera frames as JPEG, bounded in pixels and bytes: collected frames (``sortcam collect``).

The twin's collected frames travel in ``sample`` messages (:mod:`sortcam.mqtt_contract`),
whose JPEG holds at most ``SAMPLE_JPEG_MAX`` bytes; the webcam collector stores the same
bounded JPEG without a broker. The firmware gets there with the sensor's JPEG quality.
"""

from __future__ import annotations

import io

from sortcam.errors import DataError
from sortcam.preprocess import U8Image

QUALITIES: tuple[int, ...] = (90, 80, 70, 60, 50, 40)
"""JPEG qualities tried in turn until the frame fits; then the frame is halved and tried again."""


def encode_jpeg(frame: U8Image, max_side: int, max_bytes: int) -> tuple[bytes, int, int]:
    """``(jpeg, width, height)`` of an ``(H, W, 3)`` uint8 RGB frame.

    The frame is scaled down (aspect kept) so its longer side is at most ``max_side`` pixels,
    then saved at the highest of :data:`QUALITIES` that gives at most ``max_bytes`` bytes;
    when none does, it is halved and tried again. Raises :class:`DataError` for a frame that
    is not 8-bit RGB, or that does not fit even at 16 pixels.
    """
    from PIL import Image

    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype.name != "uint8":
        raise DataError(f"a frame must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
    img = Image.fromarray(frame)
    side = min(max_side, max(img.size))
    while side >= 16:
        small = img.copy()
        small.thumbnail((side, side))
        for quality in QUALITIES:
            buf = io.BytesIO()
            small.save(buf, format="JPEG", quality=quality)
            if buf.tell() <= max_bytes:
                return buf.getvalue(), small.width, small.height
        side //= 2
    raise DataError(f"a {img.width}x{img.height} frame does not fit in {max_bytes} bytes of JPEG")
