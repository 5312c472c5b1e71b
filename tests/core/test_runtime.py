"""The TFLM runtime wrapper on the shipped model: loading, refusing broken files, arena."""

from __future__ import annotations

import os

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
    x = preprocess_int8(
        load_image(photo),
        card.input.height,
        card.input.width,
        clf.input_quant.scale,
        clf.input_quant.zero_point,
        card.preprocess.fit,
    )
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


def test_arena_report_capture_passes_other_output_through(capfd: pytest.CaptureFixture[str]) -> None:
    """Only the allocator's lines are taken; what else reaches fds 1 and 2 meanwhile comes back out."""
    from sortcam.runtime import ALLOCATOR_TAG, capture_native_output, parse_arena_used

    with capture_native_output(keep=lambda line: line.startswith(ALLOCATOR_TAG)) as out:
        os.write(1, b"progress line from another thread\n")
        os.write(2, f"{ALLOCATOR_TAG} Arena allocation total 4096 bytes\n".encode())
        os.write(2, b"a log line on stderr\n")
    assert parse_arena_used(out[0]) == 4096 and "another thread" not in out[0]
    seen = capfd.readouterr()
    assert seen.out == "progress line from another thread\n"
    assert seen.err == "a log line on stderr\n"
