"""The TFLM runtime wrapper on the shipped model: loading, refusing broken files, arena."""

from __future__ import annotations

import numpy as np
import pytest

from sortcam.card import load_card
from sortcam.errors import ModelError
from sortcam.preprocess import load_image, preprocess_int8
from sortcam.runtime import Int8Classifier, measure_arena


def test_shipped_model_runs_and_matches_its_card() -> None:
    card = load_card()
    clf = Int8Classifier(card.model_path)
    assert clf.input_shape == (1, card.input.height, card.input.width, 3)
    assert clf.num_classes == len(card.classes)
    photo = sorted((card.model_path.parent.parent / "sim" / "samples").rglob("*.jpg"))[0]
    x = preprocess_int8(load_image(photo), card.input.height, card.input.width,
                        clf.input_quant.scale, clf.input_quant.zero_point, card.preprocess.fit)
    probs = clf.predict(x)
    assert probs.shape == (len(card.classes),)
    assert abs(float(probs.sum()) - 1.0) < 0.05  # softmax output, dequantised


def test_arena_measured_fits_the_card() -> None:
    card = load_card()
    used = measure_arena(card.model_path.read_bytes())
    assert 0 < used <= card.arena_bytes


@pytest.mark.parametrize("cut", [8, 100, 5000])
def test_truncated_model_is_a_model_error(cut: int) -> None:
    data = load_card().model_path.read_bytes()[:cut]
    with pytest.raises(ModelError):
        Int8Classifier(data)


def test_non_tflite_bytes_are_refused() -> None:
    with pytest.raises(ModelError, match="not a TFLite flatbuffer"):
        Int8Classifier(np.zeros(64, np.uint8).tobytes())
