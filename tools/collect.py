"""``sortcam collect``: photos of the user's own belt, as an unlabelled folder the console opens.

Two sources, one folder layout:

- a device on the line (the camera, or the twin on a webcam), over MQTT: the collector
  asks it for a full frame every ``every_s`` seconds (``set`` with ``collect_every_ms`` and
  ``collect_for_s``, :func:`sortcam.mqtt_contract.encode_collect_cmd`), renewing a short
  lease while it runs and stopping it at the end, and stores what arrives on
  ``<root>/<device>/sample`` without a label (:func:`~sortcam.mqtt_contract.is_collected_frame`);
- a desktop webcam or a video file, straight through OpenCV (:class:`sortcam.sim.sources.VideoFrames`).

The folder is a console data folder (:class:`FrameFolder`): ``samples/<device>/<boot>/<seq>.jpg``
and ``console.db``, where each frame is an item flagged for labelling; ``sortcam console
--data DIR`` shows them in its labelling queue, whose labels land in ``DIR/labelled/<class>/``,
a folder ``sortcam train`` reads. Nothing is overwritten: a file is linked into place only
where no file of that name exists (a redelivered frame is counted and skipped). The rate is
bounded by the contract (at most one frame per 2 s), a frame by ``COLLECT_MAX_SIDE`` pixels and
one ``sample`` message's bytes, and the disk by :data:`MIN_FREE_BYTES`: below it, or on
``ENOSPC``, collection stops with a :class:`DataError` saying how many frames were kept.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sortcam import mqtt_contract as mc
from sortcam.device_core import new_boot_id
from sortcam.errors import BrokerError, ContractError, DataError, UsageError
from sortcam.frames import encode_jpeg
from sortcam.mqtt_link import make_client, parse_broker_url

log = logging.getLogger(__name__)

MIN_FREE_BYTES = 64 * 1024 * 1024
"""Collection stops when the folder's disk has less free space than this (64 MiB)."""
LEASE_S = 60
"""Seconds of frames each command asks for; renewed every third of it. A collector that dies
leaves the camera sending for at most this long."""
NO_FRAME_WARN_S = 15.0
"""After this long (or three frame periods, if longer) without a frame, say so once."""
CONNECT_TIMEOUT_S = 10.0


@dataclass
class CollectStats:
    frames: int = 0
    """Frames written."""
    duplicates: int = 0
    """Frames whose file already existed (a redelivery, or a folder reused): kept as they were."""
    refused: int = 0
    """Frames over the size bounds, or not from the device asked."""
    bytes: int = 0


