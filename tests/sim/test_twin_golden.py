"""The twin agrees with the firmware's C++ core on the shared golden vectors.

``tests/data/golden`` is written from the Python reference and checked bit for bit by
the C++ core's GoogleTest suite (``tests/firmware``). Here the *twin's own* code paths
run the same inputs: its frame path (:func:`sortcam.sim.twin.camera_to_model`, with the
sensor's RGB565 emulation), its int8 tables, and its decision path (``DeviceTwin``'s
per-frame step, capture command and gpio edge) must give the golden outputs exactly.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from sortcam import device_core as dc
from sortcam.card import ModelCard
from sortcam.preprocess import int8_lut
from sortcam.sim.twin import DeviceTwin, camera_to_model

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
pytestmark = pytest.mark.skipif(not (GOLDEN / "decisions.txt").is_file(), reason="golden vectors not generated")


def f32(bits: str) -> float:
    return float(struct.unpack(">f", bytes.fromhex(bits))[0])


def bits(value: float) -> str:
    return struct.pack(">f", float(np.float32(value))).hex()


def _cases(name: str) -> list[list[str]]:
    if not (GOLDEN / name).is_file():
        return []
    return [ln.split() for ln in (GOLDEN / name).read_text().splitlines() if ln and not ln.startswith("#")]


@pytest.mark.parametrize("case", _cases("preprocess.txt"), ids=lambda c: c[0])
def test_twin_frame_path_matches_golden(case: list[str]) -> None:
    name, frame_file, fmt, w, h, fit, oh, ow, scale_bits, zp, lo, hi, rgb_file, q_file = case
    width, height = int(w), int(h)
    if fmt == "rgb565":
        # The twin gets RGB888 frames and emulates the sensor: the golden 565 frame is the
        # same scene in RGB565, so the twin must land on the same bytes as the chip.
        frame = np.frombuffer((GOLDEN / frame_file.replace(".rgb565.", ".rgb888.")).read_bytes(), np.uint8)
        assert dc.rgb888_to_rgb565(frame.reshape(height, width, 3)) == (GOLDEN / frame_file).read_bytes()
    else:
        frame = np.frombuffer((GOLDEN / frame_file).read_bytes(), np.uint8)
    lut = int8_lut(f32(scale_bits), int(zp), (float(lo), float(hi)))
    small, x = camera_to_model(frame.reshape(height, width, 3), int(oh), int(ow), fit, lut, rgb565=fmt == "rgb565")
    assert small.tobytes() == (GOLDEN / rgb_file).read_bytes()
    if q_file != "-":
        assert x.tobytes() == (GOLDEN / q_file).read_bytes()


@pytest.mark.parametrize("case", _cases("luts.txt"), ids=lambda c: f"{c[0]}_{c[1]}")
def test_twin_int8_tables_match_golden(case: list[str]) -> None:
    scale_bits, zp, lo, hi, table = case
    assert int8_lut(f32(scale_bits), int(zp), (float(lo), float(hi))).tobytes().hex() == table


def _scenarios() -> list[tuple[list[str], list[list[str]]]]:
    out: list[tuple[list[str], list[list[str]]]] = []
    for tokens in _cases("decisions.txt"):
        if tokens[0] == "S":
            out.append((tokens, []))
        elif tokens[0] == "E":
            out[-1][1].append(tokens)
    return out


@pytest.mark.parametrize("scenario", _scenarios(), ids=lambda s: s[0][1])
def test_twin_decisions_match_golden(scenario: tuple[list[str], list[list[str]]], demo_card: ModelCard) -> None:
    head, events = scenario
    _, _, bin_file, n_cls, zp, scale_bits, thr_bits, stable, max_frames, change, trigger = head
    config = dc.DecisionConfig(
        threshold=f32(thr_bits),
        stable_frames=int(stable),
        max_frames=int(max_frames),
        change_threshold=int(change),
        trigger=trigger,
    )
    twin = DeviceTwin("golden", demo_card, config, samples=False)
    # the golden scores come from their own quantisation: give the twin's detector that one
    twin.detector = dc.ItemDetector(config, int(n_cls), int(zp), f32(scale_bits))
    side = 16
    raw = (GOLDEN / bin_file).read_bytes()
    frames = [
        np.frombuffer(raw[i : i + side * side * 3], np.uint8).reshape(side, side, 3)
        for i in range(0, len(raw), side * side * 3)
    ]
    frame_iter = iter(frames)
    emitted = 0
    for ev in events:
        kind, scores_hex, state = ev[1], ev[2], int(ev[3])
        if kind == "trigger":
            if trigger == "command":
                assert twin.apply_command(b'{"cmd":"capture"}') == "capture"
            else:
                twin.detector.trigger()  # the beam-break edge
        elif kind == "background":
            twin.detector.set_background(next(frame_iter))
        else:
            scores = np.frombuffer(bytes.fromhex(scores_hex), np.int8)
            got = twin._decide(next(frame_iter), scores, 0.0, None, "golden", None)
            if len(ev) > 4:
                class_id, conf_bits, n_frames, is_stable, top_n = ev[4:9]
                assert got is not None, f"golden item not emitted at {ev}"
                assert got.class_id == int(class_id) and bits(got.confidence) == conf_bits
                assert got.frames == int(n_frames) and got.stable == bool(int(is_stable))
                pairs = ev[9:]
                expect_top = [(demo_card.classes[int(pairs[i])], pairs[i + 1]) for i in range(0, 2 * int(top_n), 2)]
                assert [(lbl, bits(p)) for lbl, p in got.top] == expect_top
                emitted += 1
            else:
                assert got is None, f"twin emitted an item the golden run did not at {ev}"
        assert twin.detector.state == state, ev
    assert twin.stats.items == emitted > 0
