"""Photo augmentation for training views (NumPy + Pillow, no TensorFlow).

A view is a random geometric and photometric variant of a whole photo, made *before*
the one preprocessing (:func:`sortcam.preprocess.fit_resize`), so that the student and
the teacher of a distillation see the very same view at their own input sizes, and a
view is what a camera could have photographed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class AugmentSpec:
    """Ranges of the random changes (uniform). Angles in degrees, the rest as fractions."""

    flip: bool = True
    rotation_deg: float = 20.0
    zoom: float = 0.15
    """Scale in ``[1 - zoom, 1 + zoom]``."""
    shift: float = 0.1
    """Translation up to this fraction of width and height."""
    brightness: float = 0.2
    """Add up to this fraction of 255."""
    contrast: float = 0.2
    """Scale around the mean by ``[1 - contrast, 1 + contrast]``."""


def augment_photo(
    image: npt.NDArray[np.uint8], rng: np.random.Generator, spec: AugmentSpec = AugmentSpec()
) -> npt.NDArray[np.uint8]:
    """One random view of an ``(H, W, 3)`` uint8 photo, same size. Uncovered corners get the border colour."""
    from PIL import Image

    h, w = int(image.shape[0]), int(image.shape[1])
    angle = math.radians(rng.uniform(-spec.rotation_deg, spec.rotation_deg))
    scale = rng.uniform(1.0 - spec.zoom, 1.0 + spec.zoom)
    tx = rng.uniform(-spec.shift, spec.shift) * w
    ty = rng.uniform(-spec.shift, spec.shift) * h
    flip = spec.flip and rng.random() < 0.5
    # PIL maps each output pixel to its source: inverse of (flip, rotate, scale about centre, shift).
    cx, cy = w / 2.0, h / 2.0
    cos_a, sin_a = math.cos(angle) / scale, math.sin(angle) / scale
    sx = -1.0 if flip else 1.0
    # source = C + F * R^-1 * (out - C - t) / scale
    a, b = sx * cos_a, sx * sin_a
    d, e = -sin_a, cos_a
    ox, oy = -cx - tx, -cy - ty
    coeffs = (a, b, a * ox + b * oy + cx, d, e, d * ox + e * oy + cy)
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]]).astype(np.float64)
    fill = tuple(int(v) for v in np.median(border, axis=0))
    out = Image.fromarray(image).transform(
        (w, h), Image.Transform.AFFINE, coeffs, Image.Resampling.BILINEAR, fillcolor=fill
    )
    arr = np.asarray(out, dtype=np.float32)
    contrast = rng.uniform(1.0 - spec.contrast, 1.0 + spec.contrast)
    brightness = rng.uniform(-spec.brightness, spec.brightness) * 255.0
    mean = arr.mean()
    arr = (arr - mean) * contrast + mean + brightness
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)