class FrameFolder:
    """``root`` as a console data folder of collected frames (see the module doc).

    Raises :class:`DataError` when ``root`` cannot be a folder or its disk has less than
    ``min_free_bytes`` free.
    """

    def __init__(self, root: Path, min_free_bytes: int = MIN_FREE_BYTES) -> None:
        from sortcam.console.store import Store

        self.root = Path(root)
        self.min_free_bytes = int(min_free_bytes)
        if self.root.exists() and not self.root.is_dir():
            raise DataError(f"--out {self.root} is a file, not a folder")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(f"cannot create {self.root}: {exc.strerror or exc}") from None
        self.stats = CollectStats()
        self.check_space()
        self.store = Store(self.root / "console.db")

    def close(self) -> None:
        self.store.close()

    def check_space(self) -> None:
        free = shutil.disk_usage(self.root).free
        if free < self.min_free_bytes:
            raise DataError(
                f"the disk of {self.root} is full: {free // 2**20} MiB free, collect needs "
                f"{self.min_free_bytes // 2**20} MiB ({self.stats_text()})"
            )

    def stats_text(self) -> str:
        return f"{self.stats.frames} frames written"

    def add(self, device: str, boot: str, seq: int, jpeg: bytes, width: int, height: int) -> Path | None:
        """Write one frame as ``samples/<device>/<boot>/<seq>.jpg``; None when that file already exists.

        Raises :class:`ContractError` for a frame over the bounds (the caller counts and skips it)
        and :class:`DataError` when the disk is full.
        """
        mc.check_device_id(device)
        mc.check_boot_id(boot)
        if not 0 <= seq <= mc.SEQ_MAX:
            raise ContractError(f"seq {seq} outside 0..{mc.SEQ_MAX}")
        if max(width, height) > mc.COLLECT_MAX_SIDE:
            raise ContractError(f"frame of {width}x{height} pixels exceeds {mc.COLLECT_MAX_SIDE} on a side")
        if len(jpeg) > mc.SAMPLE_JPEG_MAX or not jpeg.startswith(b"\xff\xd8"):
            raise ContractError(f"frame of {len(jpeg)} bytes is not a JPEG of at most {mc.SAMPLE_JPEG_MAX} bytes")
        self.check_space()
        rel = Path("samples") / device / boot / f"{seq}.jpg"
        path = self.root / rel
        tmp = path.with_name(f".{seq}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "xb") as f:
                f.write(jpeg)
            try:
                os.link(tmp, path)  # fails where the name exists: never overwrites
            except FileExistsError:
                self.stats.duplicates += 1
                return None
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DataError(f"the disk of {self.root} is full: cannot write {path} ({self.stats_text()})") from None
            raise DataError(f"cannot write {path}: {exc.strerror or exc}") from None
        finally:
            tmp.unlink(missing_ok=True)
        if not self.store.add_frame(device, boot, seq, rel.as_posix()):
            self.stats.duplicates += 1  # known to the store already (its file had been removed)
            return None
        self.stats.frames += 1
        self.stats.bytes += len(jpeg)
        return path


def check_every(every_s: float) -> int:
    """``--every`` seconds as the command's milliseconds; a :class:`UsageError` outside the contract's bounds."""
    lo, hi = mc.COLLECT_EVERY_MIN_MS / 1000, mc.COLLECT_EVERY_MAX_MS / 1000
    if not lo <= every_s <= hi:
        raise UsageError(f"--every {every_s:g}: expected {lo:g}..{hi:g} seconds (at most one frame per {lo:g} s)")
    return round(every_s * 1000)


class MqttCollector:
    """Asks ``device`` for frames over MQTT and writes them into ``folder``.

    :meth:`run` blocks until ``minutes`` have passed (None: until :meth:`stop`), then tells
    the device to stop. Messages arrive on paho's thread and are written on the caller's, so
    a full disk ends :meth:`run` with its :class:`DataError` after the stop command is sent.
    """

    def __init__(
        self,
        broker_url: str,
        device: str,
        folder: FrameFolder,
        *,
        every_s: float = 2.0,
        minutes: float | None = None,
        root: str = mc.DEFAULT_ROOT,
        ca_file: str | None = None,
    ) -> None:
        self.device = mc.check_device_id(device)
        self.root = mc.check_root(root)
        self.folder = folder
        self.every_ms = check_every(every_s)
        if minutes is not None and not 0 < minutes <= 7 * 24 * 60:
            raise UsageError(f"--minutes {minutes:g}: expected more than 0 and at most a week (10080)")
        self.minutes = minutes
        self.broker = parse_broker_url(broker_url)
        self.sample_topic = mc.sample_topic(self.root, device)
        self.status_topic = mc.status_topic(self.root, device)
        self.cmd_topic = mc.cmd_topic(self.root, device)
        self.device_state: str | None = None
        self._frames: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=256)
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._connect_error: str | None = None
        self._client = make_client(self.broker, f"sortcam-collect-{uuid.uuid4().hex[:8]}", ca_file)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message

    def stop(self) -> None:
        """End :meth:`run` (thread-safe; a signal handler may call it)."""
        self._stop.set()

    # paho's thread: never raise, never write files here
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if getattr(reason_code, "is_failure", False):
            self._connect_error = str(reason_code)
        else:
            client.subscribe([(self.sample_topic, mc.QOS), (self.status_topic, mc.QOS)])
        self._connected.set()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            if msg.topic == self.status_topic:
                if msg.payload:
                    self.device_state = str(mc.validate_status(bytes(msg.payload), self.device)["state"])
                return
            sample = mc.validate_sample(bytes(msg.payload), self.device)
            if mc.is_collected_frame(sample):  # a low-confidence item's sample is the console's, not ours
                self._frames.put(sample, timeout=5)
        except ContractError as exc:
            self.folder.stats.refused += 1
            log.warning("collect: refused a message on %s: %s", msg.topic, exc)
        except Exception:  # a bug here must not stop paho's loop
            log.exception("collect: error handling a message on %s", msg.topic)

    def _command(self, for_s: int) -> None:
        info = self._client.publish(self.cmd_topic, mc.encode_collect_cmd(self.every_ms, for_s), qos=mc.QOS)
        try:
            info.wait_for_publish(5.0)
        except (RuntimeError, ValueError) as exc:
            log.warning("collect: command to %s not acknowledged: %s", self.device, exc)

    def run(self) -> CollectStats:
        try:
            self._client.connect(self.broker.host, self.broker.port, keepalive=30)
        except (OSError, ValueError) as exc:
            raise BrokerError(f"cannot reach MQTT broker {self.broker.url}: {exc}") from None
        self._client.loop_start()
        accepted = False
        try:
            accepted = self._connected.wait(CONNECT_TIMEOUT_S) and not self._connect_error
            if not accepted:
                why = self._connect_error or "timeout"
                raise BrokerError(f"MQTT broker {self.broker.url} did not accept the collector: {why}")
            return self._collect()
        finally:
            try:
                if accepted:
                    self._command(0)  # stop the device sending, whatever ended the run
            finally:
                self._client.disconnect()
                self._client.loop_stop()

    def _collect(self) -> CollectStats:
        stats = self.folder.stats
        started = time.monotonic()
        end = started + self.minutes * 60 if self.minutes is not None else None
        renew_at = 0.0
        warned = False
        quiet_s = max(NO_FRAME_WARN_S, 3 * self.every_ms / 1000)
        while not self._stop.is_set():
            now = time.monotonic()
            if end is not None and now >= end:
                break
            if now >= renew_at:
                lease = LEASE_S if end is None else max(1, min(LEASE_S, int(end - now + 0.999)))
                self._command(lease)
                renew_at = now + LEASE_S / 3
            if not warned and stats.frames + stats.duplicates == 0 and now - started > quiet_s:
                warned = True
                state = f"its status is {self.device_state!r}" if self.device_state else "it has published no status"
                log.warning(
                    "collect: no frame from %s in %.0f s (%s; does its firmware know collect_for_s?)",
                    self.device,
                    now - started,
                    state,
                )
            try:
                sample = self._frames.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                path = self.folder.add(
                    sample["device"],
                    sample["boot"],
                    int(sample["seq"]),
                    sample["jpeg"],
                    int(sample.get("width", 0)),
                    int(sample.get("height", 0)),
                )
            except ContractError as exc:
                stats.refused += 1
                log.warning("collect: refused a frame: %s", exc)
                continue
            if path is not None:
                log.info("collect: %s (%d bytes)", path, len(sample["jpeg"]))
        return stats


