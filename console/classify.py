"""Classify uploaded photos with the line's int8 model in the TFLM runtime.

The path is exactly the device's: :func:`sortcam.preprocess.fit_resize` to the model
size, the int8 lookup table with the input tensor's own scale and zero point, one TFLM
invoke, dequantise with the output tensor's scale and zero point. The console shows the
model-sized image (what the network saw) beside the answer.
"""

from __future__ import annotations

import base64
import io
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sortcam.card import REJECT_BIN, ModelCard, load_card
from sortcam.errors import DataError, ModelError
from sortcam.preprocess import U8Image, decode_image, fit_resize, header_size, pixel_limit_error, to_int8
from sortcam.runtime import Int8Classifier

IMAGE_FORMATS = ("JPEG", "PNG", "BMP", "WEBP", "MPO", "GIF")


def decode_upload(data: bytes, name: str = "upload") -> U8Image:
    """Decode an uploaded file to RGB, refusing non-images and images over :data:`sortcam.preprocess.MAX_PIXELS`."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise DataError(f"{name}: empty file")
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format or "?"
            size = img.size
    except Image.DecompressionBombError:  # past Pillow's own limit: its size comes from the header alone
        raise DataError(f"{name}: {pixel_limit_error(header_size(data))}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise DataError(f"{name}: not an image (expected JPEG, PNG, BMP or WebP)") from None
    if fmt not in IMAGE_FORMATS:
        raise DataError(f"{name}: {fmt} images are not supported (expected JPEG, PNG, BMP or WebP)")
    if (too_big := pixel_limit_error(size)) is not None:
        raise DataError(f"{name}: {too_big}")
    try:
        return decode_image(data)
    except DataError as exc:
        raise DataError(f"{name}: {exc}") from None


def png_data_uri(image: U8Image) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def jpeg_bytes(image: U8Image, quality: int = 90) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@dataclass
class Prediction:
    name: str
    label: str
    class_id: int
    confidence: float
    top: list[tuple[str, float]]
    bin: str
    line_bin: str
    """What the line would do: ``bin``, or the reject bin below the threshold."""
    biodegradable: bool | None
    model_input_uri: str
    model_id: str

    def to_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["top"] = [[label, round(p, 4)] for label, p in self.top]
        d["confidence"] = round(self.confidence, 4)
        return d


class ClassifierService:
    """The current model (card + TFLM interpreter); thread-safe, reloadable after a promotion."""

    def __init__(self, card_path: Path | None, threshold: float = 0.6) -> None:
        self.card_path = card_path
        self.threshold = float(threshold)
        self._lock = threading.Lock()
        self.card: ModelCard | None = None
        self._clf: Int8Classifier | None = None
        self.error: str | None = None
        self.reload()

    def reload(self) -> None:
        """(Re)read the card and model; a broken model leaves the service up with ``error`` set."""
        with self._lock:
            try:
                card = load_card(self.card_path)
                arena = (card.arena_bytes + 16384) if card.arena_bytes else None
                clf = Int8Classifier(card.read_model(), name=str(card.model_path), arena_size=arena)
                if clf.num_classes != len(card.classes):
                    raise ModelError(
                        f"{card.model_path} has {clf.num_classes} outputs but its card lists "
                        f"{len(card.classes)} classes"
                    )
            except (ModelError, DataError) as exc:
                self.card, self._clf, self.error = None, None, str(exc)
                return
            self.card, self._clf, self.error = card, clf, None

    def require(self) -> tuple[ModelCard, Int8Classifier]:
        if self.card is None or self._clf is None:
            raise ModelError(f"no model loaded: {self.error}")
        return self.card, self._clf

    def classify_image(self, image: U8Image, name: str = "upload") -> Prediction:
        with self._lock:
            card, clf = self.require()
            h, w = card.input.height, card.input.width
            seen = fit_resize(image, h, w, card.preprocess.fit)
            x = to_int8(seen, clf.input_quant.scale, clf.input_quant.zero_point, card.preprocess.range)
            probs = clf.predict(x).astype(np.float32)
        order = sorted(range(len(probs)), key=lambda i: (-float(probs[i]), i))  # ties -> lower index, as the device
        top = [(card.classes[i], float(probs[i])) for i in order[:3]]
        best = order[0]
        label = card.classes[best]
        conf = float(probs[best])
        bin_name = card.bin_for(label)
        return Prediction(
            name=name,
            label=label,
            class_id=best,
            confidence=conf,
            top=top,
            bin=bin_name,
            line_bin=bin_name if conf >= self.threshold else REJECT_BIN,
            biodegradable=card.biodegradable.get(label),
            model_input_uri=png_data_uri(seen),
            model_id=card.model_id,
        )

    def classify_bytes(self, data: bytes, name: str = "upload") -> Prediction:
        return self.classify_image(decode_upload(data, name), name)
