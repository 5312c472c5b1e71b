"""The device twin: an ESP32-CAM on the desktop.

It runs what the chip runs, in the same order, with the same code where the code is
shared: :mod:`sortcam.preprocess` (crop, fixed-point resize, int8 lookup table built
from the input tensor's own scale and zero point), the int8 model in the TFLM runtime
(:class:`sortcam.runtime.Int8Classifier`, the chip's reference kernels), and the
firmware's decision state machine, sequencer and payload encoders from
:mod:`sortcam.device_core` (proven bit-identical to the C++ core by the golden vectors).
On MQTT it is a device like any other (DESIGN.md, "MQTT contract"):

- ``<root>/<device>/classification``, QoS 1, one per item, ``boot`` + ``seq`` numbering;
- ``<root>/<device>/status``, retained, ``online`` at connect and every
  ``status_interval_s``, and the Last Will ``offline`` (also sent on a clean stop);
- ``<root>/<device>/cmd``: ``capture``, ``set`` (threshold, trigger, interval_ms),
  ``reboot`` (new boot id, ``seq`` back to 0); anything else is rejected, logged and
  counted in ``status.rejected_cmds``;
- ``<root>/<device>/sample`` (console extension): the frame of a low-confidence item as
  JPEG, rate-limited; and, while a collector asks for them (``set`` with ``collect_for_s``,
  ``sortcam collect``), the full camera frame every ``collect_every_ms`` without a label;
- ``<root>/model`` (console extension): a retained announcement of a promoted model;
  the twin reloads when its sha256 differs from the one it runs.

A folder source plays each image as one item on the belt (``continuous`` trigger): an
empty-belt frame, then the image frame after frame until the detector decides (or
``max_frames`` + 1 frames), then the empty belt again; item starts are paced at ``rate``
items per second. Identical consecutive frames give identical model outputs, so by
default the twin reuses the output of an identical input instead of invoking again
(``reuse_identical_frames``; the result is the same bytes, the desktop just saves CPU).
``latency_ms`` is measured from the capture of the frame that armed the item's burst to
the moment the classification is handed to the MQTT client.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sortcam import device_core as dc
from sortcam import mqtt_contract as mc
from sortcam.card import ModelCard, load_card
from sortcam.errors import (
    ContractError,
    DataError,
    ModelError,
    SortcamError,
)
from sortcam.frames import encode_jpeg
from sortcam.preprocess import U8Image, fit_resize, int8_lut
from sortcam.runtime import Int8Classifier
from sortcam.sim.sources import SourceItem, VideoFrames, list_folder, read_item, source_kind
from sortcam.sim.twin_link import CONNECT_TIMEOUT_S, TwinLink

log = logging.getLogger(__name__)

BELT_RGB: tuple[int, int, int] = (46, 48, 52)
"""Colour of the empty belt in the twin's synthetic background frame (a dark rubber belt).
TrashNet photos are taken on white card; against this belt every item is clearly present."""
STATUS_INTERVAL_S = 10.0
SIM_FREE_HEAP = 4 * 1024 * 1024
"""``free_heap`` the twin reports: it has no heap to run out of; a PSRAM-sized constant."""
SAMPLE_MAX_SIDE = 320
"""Longest side (pixels) of a sample frame's JPEG."""


@dataclass
class TwinItem:
    """One item the twin published (its record, for the demo's routing score)."""

    boot: str
    seq: int
    source: str
    truth: str | None
    label: str
    class_id: int
    confidence: float
    top: list[tuple[str, float]]
    latency_ms: int
    frames: int
    stable: bool
    published_at: float
    """``time.time()`` seconds when the message was handed to the MQTT client."""
    published_mono: float = 0.0
    """The same moment on ``time.monotonic()`` (to compare with the sorter's drop times)."""


ItemCallback = Callable[[TwinItem], None]


@dataclass
class TwinStats:
    frames: int = 0
    invokes: int = 0
    items: int = 0
    undetected: int = 0
    """Folder items the detector never reported (would be lost on a real line; logged)."""
    rejected_cmds: int = 0
    samples: int = 0
    collected: int = 0
    """Full frames published for a collector (``sample`` messages without a label)."""
    reboots: int = 0
    model_reloads: int = 0
    undetected_sources: list[str] = field(default_factory=list)