def collect_video(
    source: str,
    folder: FrameFolder,
    *,
    device: str | None = None,
    every_s: float = 2.0,
    minutes: float | None = None,
    stop: threading.Event | None = None,
) -> CollectStats:
    """Store a frame of a webcam (``webcam:N``) or video file every ``every_s`` seconds.

    A webcam is timed by the clock; a video file by its own frame rate (a file plays as fast
    as it decodes, so ``every_s`` is seconds of video). Frames are scaled to at most
    ``COLLECT_MAX_SIDE`` pixels and the bytes one ``sample`` message holds, as a device's are;
    each run is a new boot id, so runs into one folder never meet.
    """
    from sortcam.sim.sources import VideoFrames, source_kind

    kind = source_kind(source)
    if kind not in ("webcam", "video"):
        raise UsageError(f"--source {source}: expected webcam:N or a video file")
    every_ms = check_every(every_s)
    if minutes is not None and not 0 < minutes <= 7 * 24 * 60:
        raise UsageError(f"--minutes {minutes:g}: expected more than 0 and at most a week (10080)")
    name = mc.check_device_id(device or (source.replace(":", "") if kind == "webcam" else "video"))
    stop = stop or threading.Event()
    boot = new_boot_id()
    frames = VideoFrames(source)
    period_s = 1.0 / frames.fps if frames.fps > 0 and not frames.live else 0.0
    seq = 0
    next_t = 0.0
    t0 = time.monotonic()
    try:
        for n, frame in enumerate(frames):
            if stop.is_set():
                break
            t = n * period_s if period_s else time.monotonic() - t0
            if minutes is not None and t >= minutes * 60:
                break
            if t < next_t:
                continue
            next_t = t + every_ms / 1000
            jpeg, width, height = encode_jpeg(frame, mc.COLLECT_MAX_SIDE, mc.SAMPLE_JPEG_MAX)
            path = folder.add(name, boot, seq, jpeg, width, height)
            seq += 1
            if path is not None:
                log.info("collect: %s (%dx%d, %d bytes)", path, width, height, len(jpeg))
    finally:
        frames.close()
    return folder.stats
