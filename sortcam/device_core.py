"""The device logic of the ESP32-CAM, in Python: the twin of the firmware's portable core.

The firmware's C++ core (``firmware/lib/sortcam_core``) and this module implement the
same decision state machine and message encoding, line for line; golden vectors in
``tests/data/golden`` (written by ``sortcam.tools.golden``) prove they agree bit for bit.
The simulator's device twin runs this module, so the desktop line behaves like the chip.

Owned by the firmware engineer. All arithmetic is integer or float32 so that NumPy and
C++ (IEEE single precision, no fused multiply-add) give identical results.

Decision, per frame (``ItemDetector.on_frame``):

* **presence** (``continuous`` trigger only): the sum over every byte of the model-sized
  RGB image of ``|pixel - background|`` is compared, in integers, against
  ``change_threshold * H * W * 3``: the item is present while the mean absolute
  difference is strictly greater than ``change_threshold`` (0..255). The first frame,
  or ``set_background``, is the empty belt.
* **arming**: in ``continuous`` mode an absent-to-present change arms a burst; in every
  mode ``trigger()`` (beam-break edge on the GPIO, ``capture`` command) arms one.
* **vote**: a frame votes for its top-1 class (highest int8 score, ties to the lower
  index) when that class's probability ``float32(q - zp) * float32(scale)`` is at least
  ``float32(threshold)``. The streak counts consecutive votes for one class; a frame
  that does not vote, or votes for another class, restarts it.
* **emit**: when the streak reaches ``stable_frames``, the item is the streak's class,
  its probabilities the mean over the streak's frames. Otherwise, after ``max_frames``
  frames in the burst (or when a presence-armed item leaves the view early), the item is
  the class with the highest summed score over all frames of the burst, probabilities
  the burst mean. Low-confidence items are therefore still published (the host rejects
  them with ``low_confidence``): nothing on the belt goes unreported.
* **re-arm**: after an emit, a ``continuous`` detector waits for an absent frame; a
  triggered burst simply ends.

Mean probability of class ``c`` over ``n`` frames: ``float32(float32(S_c) *
float32(scale)) / float32(n)`` clamped to 0..1, where ``S_c`` is the int32 sum of
``q_c - zero_point``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sortcam import mqtt_contract
from sortcam.errors import ConfigError, DataError

TOP_K = 3
"""Entries in ``Item.top`` (fewer only when the model has fewer classes)."""

FW_VERSION = "0.1.0"
"""Firmware version string reported in ``status.fw`` (mirrors ``kFirmwareVersion``)."""


@dataclass
class DecisionConfig:
    """Tunables of the decision state machine (also settable over MQTT ``set``).

    ``threshold``: minimum top-1 probability (0..1) for a frame to vote.
    ``stable_frames``: consecutive votes for one class that decide an item (>= 1).
    ``max_frames``: frames in a burst before the summed-score fallback decides (>= 1).
    ``change_threshold``: mean absolute pixel difference (0..255) from the background
    above which an item is present (continuous trigger).
    ``trigger``: ``continuous``, ``gpio`` or ``command``.
    """

    threshold: float = 0.6
    stable_frames: int = 3
    max_frames: int = 10
    change_threshold: int = 12
    trigger: str = "continuous"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first out-of-range field."""
        if not 0.0 <= float(self.threshold) <= 1.0:
            raise ConfigError(f"threshold must be in 0..1, got {self.threshold}")
        if not 1 <= int(self.stable_frames) <= 255:
            raise ConfigError(f"stable_frames must be in 1..255, got {self.stable_frames}")
        if not 1 <= int(self.max_frames) <= 255:
            raise ConfigError(f"max_frames must be in 1..255, got {self.max_frames}")
        if not 0 <= int(self.change_threshold) <= 255:
            raise ConfigError(f"change_threshold must be in 0..255, got {self.change_threshold}")
        if self.trigger not in mqtt_contract.TRIGGERS:
            raise ConfigError(f"trigger must be one of {', '.join(mqtt_contract.TRIGGERS)}, got {self.trigger!r}")


@dataclass(frozen=True)
class Item:
    """One decided item: top-1 class, its probability, the top-3 and the frames it took."""

    class_id: int
    confidence: np.float32
    top: list[tuple[int, np.float32]]
    frames: int
    stable: bool = True
    """False when the summed-score fallback decided (no stable streak)."""


# States of the detector (same numbering as sortcam::DetectorState in C++).
IDLE = 0
"""Waiting: for a present frame (continuous) or for ``trigger()``."""
ARMED = 1
"""Collecting frames of one item."""
WAIT_ABSENT = 2
"""Continuous mode, item decided: waiting for the belt to be empty again."""


def scene_changed(image_u8: npt.NDArray[np.uint8], background: npt.NDArray[np.uint8], change_threshold: int) -> bool:
    """True when the mean absolute difference is strictly above ``change_threshold`` (integer test)."""
    if image_u8.shape != background.shape:
        raise DataError(f"frame shape {image_u8.shape} differs from background {background.shape}")
    diff = int(np.abs(image_u8.astype(np.int32) - background.astype(np.int32)).sum())
    return diff > int(change_threshold) * int(image_u8.size)