def belt_frame(height: int, width: int) -> U8Image:
    """The synthetic empty-belt frame, ``(height, width, 3)`` uint8."""
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[:] = BELT_RGB
    return frame


def camera_to_model(
    frame: U8Image, height: int, width: int, fit: str, lut: npt.NDArray[np.int8], rgb565: bool = False
) -> tuple[U8Image, npt.NDArray[np.int8]]:
    """The twin's frame path: optional RGB565 round trip (the sensor's colour depth), then
    :func:`sortcam.preprocess.fit_resize` and the int8 table. Returns ``(small_u8, x_int8)``."""
    if rgb565:
        frame = dc.rgb565_to_rgb888(dc.rgb888_to_rgb565(frame), frame.shape[0], frame.shape[1])
    small = fit_resize(frame, height, width, fit)
    return small, lut[small]


class DeviceTwin:
    """One simulated ESP32-CAM. Library first: the CLI and the demo drive it.

    ``card`` is the model card (``None``: the shipped model). ``config`` holds the
    decision tunables (defaults as the firmware's). ``on_item`` is called from the
    twin's thread for every published item. ``rgb565`` passes every frame through the
    camera's 16-bit colour format first, as the OV2640 delivers it.
    """

    def __init__(
        self,
        device: str,
        card: ModelCard | None = None,
        config: dc.DecisionConfig | None = None,
        root: str = mc.DEFAULT_ROOT,
        on_item: ItemCallback | None = None,
        rgb565: bool = False,
        reuse_identical_frames: bool = True,
        status_interval_s: float = STATUS_INTERVAL_S,
        samples: bool = True,
    ) -> None:
        self.device = mc.check_device_id(device)
        self.root = mc.check_root(root)
        self.config = config or dc.DecisionConfig()
        self.on_item = on_item
        self.rgb565 = rgb565
        self.reuse_identical_frames = reuse_identical_frames
        self.status_interval_s = status_interval_s
        self.samples_enabled = samples
        self.stats = TwinStats()
        self.records: dict[tuple[str, int], TwinItem] = {}
        """``(boot, seq)`` -> what was published, with the source file and its true class."""
        self.interval_ms = 0
        """Minimum time between frames (``set interval_ms``); 0 = as fast as the source."""
        self._load_model(card or load_card(None))
        self.sequencer = dc.Sequencer()
        self._started = time.monotonic()
        self.link = TwinLink(self.device, self.root, self._on_online)
        self._cmds = self.link.commands
        self._stop = threading.Event()
        self._last_status = 0.0
        self._fps = 0.0
        self._fps_window: list[float] = []
        self._sample_limiter = mc.SampleRateLimiter()
        self._arm_capture_t = 0.0
        self._capture_requests = 0
        self._collect_until = 0.0
        """``time.monotonic()`` until which full frames go to a collector (0: not collecting)."""
        self._collect_every_s = mc.COLLECT_EVERY_DEFAULT_MS / 1000.0
        self._collect_next = 0.0

    # --- model ------------------------------------------------------------------------

    def _load_model(self, card: ModelCard) -> None:
        """Run ``card``'s model; ``model`` in payloads is the hash of its bytes, never the card's claim."""
        clf = Int8Classifier(card.read_model(), name=str(card.model_path))
        if clf.num_classes != len(card.classes):
            raise ModelError(
                f"model {card.model_path} has {clf.num_classes} outputs, card lists {len(card.classes)} classes"
            )
        h, w = clf.input_shape[1], clf.input_shape[2]
        if (h, w) != (card.input.height, card.input.width):
            raise ModelError(f"model input {w}x{h} differs from the card's {card.input.width}x{card.input.height}")
        # The arena the runtime really uses for this model, measured once like the firmware's
        # interpreter->arena_used_bytes() (after a first invoke); reported in status.
        try:
            clf.invoke_int8(np.zeros(clf.input_shape, np.int8))
            self.arena_used = clf.arena_used_bytes()
        except ModelError as exc:
            log.warning("twin %s: cannot measure the arena (%s); reporting the card's", self.device, exc)
            self.arena_used = card.arena_bytes
        self.card = card
        self.classifier = clf
        self.model_id = card.model_id
        self.lut = int8_lut(clf.input_quant.scale, clf.input_quant.zero_point, card.preprocess.range)
        self.height, self.width = h, w
        self.detector = self._new_detector()
        self.background_small = belt_frame(h, w)
        self.detector.set_background(self.background_small)
        self._cache: dict[bytes, npt.NDArray[np.int8]] = {}
        self._invoke_ms = 0

    def _new_detector(self) -> dc.ItemDetector:
        q = self.classifier.output_quant
        return dc.ItemDetector(self.config, self.classifier.num_classes, q.zero_point, q.scale)

    # --- one frame --------------------------------------------------------------------

    def model_input(self, frame: U8Image) -> tuple[U8Image, npt.NDArray[np.int8]]:
        """The model-sized uint8 image and its int8 input tensor for a camera frame."""
        return camera_to_model(frame, self.height, self.width, self.card.preprocess.fit, self.lut, self.rgb565)

    def scores(self, x: npt.NDArray[np.int8]) -> npt.NDArray[np.int8]:
        """int8 model output for the int8 input ``x`` (reusing the last one for identical input)."""
        key = x.tobytes() if self.reuse_identical_frames else None
        if key is not None and key in self._cache:
            hit = self._cache[key] = self._cache.pop(key)  # most recently used goes last
            return hit
        t0 = time.perf_counter()
        out = self.classifier.invoke_int8(x)
        self._invoke_ms = int((time.perf_counter() - t0) * 1000)
        self.stats.invokes += 1
        if key is not None:
            # two entries: the empty belt and the item in view
            if len(self._cache) >= 2:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = out
        return out

    def process_frame(self, frame: U8Image, source: str = "", truth: str | None = None) -> TwinItem | None:
        """Capture -> preprocess -> TFLM -> decide; publishes and returns the item when one is decided."""
        captured = time.monotonic()
        small, x = self.model_input(frame)
        return self._decide(small, self.scores(x), captured, frame, source, truth)

    def process_small(
        self, small: U8Image, captured: float, source: str = "", truth: str | None = None
    ) -> TwinItem | None:
        """Like :meth:`process_frame` for a frame already at model size (the empty belt)."""
        return self._decide(small, self.scores(self.lut[small]), captured, None, source, truth)

    def _decide(
        self,
        small: U8Image,
        scores: npt.NDArray[np.int8],
        captured: float,
        frame: U8Image | None,
        source: str,
        truth: str | None,
    ) -> TwinItem | None:
        self.stats.frames += 1
        self._tick_fps(captured)
        if frame is not None:
            self._collect_frame(frame, captured)
        was_armed = self.detector.state == dc.ARMED
        item = self.detector.on_frame(small, scores)
        if not was_armed and (self.detector.state == dc.ARMED or item is not None):
            self._arm_capture_t = captured
        if item is None:
            return None
        return self._publish_item(item, frame, source, truth)

    def _tick_fps(self, now: float) -> None:
        self._fps_window.append(now)
        cutoff = now - 2.0
        while self._fps_window and self._fps_window[0] < cutoff:
            self._fps_window.pop(0)
        span = self._fps_window[-1] - self._fps_window[0]
        self._fps = (len(self._fps_window) - 1) / span if span > 0 else 0.0

    def _publish_item(self, item: dc.Item, frame: U8Image | None, source: str, truth: str | None) -> TwinItem:
        labels = self.card.classes
        seq = self.sequencer.next()
        boot = self.sequencer.boot
        latency_ms = min(int(round((time.monotonic() - self._arm_capture_t) * 1000)), mc.LATENCY_MAX_MS)
        payload = dc.classification_payload(
            device=self.device, boot=boot, seq=seq, item=item, labels=labels, latency_ms=latency_ms, model=self.model_id
        )
        self._publish(mc.classification_topic(self.root, self.device), payload, retain=False)
        record = TwinItem(
            boot=boot,
            seq=seq,
            source=source,
            truth=truth,
            label=labels[item.class_id],
            class_id=item.class_id,
            confidence=float(item.confidence),
            top=[(labels[c], float(p)) for c, p in item.top],
            latency_ms=latency_ms,
            frames=item.frames,
            stable=item.stable,
            published_at=time.time(),
            published_mono=time.monotonic(),
        )
        self.records[(boot, seq)] = record
        self.stats.items += 1
        if frame is not None and self.samples_enabled and record.confidence < self.config.threshold:
            self._publish_sample(record, frame)
        if self.on_item is not None:
            try:
                self.on_item(record)
            except Exception:  # a viewer's bug must not stop the camera
                log.exception("twin: on_item callback failed")
        return record

    def _publish_sample(self, record: TwinItem, frame: U8Image) -> None:
        if not self._sample_limiter.allow(time.monotonic()):
            return
        from PIL import Image

        img = Image.fromarray(frame)
        img.thumbnail((SAMPLE_MAX_SIDE, SAMPLE_MAX_SIDE))
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=80)
        try:
            payload = mc.encode_sample(
                device=self.device,
                boot=record.boot,
                seq=record.seq,
                jpeg=buf.getvalue(),
                label=record.label,
                confidence=record.confidence,
                width=img.width,
                height=img.height,
            )
        except ContractError as exc:
            log.warning("twin: sample for seq %d not sent: %s", record.seq, exc)
            return
        self._publish(mc.sample_topic(self.root, self.device), payload, retain=False)
        self.stats.samples += 1

    def _collect_frame(self, frame: U8Image, captured: float) -> None:
        """Publish ``frame`` for a collector when one asked for frames and the next one is due."""
        if captured >= self._collect_until or captured < self._collect_next:
            return
        self._collect_next = captured + self._collect_every_s
        try:
            jpeg, width, height = encode_jpeg(frame, mc.COLLECT_MAX_SIDE, mc.SAMPLE_JPEG_MAX)
            payload = mc.encode_sample(
                device=self.device,
                boot=self.sequencer.boot,
                seq=self.sequencer.next(),
                jpeg=jpeg,
                width=width,
                height=height,
            )
        except SortcamError as exc:
            log.warning("twin %s: collected frame not sent: %s", self.device, exc)
            return
        self._publish(mc.sample_topic(self.root, self.device), payload, retain=False)
        self.stats.collected += 1

    # --- one folder item ----------------------------------------------------------------

    def play_item(self, image: U8Image, source: str = "", truth: str | None = None) -> TwinItem | None:
        """One item on the belt: empty belt, the item until decided, empty belt again.

        In ``gpio`` mode the beam-break edge fires as the item arrives; in ``command``
        mode the caller waits for a ``capture`` first (see :meth:`run_folder`). Returns
        the published item, or None (logged, counted in ``stats.undetected``).
        """
        got: TwinItem | None = None
        if self.config.trigger == "continuous":
            got = self.process_small(self.background_small, time.monotonic())
        elif self.config.trigger == "gpio":
            self.detector.trigger()
        captured = time.monotonic()
        small, x = self.model_input(image)
        # An item on the belt is always seen through (at most max_frames + 1 frames), even
        # when a stop arrives meanwhile: a stop never leaves half an item unreported.
        for _ in range(self.config.max_frames + 1):
            item = self._decide(small, self.scores(x), captured, image, source, truth)
            self._frame_pause()
            if item is not None:
                got = item
                break
            captured = time.monotonic()
        if self.config.trigger == "continuous":
            # the belt moves the item out of view
            late = self.process_small(self.background_small, time.monotonic(), source, truth)
            got = got or late
        if got is None:
            self.stats.undetected += 1
            self.stats.undetected_sources.append(source)
            log.warning(
                "twin: item %s not detected (mean difference from the belt at most %d?)",
                source or "?",
                self.config.change_threshold,
            )
        return got

    def _frame_pause(self) -> None:
        if self.interval_ms > 0:
            self._stop.wait(self.interval_ms / 1000.0)

    # --- MQTT ---------------------------------------------------------------------------

    def connect(
        self,
        broker_url: str,
        client_id: str | None = None,
        timeout_s: float = CONNECT_TIMEOUT_S,
        ca_file: str | None = None,
    ) -> None:
        """Connect (:class:`~sortcam.sim.twin_link.TwinLink`: Last Will set, ``cmd`` and
        ``<root>/model`` subscribed) and publish ``online``. ``ca_file`` verifies an
        ``mqtts://`` broker; credentials come from the URL or the environment."""
        self.link.connect(broker_url, client_id, timeout_s, ca_file)

    def _on_online(self) -> None:
        self.publish_status()
        log.info("twin %s online (boot %s, model %s)", self.device, self.sequencer.boot, self.model_id)

    def _publish(self, topic: str, payload: bytes, retain: bool) -> None:
        self.link.publish(topic, payload, retain)

    def status(self) -> dc.DeviceStatus:
        return dc.DeviceStatus(
            device=self.device,
            model=self.model_id,
            uptime_s=int(time.monotonic() - self._started),
            free_heap=SIM_FREE_HEAP,
            rssi=0,
            fps=min(self._fps, 999.0),
            arena_used=self.arena_used,
            invoke_ms=self._invoke_ms,
            dropped=self.stats.undetected,
            rejected_cmds=self.stats.rejected_cmds,
            trigger=self.config.trigger,
            threshold=self.config.threshold,
        )

    def publish_status(self) -> None:
        """Publish the retained ``online`` status now."""
        self._last_status = time.monotonic()
        self._publish(mc.status_topic(self.root, self.device), dc.encode_status(self.status()), retain=True)

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every QoS 1 publish so far is acknowledged by the broker."""
        return self.link.flush(timeout_s)

    def close(self) -> None:
        """Clean stop: publish ``offline`` (a clean disconnect does not fire the Will), disconnect."""
        self._stop.set()
        self.link.close()

    def stop(self) -> None:
        """Ask a running :meth:`run_folder`/:meth:`run_video` to return (thread-safe)."""
        self._stop.set()

    # --- commands -----------------------------------------------------------------------

    def handle_pending(self) -> None:
        """Act on the commands received since the last call (called from the camera loop)."""
        while True:
            try:
                topic, payload = self._cmds.get_nowait()
            except queue.Empty:
                break
            try:
                if topic == mc.model_topic(self.root):
                    self._on_model_announcement(payload)
                else:
                    self.apply_command(payload)
            except SortcamError as exc:
                self.stats.rejected_cmds += 1
                log.warning("twin %s: rejected %s: %s", self.device, topic, exc)
                self.publish_status()
        if self.link.up and time.monotonic() - self._last_status >= self.status_interval_s:
            self.publish_status()

    def apply_command(self, payload: bytes) -> str:
        """Validate and apply one ``cmd`` payload; returns the command name.

        Raises :class:`ContractError` (or :class:`ConfigError`) for a malformed command,
        which :meth:`handle_pending` logs and counts.
        """
        cmd = mc.validate_cmd(payload)
        name = str(cmd["cmd"])
        if name == "capture":
            self.detector.trigger()
            self._capture_requests += 1
        elif name == "set":
            if "threshold" in cmd:
                self.detector.set_threshold(float(cmd["threshold"]))
            if "trigger" in cmd:
                self.detector.set_trigger(str(cmd["trigger"]))
                self.detector.set_background(self.background_small)
            if "interval_ms" in cmd:
                self.interval_ms = int(cmd["interval_ms"])
            if "collect_for_s" in cmd:
                self._set_collect(
                    int(cmd.get("collect_every_ms", mc.COLLECT_EVERY_DEFAULT_MS)), int(cmd["collect_for_s"])
                )
            self.publish_status()
        elif name == "reboot":
            self.reboot()
        log.info("twin %s: cmd %s applied", self.device, name)
        return name

    def _set_collect(self, every_ms: int, for_s: int) -> None:
        """Send full frames every ``every_ms`` for ``for_s`` seconds from now (0 stops); a renewal keeps the pace."""
        now = time.monotonic()
        every_s = every_ms / 1000.0
        if now >= self._collect_until or every_s != self._collect_every_s:
            self._collect_next = now  # a new collection sends its first frame at once
        self._collect_every_s = every_s
        self._collect_until = now + for_s if for_s > 0 else 0.0
        log.info(
            "twin %s: %s",
            self.device,
            f"collecting a frame every {every_ms} ms for {for_s} s" if for_s > 0 else "collection stopped",
        )

    def reboot(self) -> None:
        """What a reset does: connection drops (Will: offline), new boot id, seq from 0, online again."""
        self.stats.reboots += 1
        was_up = self.link.up
        self.link.close()  # offline, as the chip's Will would be
        self.sequencer = dc.Sequencer()
        self._started = time.monotonic()
        self._collect_until = 0.0  # a reset forgets a collection; the collector's next renewal restarts it
        self.detector = self._new_detector()
        self.detector.set_background(self.background_small)
        if was_up:
            self.link.connect(self.link.broker_url, ca_file=self.link.ca_file)

    def _on_model_announcement(self, payload: bytes) -> None:
        if not payload:
            return  # retained message cleared
        ann = mc.validate_model_announcement(payload)
        if ann["sha256"] == self.card.sha256:
            return
        card = load_card(ann["card"])
        card.read_model()  # the file's own hash, and a card that disagrees with it is refused
        if card.sha256 != ann["sha256"]:
            raise ContractError(f"announced model {ann['sha256'][:12]} but {card.model_path} is {card.sha256[:12]}")
        self._load_model(card)
        self.stats.model_reloads += 1
        log.info("twin %s: reloaded model %s from %s", self.device, self.model_id, ann["card"])
        self.publish_status()

    # --- whole runs -------------------------------------------------------------------------

    def run_folder(
        self,
        items: Iterable[SourceItem],
        rate: float = 1.0,
        loop: bool = False,
        count: int | None = None,
    ) -> int:
        """Play folder items paced at ``rate`` items per second (0 = as fast as possible).

        ``loop`` repeats the folder; ``count`` stops after that many items. Returns the
        number of items played. In ``command`` trigger mode each item waits for a
        ``capture`` command. Unreadable images are logged and skipped.
        """
        items = list(items)
        if not items:
            raise DataError("no items to play")
        played = 0
        t0 = time.monotonic()
        for item in _cycle(items, loop):
            if self._stop.is_set() or (count is not None and played >= count):
                break
            self.handle_pending()
            if self.config.trigger == "command":
                if not self._wait_capture():
                    break
            elif rate > 0:
                due = t0 + played / rate
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    break
            try:
                image = read_item(item)
            except DataError as exc:
                log.warning("twin: skipping %s", exc)
                continue
            self.play_item(image, item.name, item.truth)
            played += 1
        self.handle_pending()
        return played

    def _wait_capture(self) -> bool:
        while not self._stop.is_set():
            if self._capture_requests > 0:
                self._capture_requests -= 1
                return True
            self.handle_pending()
            if self.config.trigger != "command":
                return True
            self._stop.wait(0.05)
        return False

    def run_video(self, frames: VideoFrames, loop: bool = False, count: int | None = None) -> int:
        """Feed every frame of a video or webcam; items are found by the presence test.

        Frames are paced at the file's frame rate (a live camera paces itself). The
        first frame is the empty belt. ``count`` stops after that many items. Returns
        the number of frames processed.
        """
        n = 0
        first = True
        period = 1.0 / frames.fps if frames.fps > 0 and not frames.live else 0.0
        t0 = time.monotonic()
        while not self._stop.is_set():
            for frame in frames:
                if self._stop.is_set() or (count is not None and self.stats.items >= count):
                    return n
                if period:
                    self._stop.wait(max(0.0, t0 + n * period - time.monotonic()))
                self.handle_pending()
                if first and self.config.trigger == "continuous":
                    small, _ = self.model_input(frame)
                    self.detector.set_background(small)
                    self.background_small = small
                    first = False
                self.process_frame(frame, source=f"{frames.source}#{n}")
                self._frame_pause()
                n += 1
            if not loop or not frames.rewind():
                return n
        return n


def _cycle(items: list[SourceItem], loop: bool) -> Iterator[SourceItem]:
    while True:
        yield from items
        if not loop:
            return


def open_source(source: str, classes: list[str]) -> tuple[str, list[SourceItem] | VideoFrames]:
    """``("folder", items)`` or ``("video", frames)`` for a ``--source`` value."""
    kind = source_kind(source)
    if kind == "folder":
        return kind, list_folder(source, classes)
    return "video", VideoFrames(source)
