"""The Python twin of the firmware's decision logic (sortcam.device_core)."""

from __future__ import annotations

import numpy as np
import pytest

from sortcam import device_core as dc
from sortcam import mqtt_contract
from sortcam.errors import ConfigError, DataError

ZP, SCALE = -128, 1.0 / 256.0
EMPTY = np.full((8, 8, 3), 200, dtype=np.uint8)
ITEM = np.full((8, 8, 3), 60, dtype=np.uint8)


def scores(winner: int, p: float = 0.9, n: int = 6) -> np.ndarray:
    """int8 scores with probability ``p`` on ``winner`` and the rest spread evenly."""
    q = np.full(n, ZP, dtype=np.int32)
    q[winner] = round(p / SCALE) + ZP
    rest = (1.0 - p) / (n - 1)
    for c in range(n):
        if c != winner:
            q[c] = round(rest / SCALE) + ZP
    return np.clip(q, -128, 127).astype(np.int8)


def detector(**kw: object) -> dc.ItemDetector:
    return dc.ItemDetector(dc.DecisionConfig(**kw), 6, ZP, SCALE)  # type: ignore[arg-type]


def test_continuous_emits_once_per_item_after_stable_frames() -> None:
    det = detector(stable_frames=3)
    assert det.on_frame(EMPTY, scores(0)) is None  # background
    assert det.on_frame(EMPTY, scores(0)) is None  # still empty
    out = [det.on_frame(ITEM, scores(2)) for _ in range(6)]
    items = [i for i in out if i is not None]
    assert len(items) == 1 and out[2] is not None
    item = items[0]
    assert item.class_id == 2 and item.stable and item.frames == 3
    assert [c for c, _ in item.top][0] == 2 and len(item.top) == 3
    assert isinstance(item.confidence, np.float32)
    # empty again, then a new item arms a new burst
    assert det.on_frame(EMPTY, scores(0)) is None
    assert det.state == dc.IDLE
    nxt = [det.on_frame(ITEM, scores(4)) for _ in range(3)]
    assert nxt[2] is not None and nxt[2].class_id == 4


def test_unstable_item_falls_back_to_summed_scores_after_max_frames() -> None:
    det = detector(stable_frames=3, max_frames=5)
    det.on_frame(EMPTY, scores(0))
    seq = [1, 3, 1, 3, 1]
    out = [det.on_frame(ITEM, scores(c)) for c in seq]
    assert out[:4] == [None] * 4
    item = out[4]
    assert item is not None and not item.stable and item.frames == 5 and item.class_id == 1


def test_low_confidence_frames_do_not_vote_but_item_is_still_reported() -> None:
    det = detector(threshold=0.6, stable_frames=2, max_frames=4)
    det.on_frame(EMPTY, scores(0))
    out = [det.on_frame(ITEM, scores(5, p=0.4)) for _ in range(4)]
    assert out[:3] == [None] * 3 and out[3] is not None
    assert out[3].class_id == 5 and not out[3].stable and out[3].confidence < 0.6


def test_item_leaving_early_is_decided_on_what_was_seen() -> None:
    det = detector(stable_frames=5)
    det.on_frame(EMPTY, scores(0))
    assert det.on_frame(ITEM, scores(3)) is None
    item = det.on_frame(EMPTY, scores(0))
    assert item is not None and item.class_id == 3 and item.frames == 1
    assert det.state == dc.IDLE


def test_small_scene_change_is_not_an_item() -> None:
    det = detector(change_threshold=12)
    det.on_frame(EMPTY, scores(0))
    near = EMPTY.copy()
    near[...] = 212  # mean abs diff exactly 12: not strictly above
    assert det.on_frame(near, scores(1)) is None and det.state == dc.IDLE
    near[0, 0, 0] = 213
    det.on_frame(near, scores(1))
    assert det.state == dc.ARMED


@pytest.mark.parametrize("mode", ["gpio", "command"])
def test_triggered_modes_need_a_trigger(mode: str) -> None:
    det = detector(trigger=mode, stable_frames=2)
    assert all(det.on_frame(ITEM, scores(1)) is None for _ in range(5))
    det.trigger()
    assert det.on_frame(EMPTY, scores(1)) is None  # no presence test in these modes
    item = det.on_frame(EMPTY, scores(1))
    assert item is not None and item.class_id == 1 and det.state == dc.IDLE
    assert det.on_frame(ITEM, scores(1)) is None


def test_ties_go_to_the_lower_class_index() -> None:
    q = np.full(6, -128, dtype=np.int8)
    q[4] = q[1] = 0
    item = dc.item_from_sums(q.astype(np.int32) - ZP, 1, np.float32(SCALE), True, 1)
    assert [c for c, _ in item.top] == [1, 4, 0]


@pytest.mark.parametrize(
    "kw",
    [{"threshold": 1.5}, {"stable_frames": 0}, {"max_frames": 0}, {"change_threshold": 300}, {"trigger": "laser"}],
)
def test_bad_config_is_a_config_error(kw: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        dc.DecisionConfig(**kw)  # type: ignore[arg-type]


def test_wrong_score_count_is_a_data_error() -> None:
    with pytest.raises(DataError):
        detector().on_frame(EMPTY, np.zeros(4, dtype=np.int8))


def test_sequencer_and_payload_validate() -> None:
    seqr = dc.Sequencer()
    assert len(seqr.boot) == 8 and all(c in "0123456789abcdef" for c in seqr.boot)
    assert [seqr.next(), seqr.next()] == [0, 1]
    item = dc.item_from_sums(scores(2).astype(np.int32) - ZP, 1, np.float32(SCALE), True, 1)
    labels = ["cardboard", "glass", "metal", "paper", "plastic", "trash"]
    raw = dc.classification_payload(
        device="cam1", boot=seqr.boot, seq=7, item=item, labels=labels, latency_ms=123, model="0123456789ab"
    )
    d = mqtt_contract.validate_classification(raw, "cam1")
    assert d["label"] == "metal" and d["seq"] == 7 and len(d["top"]) == 3
    assert b'"confidence":0.8984' in raw


def test_status_payload_validates() -> None:
    raw = dc.encode_status(
        dc.DeviceStatus(
            device="cam1",
            model="0123456789ab",
            uptime_s=5,
            free_heap=1000,
            rssi=-60,
            fps=2.5,
            arena_used=300000,
            invoke_ms=800,
        )
    )
    d = mqtt_contract.validate_status(raw, "cam1")
    assert d["state"] == "online" and d["fps"] == 2.5 and d["arena_used"] == 300000


def test_rgb565_round_trip_keeps_extremes_and_byte_order() -> None:
    img = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0]]], dtype=np.uint8)
    raw = dc.rgb888_to_rgb565(img)
    assert raw[4:6] == b"\xf8\x00"  # red, high byte first
    assert np.array_equal(dc.rgb565_to_rgb888(raw, 1, 3), img)
    with pytest.raises(DataError):
        dc.rgb565_to_rgb888(raw[:-1], 1, 3)