def top1(scores_q: npt.NDArray[np.int8]) -> int:
    """Index of the highest score, ties to the lower index (``np.argmax`` semantics)."""
    return int(np.argmax(scores_q))


class ItemDetector:
    """The decision state machine (see the module doc). One instance per camera."""

    def __init__(
        self,
        config: DecisionConfig,
        num_classes: int,
        output_zero_point: int,
        output_scale: float,
    ) -> None:
        if not 1 <= num_classes <= 32:
            raise ConfigError(f"num_classes must be in 1..32, got {num_classes}")
        config.validate()
        self.config = config
        self.num_classes = int(num_classes)
        self.zero_point = int(output_zero_point)
        self.scale = np.float32(output_scale)
        self.state = IDLE
        self.background: npt.NDArray[np.uint8] | None = None
        self._triggered = False
        self._reset_burst()

    # --- inputs ----------------------------------------------------------------------

    def set_background(self, image_u8: npt.NDArray[np.uint8]) -> None:
        """Take ``image_u8`` (model-sized RGB) as the empty belt."""
        self.background = np.array(image_u8, dtype=np.uint8, copy=True)

    def trigger(self) -> None:
        """A beam-break edge or a ``capture`` command: start a burst unless one is running."""
        if self.state != ARMED:
            self._arm(triggered=True)

    def set_threshold(self, threshold: float) -> None:
        self.config.threshold = float(threshold)
        self.config.validate()

    def set_trigger(self, trigger: str) -> None:
        """Change trigger mode; a running burst is dropped and the detector goes idle."""
        self.config.trigger = trigger
        self.config.validate()
        self.state = IDLE
        self._reset_burst()

    def on_frame(self, image_u8: npt.NDArray[np.uint8], scores_q: npt.NDArray[np.int8]) -> Item | None:
        """Feed one frame (the model-sized uint8 RGB image and the int8 output); maybe an item."""
        scores = np.asarray(scores_q, dtype=np.int8).reshape(-1)
        if scores.size != self.num_classes:
            raise DataError(f"expected {self.num_classes} scores, got {scores.size}")
        present = False
        if self.config.trigger == "continuous":
            if self.background is None:
                self.set_background(image_u8)
                return None
            present = scene_changed(image_u8, self.background, self.config.change_threshold)
            if self.state == WAIT_ABSENT:
                if not present:
                    self.state = IDLE
                return None
            if self.state == IDLE:
                if not present:
                    return None
                self._arm(triggered=False)
            elif not present and not self._triggered:
                # The item left before a stable label: decide on what was seen, and since
                # the belt is already empty, go straight back to waiting for the next one.
                item = self._finish(stable=False)
                self.state = IDLE
                return item
        elif self.state != ARMED:
            return None
        return self._add(scores)

    # --- internals -------------------------------------------------------------------

    def _reset_burst(self) -> None:
        self.frames = 0
        self.burst_sum = np.zeros(self.num_classes, dtype=np.int32)
        self.streak_len = 0
        self.streak_class = -1
        self.streak_sum = np.zeros(self.num_classes, dtype=np.int32)

    def _arm(self, triggered: bool) -> None:
        self.state = ARMED
        self._triggered = triggered
        self._reset_burst()

    def _prob(self, centred: int) -> np.float32:
        return np.float32(np.float32(centred) * self.scale)

    def _add(self, scores: npt.NDArray[np.int8]) -> Item | None:
        centred = scores.astype(np.int32) - np.int32(self.zero_point)
        self.frames += 1
        self.burst_sum += centred
        best = top1(scores)
        if self._prob(int(centred[best])) >= np.float32(self.config.threshold):
            if self.streak_len > 0 and self.streak_class == best:
                self.streak_len += 1
                self.streak_sum += centred
            else:
                self.streak_len = 1
                self.streak_class = best
                self.streak_sum = centred.copy()
        else:
            self.streak_len = 0
            self.streak_class = -1
            self.streak_sum[:] = 0
        if self.streak_len >= self.config.stable_frames:
            return self._finish(stable=True)
        if self.frames >= self.config.max_frames:
            return self._finish(stable=False)
        return None

    def _finish(self, stable: bool) -> Item:
        sums, n = (self.streak_sum, self.streak_len) if stable else (self.burst_sum, self.frames)
        item = item_from_sums(sums, n, self.scale, stable, self.frames)
        # Continuous mode never re-arms on the item just decided (triggered or not).
        self.state = WAIT_ABSENT if self.config.trigger == "continuous" else IDLE
        self._triggered = False
        self._reset_burst()
        return item


def mean_prob(sum_centred: int, n: int, scale: np.float32) -> np.float32:
    """Mean probability from an int32 sum of ``q - zero_point`` over ``n`` frames (float32)."""
    p = np.float32(np.float32(np.float32(sum_centred) * np.float32(scale)) / np.float32(n))
    return np.float32(min(max(p, np.float32(0.0)), np.float32(1.0)))


def item_from_sums(sums: npt.NDArray[np.int32], n: int, scale: np.float32, stable: bool, frames: int) -> Item:
    """Top-3 (ties to the lower index) and the mean probabilities of an ``n``-frame sum."""
    order = sorted(range(len(sums)), key=lambda c: (-int(sums[c]), c))[:TOP_K]
    top = [(c, mean_prob(int(sums[c]), n, scale)) for c in order]
    return Item(class_id=top[0][0], confidence=top[0][1], top=top, frames=frames, stable=stable)


# --- identity and payloads ---------------------------------------------------------------


def new_boot_id() -> str:
    """A random boot id: 8 lowercase hex characters (32 random bits, as the chip's RNG gives)."""
    return secrets.token_hex(4)


@dataclass
class Sequencer:
    """``boot`` id and ``seq`` numbering of one boot: ``seq`` starts at 0 and adds 1 per item."""

    boot: str = field(default_factory=new_boot_id)
    seq: int = 0

    def next(self) -> int:
        """The ``seq`` of the next item (0 for the first), wrapping at 2^32 like the chip's uint32."""
        value = self.seq
        self.seq = (self.seq + 1) & 0xFFFFFFFF
        return value


def classification_payload(
    *,
    device: str,
    boot: str,
    seq: int,
    item: Item,
    labels: list[str],
    latency_ms: int,
    model: str,
) -> bytes:
    """The classification bytes the firmware publishes for ``item``."""
    return mqtt_contract.encode_classification(
        device=device,
        boot=boot,
        seq=seq,
        label=labels[item.class_id],
        class_id=item.class_id,
        confidence=float(item.confidence),
        top=[(labels[c], float(p)) for c, p in item.top],
        latency_ms=int(latency_ms),
        model=model,
    )


@dataclass
class DeviceStatus:
    """What the device reports in its retained ``status`` (fields beyond DESIGN are additive)."""

    device: str
    model: str
    uptime_s: int = 0
    free_heap: int = 0
    rssi: int = 0
    fps: float = 0.0
    arena_used: int = 0
    invoke_ms: int = 0
    dropped: int = 0
    rejected_cmds: int = 0
    trigger: str = "continuous"
    threshold: float = 0.6
    fw: str = FW_VERSION


def encode_status(status: DeviceStatus) -> bytes:
    """Online status payload, byte for byte what the firmware writes.

    ``fps`` and ``threshold`` are written with 2 and 4 decimals (float32 values, ``%.2f``,
    ``%.4f``); everything else is an integer or a string.
    """
    s = status
    fps = float(np.float32(s.fps))
    thr = float(np.float32(s.threshold))
    js = mqtt_contract.json_string
    text = (
        f'{{"v":{mqtt_contract.VERSION},"device":{js(s.device)},"state":"online","fw":{js(s.fw)},'
        f'"model":{js(s.model)},"uptime_s":{int(s.uptime_s)},"free_heap":{int(s.free_heap)},'
        f'"rssi":{int(s.rssi)},"fps":{fps:.2f},"arena_used":{int(s.arena_used)},'
        f'"invoke_ms":{int(s.invoke_ms)},"dropped":{int(s.dropped)},"rejected_cmds":{int(s.rejected_cmds)},'
        f'"trigger":{js(s.trigger)},"threshold":{thr:.4f}}}'
    )
    return text.encode("utf-8")


# --- camera frames -------------------------------------------------------------------------


def rgb565_to_rgb888(frame: bytes | npt.NDArray[np.uint8], height: int, width: int) -> npt.NDArray[np.uint8]:
    """An esp32-camera RGB565 frame (2 bytes a pixel, high byte first) to ``(H, W, 3)`` RGB.

    5- and 6-bit channels widen by repeating their top bits (``r << 3 | r >> 2``), so
    white stays 255 and black 0; the C++ core does the same per sampled pixel.
    """
    raw = np.frombuffer(bytes(frame), dtype=np.uint8)
    if raw.size != height * width * 2:
        raise DataError(f"RGB565 frame of {raw.size} bytes, expected {height * width * 2} for {width}x{height}")
    px = (raw[0::2].astype(np.uint16) << 8) | raw[1::2].astype(np.uint16)
    r5 = (px >> 11) & 0x1F
    g6 = (px >> 5) & 0x3F
    b5 = px & 0x1F
    rgb = np.stack([(r5 << 3) | (r5 >> 2), (g6 << 2) | (g6 >> 4), (b5 << 3) | (b5 >> 2)], axis=-1)
    return rgb.astype(np.uint8).reshape(height, width, 3)


def rgb888_to_rgb565(image: npt.NDArray[np.uint8]) -> bytes:
    """``(H, W, 3)`` RGB to an RGB565 frame as the camera sends it (high byte first)."""
    img = np.asarray(image, dtype=np.uint16)
    px = ((img[..., 0] >> 3) << 11) | ((img[..., 1] >> 2) << 5) | (img[..., 2] >> 3)
    out = np.empty(px.shape + (2,), dtype=np.uint8)
    out[..., 0] = px >> 8
    out[..., 1] = px & 0xFF
    return out.tobytes()
