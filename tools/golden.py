"""Golden vectors that hold the firmware's C++ core to the Python reference, bit for bit.

``python -m sortcam.tools.golden`` (re)writes ``tests/data/golden/``; ``--check`` only
compares. The Python side (``sortcam.preprocess``, ``sortcam.device_core``,
``sortcam.mqtt_contract``, ``sortcam.serial_contract``) computes every expected value
here from real TrashNet photos (``tests/data/golden/images``); the GoogleTest suite in
``tests/firmware/cpp`` recomputes them with the C++ core and compares. The pytest
``tests/firmware/test_golden.py`` regenerates into a temporary folder and fails when the
result differs from what is committed, so neither side can drift silently.

Files (text, one case a line, whitespace-separated tokens, byte strings in hex, float32
values as their 8-hex-digit IEEE bit pattern so they compare exactly):

- ``preprocess.txt`` + ``frames/*.bin``, ``expected/*.bin``: camera frames (RGB888 and
  big-endian RGB565) and the model-sized RGB and int8 images they must become.
- ``luts.txt``: int8 tables for several input quantisations and ranges.
- ``decisions.txt`` + ``decisions/*.bin``: frame sequences (a belt scene with real photos
  sliding through) with their int8 scores and the detector's expected state and items.
  Scores come from the shipped model in the TFLM runtime when ``model/sortcam_trashnet.tflite``
  exists, else from a seeded generator (the header line says which).
- ``payloads.txt``: classification, status and Last Will payload bytes.
- ``cmd_cases.txt``: MQTT ``cmd`` payloads (table plus seeded mutations) and verdicts.
- ``serial_cases.txt``: serial lines (table plus seeded mutations), decode and parse results.
- ``samples.txt`` + ``samples/*.json``: ``sample`` messages (a QQVGA camera JPEG, real
  photos, the size limit, refusals) and the confidence number format.
- ``rate_limits.txt``: ``SampleRateLimiter`` decisions over timestamp sequences.
"""

from __future__ import annotations

import argparse
import filecmp
import random
import shutil
import struct
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sortcam import device_core as dc
from sortcam import mqtt_contract, serial_contract
from sortcam import preprocess as pp
from sortcam.errors import ContractError

REPO = Path(__file__).resolve().parent.parent
GOLDEN_DIR = REPO / "tests" / "data" / "golden"
MODEL_PATH = REPO / "model" / "sortcam_trashnet.tflite"

IMAGES = ("cardboard101.jpg", "glass11.jpg", "plastic102.jpg", "metal100.jpg")
"""TrashNet validation photos copied into ``images/`` (attribution in ``images/README.md``)."""

PREPROCESS_IMAGES = IMAGES[:2]
"""The preprocessing cases use two photos (three frame kinds each) to keep the folder small."""

CAMERA_H, CAMERA_W = 120, 160
"""QQVGA, the capture size the firmware uses."""

LABELS = ["cardboard", "glass", "metal", "paper", "plastic", "trash"]
QUANTS: tuple[tuple[float, int, float, float], ...] = (
    (0.0078125, -1, -1.0, 1.0),
    (float(np.float32(1 / 127.5)), 0, -1.0, 1.0),
    (float(np.float32(0.003921568859368563)), -128, 0.0, 1.0),
    (float(np.float32(0.0123)), 5, -1.0, 1.0),
    (float(np.float32(0.02)), 3, 0.0, 255.0),
)
"""(scale, zero point, range lo, range hi) the LUT cases cover; clipping included."""


def hexs(data: bytes | str) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return raw.hex() if raw else "-"


def f32bits(value: float | np.float32) -> str:
    return struct.pack(">f", float(np.float32(value))).hex()


# --- preprocessing -------------------------------------------------------------------


def _camera_frame(photo: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """What the OV2640 would give at QQVGA: the photo stretched to 160x120."""
    return pp.fit_resize(photo, CAMERA_H, CAMERA_W, "stretch")


def write_preprocess(out: Path, photos: dict[str, npt.NDArray[np.uint8]]) -> None:
    (out / "frames").mkdir(parents=True, exist_ok=True)
    (out / "expected").mkdir(parents=True, exist_ok=True)
    scale, zp, lo, hi = QUANTS[0]
    lines = ["# case frame_file format width height fit out_h out_w scale_bits zero_point lo hi rgb_file int8_file"]
    for name in PREPROCESS_IMAGES:
        photo = photos[name]
        stem = Path(name).stem
        rgb888 = _camera_frame(photo)
        rgb565 = dc.rgb888_to_rgb565(rgb888)
        seen565 = dc.rgb565_to_rgb888(rgb565, CAMERA_H, CAMERA_W)
        odd = photo[7 : 7 + 61, 13 : 13 + 97]  # odd size and offsets: exercises crop rounding
        frames = {
            "rgb888": (rgb888.tobytes(), rgb888, CAMERA_W, CAMERA_H),
            "rgb565": (rgb565, seen565, CAMERA_W, CAMERA_H),
            "odd888": (np.ascontiguousarray(odd).tobytes(), odd, odd.shape[1], odd.shape[0]),
        }
        for fname, (raw, as_rgb, w, h) in frames.items():
            frame_file = f"frames/{stem}.{fname}.bin"
            (out / frame_file).write_bytes(raw)
            fmt = "rgb565" if fname == "rgb565" else "rgb888"
            for fit, oh, ow in (("crop", 64, 64), ("stretch", 48, 64), ("crop", 40, 56)):
                rgb = pp.fit_resize(as_rgb, oh, ow, fit)
                case = f"{stem}.{fname}.{fit}.{oh}x{ow}"
                rgb_file, q_file = f"expected/{case}.rgb.bin", "-"
                (out / rgb_file).write_bytes(rgb.tobytes())
                if oh == ow:  # the int8 image end to end once per frame; luts.txt covers the rest
                    q_file = f"expected/{case}.int8.bin"
                    (out / q_file).write_bytes(pp.to_int8(rgb, scale, zp, (lo, hi)).tobytes())
                lines.append(
                    f"{case} {frame_file} {fmt} {w} {h} {fit} {oh} {ow} {f32bits(scale)} {zp} {lo!r} {hi!r} "
                    f"{rgb_file} {q_file}"
                )
    (out / "preprocess.txt").write_text("\n".join(lines) + "\n")


def write_luts(out: Path) -> None:
    lines = ["# scale_bits zero_point lo hi lut_hex(256 int8)"]
    for scale, zp, lo, hi in QUANTS:
        lut = pp.int8_lut(scale, zp, (lo, hi))
        lines.append(f"{f32bits(scale)} {zp} {lo!r} {hi!r} {lut.tobytes().hex()}")
    (out / "luts.txt").write_text("\n".join(lines) + "\n")


# --- decisions -----------------------------------------------------------------------

SCENE = 16
"""Side of the detector images in the decision vectors (the detector is size-agnostic)."""


class _Scorer:
    """int8 scores for a scene: the shipped model when present, else a seeded generator."""

    def __init__(self, photos: dict[str, npt.NDArray[np.uint8]]) -> None:
        self.photos = photos
        self.rng = np.random.default_rng(1234)
        self.clf = None
        self.source = "synthetic"
        self.zero_point, self.scale = -128, 1.0 / 256.0
        if MODEL_PATH.exists():
            from sortcam.card import load_card
            from sortcam.runtime import Int8Classifier

            card = load_card(MODEL_PATH)
            self.card = card
            self.clf = Int8Classifier(MODEL_PATH)
            self.source = f"model:{card.model_id}"
            self.zero_point, self.scale = self.clf.output_quant.zero_point, self.clf.output_quant.scale

    def scores(self, photo_name: str | None, visible: float, class_hint: int) -> npt.NDArray[np.int8]:
        """Scores of a frame showing ``visible`` (0..1) of a photo, or the empty belt."""
        if self.clf is not None:
            card = self.card
            h, w = card.input.height, card.input.width
            base = np.full((h, w, 3), 235, dtype=np.uint8)
            if photo_name is not None:
                img = pp.fit_resize(self.photos[photo_name], h, w, card.preprocess.fit)
                cols = max(1, int(round(w * visible)))
                base[:, :cols] = img[:, w - cols :]
            q = pp.to_int8(base, self.clf.input_quant.scale, self.clf.input_quant.zero_point, card.preprocess.range)
            return self.clf.invoke_int8(q)
        # Seeded stand-in for a softmax head: most mass on the hint when fully visible.
        n = len(LABELS)
        logits = self.rng.normal(0.0, 0.6, n)
        if photo_name is not None:
            logits[class_hint] += 4.0 * visible
            logits[(class_hint + 1) % n] += 1.5 * (1.0 - visible)
        p = np.exp(logits - logits.max())
        p /= p.sum()
        return np.clip(np.round(p / self.scale) + self.zero_point, -128, 127).astype(np.int8)


def _scene(photo: npt.NDArray[np.uint8] | None, visible: float, rng: np.random.Generator) -> npt.NDArray[np.uint8]:
    """A 16x16 belt: light grey with sensor noise; the photo slides in from the left."""
    img = np.clip(220 + rng.integers(-3, 4, (SCENE, SCENE, 3)), 0, 255).astype(np.uint8)
    if photo is not None and visible > 0:
        small = pp.fit_resize(photo, SCENE, SCENE, "crop")
        cols = max(1, int(round(SCENE * visible)))
        img[:, :cols] = small[:, SCENE - cols :]
    return img


Event = tuple[str, "str | None", float, int]
"""(kind, photo, visible 0..1, class hint); kind is frame, trigger or background."""


def _sequences() -> list[tuple[str, dict[str, object], list[Event]]]:
    """(name, config overrides, events) of every decision sequence."""
    belt: list[Event] = [("frame", None, 0.0, 0)] * 2

    def item(photo: str, hint: int, steps: Iterable[float]) -> list[Event]:
        return [("frame", photo, v, hint) for v in steps]

    full = [1.0] * 6
    return [
        (
            "continuous_default",
            {},
            belt + item(IMAGES[0], 0, [0.3, 0.7] + full) + belt + item(IMAGES[1], 1, [0.5] + full) + belt,
        ),
        (
            "continuous_strict",
            {"threshold": 0.9, "stable_frames": 4, "max_frames": 6},
            belt + item(IMAGES[2], 4, [0.2, 0.5, 0.8] + full) + belt + item(IMAGES[3], 2, full) + belt,
        ),
        (
            "continuous_quick_exit",
            {"stable_frames": 5, "change_threshold": 20},
            belt + item(IMAGES[1], 1, [0.6, 1.0]) + belt + item(IMAGES[0], 0, [1.0] * 7) + belt,
        ),
        (
            "gpio",
            {"trigger": "gpio", "stable_frames": 2, "max_frames": 4},
            belt
            + item(IMAGES[2], 4, [1.0, 1.0])
            + [("trigger", None, 0.0, 0)]
            + item(IMAGES[2], 4, [1.0] * 5)
            + [("trigger", None, 0.0, 0)]
            + item(IMAGES[3], 2, [0.4, 1.0, 1.0, 1.0])
            + belt,
        ),
        (
            "command_background",
            {"trigger": "command", "threshold": 0.0, "stable_frames": 3, "max_frames": 3},
            [("background", None, 0.0, 0), ("trigger", None, 0.0, 0)]
            + item(IMAGES[0], 0, [1.0] * 4)
            + [("trigger", None, 0.0, 0), ("trigger", None, 0.0, 0)]
            + item(IMAGES[1], 1, [1.0] * 3),
        ),
    ]


def write_decisions(out: Path, photos: dict[str, npt.NDArray[np.uint8]]) -> list[dc.Item]:
    """Run every sequence through ``device_core.ItemDetector``; returns the items decided."""
    (out / "decisions").mkdir(parents=True, exist_ok=True)
    scorer = _Scorer(photos)
    rng = np.random.default_rng(99)
    items: list[dc.Item] = []
    lines = [
        f"# scores {scorer.source}",
        "# S name bin_file num_classes zero_point scale_bits threshold_bits stable max change trigger",
        "# E kind(frame|trigger|background) scores_hex state [class_id confidence_bits frames stable top_count"
        " (class p_bits)...]",
    ]
    for name, overrides, events in _sequences():
        config = dc.DecisionConfig(**overrides)  # type: ignore[arg-type]
        det = dc.ItemDetector(config, len(LABELS), scorer.zero_point, scorer.scale)
        frames: list[bytes] = []
        bin_file = f"decisions/{name}.bin"
        lines.append(
            f"S {name} {bin_file} {len(LABELS)} {scorer.zero_point} {f32bits(scorer.scale)} "
            f"{f32bits(config.threshold)} {config.stable_frames} {config.max_frames} {config.change_threshold} "
            f"{config.trigger}"
        )
        for kind, photo, visible, hint in events:
            img = _scene(photos[photo] if photo else None, visible, rng)
            if kind == "trigger":
                det.trigger()
                lines.append(f"E trigger - {det.state}")
                continue
            frames.append(img.tobytes())
            if kind == "background":
                det.set_background(img)
                lines.append(f"E background - {det.state}")
                continue
            q = scorer.scores(photo, visible, hint)
            got = det.on_frame(img, q)
            line = f"E frame {q.tobytes().hex()} {det.state}"
            if got is not None:
                items.append(got)
                tops = " ".join(f"{c} {f32bits(p)}" for c, p in got.top)
                line += (
                    f" {got.class_id} {f32bits(got.confidence)} {got.frames} {int(got.stable)} {len(got.top)} {tops}"
                )
            lines.append(line)
        (out / bin_file).write_bytes(b"".join(frames))
    (out / "decisions.txt").write_text("\n".join(lines) + "\n")
    return items


# --- payloads ------------------------------------------------------------------------


def write_payloads(out: Path, items: list[dc.Item]) -> None:
    odd_labels = ['caf\u00e9 "box"', "back\\slash", "tab\there", "ctl\x01\x1f", "\u00fcber-plastic", "new\nline"]
    lines = [
        "# C device boot seq latency_ms model n_labels labels... class_id confidence_bits top_count (class p_bits)..."
        " expected",
        "# S device fw model uptime_s free_heap rssi fps_bits arena_used invoke_ms dropped rejected trigger"
        " threshold_bits expected",
        "# O device expected",
    ]
    rng = random.Random(7)
    hand = [
        dc.Item(
            0,
            np.float32(0.99609375),
            [(0, np.float32(0.99609375)), (1, np.float32(0.00390625)), (2, np.float32(0.0))],
            3,
        ),
        dc.Item(
            5, np.float32(0.03125), [(5, np.float32(0.03125)), (4, np.float32(0.0234375)), (3, np.float32(0.00005))], 1
        ),
        dc.Item(3, np.float32(1.0), [(3, np.float32(1.0)), (0, np.float32(0.0)), (1, np.float32(0.0))], 9),
    ]
    cases = [(it, LABELS) for it in items] + [(it, LABELS) for it in hand] + [(it, odd_labels) for it in hand]
    for n, (it, labels) in enumerate(cases):
        device = rng.choice(["cam1", "belt-A_07", "x" * 32])
        boot = f"{rng.getrandbits(32):08x}"
        seq = rng.choice([0, n, 4294967295])
        latency = rng.choice([0, 17, 812, 600000])
        model = "0123456789ab"
        payload = dc.classification_payload(
            device=device, boot=boot, seq=seq, item=it, labels=labels, latency_ms=latency, model=model
        )
        mqtt_contract.validate_classification(payload, device)
        tops = " ".join(f"{c} {f32bits(p)}" for c, p in it.top)
        lines.append(
            f"C {hexs(device)} {hexs(boot)} {seq} {latency} {hexs(model)} {len(labels)} "
            f"{' '.join(hexs(lb) for lb in labels)} {it.class_id} {f32bits(it.confidence)} {len(it.top)} {tops} "
            f"{payload.hex()}"
        )
    statuses = [
        dc.DeviceStatus(device="cam1", model="0123456789ab"),
        dc.DeviceStatus(
            device="belt-A_07",
            model="fedcba987654",
            uptime_s=86400 * 40,
            free_heap=4_100_000,
            rssi=-71,
            fps=1.2345,
            arena_used=812_345,
            invoke_ms=1234,
            dropped=3,
            rejected_cmds=2,
            trigger="gpio",
            threshold=0.75,
        ),
        dc.DeviceStatus(
            device="x" * 32,
            model="000000000000",
            fps=0.005,
            rssi=-127,
            threshold=0.6,
            trigger="command",
            fw='0.1.0-"dev"',
        ),
    ]
    for st in statuses:
        payload = dc.encode_status(st)
        mqtt_contract.validate_status(payload, st.device)
        lines.append(
            f"S {hexs(st.device)} {hexs(st.fw)} {hexs(st.model)} {st.uptime_s} {st.free_heap} {st.rssi} "
            f"{f32bits(st.fps)} {st.arena_used} {st.invoke_ms} {st.dropped} {st.rejected_cmds} {st.trigger} "
            f"{f32bits(st.threshold)} {payload.hex()}"
        )
    for device in ("cam1", "belt-A_07"):
        lines.append(f"O {hexs(device)} {mqtt_contract.offline_status(device).hex()}")
    (out / "payloads.txt").write_text("\n".join(lines) + "\n")


# --- sample frames -------------------------------------------------------------------

SAMPLE_JPEG = "images/glass11.qqvga.jpg"
"""A QQVGA camera frame as JPEG (glass11 stretched to 160x120, Pillow quality 80), committed
as an input like the photos: regenerating it would tie the vectors to one libjpeg build."""

ABSENT = "~"
"""Token for a sample field that is left out (``-`` is the empty string)."""


def _pattern_jpeg(n: int) -> bytes:
    """``n`` bytes that start like a JPEG (``FF D8``) and end like one; the rest a fixed pattern."""
    body = bytes((i * 31 + 7) & 0xFF for i in range(max(0, n - 4)))
    return (b"\xff\xd8" + body + b"\xff\xd9")[:n]


def _sample_jpeg(source: str) -> bytes:
    if source.startswith("pattern:"):
        return _pattern_jpeg(int(source.split(":", 1)[1]))
    if source.startswith("hex:"):
        return bytes.fromhex(source.split(":", 1)[1])
    return (GOLDEN_DIR / source).read_bytes()


def _largest_fitting_pattern(device: str, boot: str) -> int:
    """The longest pattern JPEG whose sample message (no label, no confidence) fits the limit."""
    lo, hi = 2, mqtt_contract.SAMPLE_MAX_PAYLOAD
    while lo < hi:
        mid = (lo + hi + 1) // 2
        try:
            mqtt_contract.encode_sample(device=device, boot=boot, seq=1, jpeg=_pattern_jpeg(mid))
            lo = mid
        except ContractError:
            hi = mid - 1
    return lo


ROUND4_EDGES: tuple[float, ...] = (
    0.0,
    1.0,
    0.5,
    0.1,
    0.4121,
    0.03125,
    0.00005,
    0.00004,
    0.00015,
    0.99995,
    0.99994,
    0.9999,
    0.6,
    0.123456,
    1e-7,
    0.0001,
    0.001,
    0.01,
    0.25,
    0.75,
    0.33333334,
    0.66666667,
    0.41205,
    0.41215,
)


def write_samples(out: Path) -> None:
    """``samples.txt`` + ``samples/*.json``: sample messages and the confidence format."""
    (out / "samples").mkdir(parents=True, exist_ok=True)
    lines = [
        "# P name device_hex boot_hex seq label_hex|~ confidence_bits|~ width height jpeg(file|pattern:N|hex:..)"
        " expected(samples/<name>.json|refused)",
        "# R confidence_bits text   (json.dumps(round(float(float32), 4)))",
    ]
    limit_device, limit_boot = "cam-limit-01", "0badf00d"  # header length chosen so the limit is hit exactly
    n_fit = _largest_fitting_pattern(limit_device, limit_boot)
    at_limit = mqtt_contract.encode_sample(device=limit_device, boot=limit_boot, seq=1, jpeg=_pattern_jpeg(n_fit))
    if len(at_limit) != mqtt_contract.SAMPLE_MAX_PAYLOAD:
        raise RuntimeError(f"the at_limit sample has {len(at_limit)} bytes: adjust limit_device")
    cases: list[tuple[str, str, str, int, str | None, float | None, int, int, str]] = [
        ("qqvga", "cam1", "5f3a9c01", 17, "paper", 0.4121, 160, 120, SAMPLE_JPEG),
        ("photo_bare", "belt-A_07", "ffffffff", 4294967295, None, None, 0, 0, "images/plastic102.jpg"),
        ("photo_escapes", "x" * 32, "00000000", 0, 'caf\u00e9 "box"\n\x01', 0.5, 256, 192, "images/cardboard101.jpg"),
        ("zero_confidence", "cam_2", "0c5c7fd0", 1, "cardboard", 0.0, 65535, 65535, SAMPLE_JPEG),
        ("confidence_one", "cam1", "5f3a9c01", 18, "trash", 1.0, 160, 120, "hex:ffd8ffd9"),
        ("at_limit", limit_device, limit_boot, 1, None, None, 0, 0, f"pattern:{n_fit}"),
        ("over_limit", limit_device, limit_boot, 1, None, None, 0, 0, f"pattern:{n_fit + 1}"),
        ("not_jpeg", "cam1", "5f3a9c01", 2, "glass", 0.3, 160, 120, "hex:89504e470d0a1a0a"),
        ("too_short", "cam1", "5f3a9c01", 2, "glass", 0.3, 160, 120, "hex:ff"),
        ("bad_device", "cam/1", "5f3a9c01", 2, "glass", 0.3, 160, 120, SAMPLE_JPEG),
    ]
    for name, device, boot, seq, label, conf, width, height, source in cases:
        jpeg = _sample_jpeg(source)
        conf32 = None if conf is None else float(np.float32(conf))
        try:
            payload = mqtt_contract.encode_sample(
                device=device, boot=boot, seq=seq, jpeg=jpeg, label=label, confidence=conf32, width=width, height=height
            )
        except ContractError:
            expected = "refused"
        else:
            got = mqtt_contract.validate_sample(payload, device)
            assert got["jpeg"] == jpeg
            expected = f"samples/{name}.json"
            (out / expected).write_bytes(payload)
        lines.append(
            f"P {name} {hexs(device)} {hexs(boot)} {seq} {ABSENT if label is None else hexs(label)} "
            f"{ABSENT if conf32 is None else f32bits(conf32)} {width} {height} {source} {expected}"
        )
    rng = np.random.default_rng(31)
    values = [float(np.float32(v)) for v in ROUND4_EDGES]
    values += [float(v) for v in rng.random(200, dtype=np.float32)]
    values += [float(np.float32((k + 0.5) / 10000)) for k in range(0, 10000, 397)]  # near the rounding ties
    for v in values:
        text = mqtt_contract.encode({"c": round(float(v), 4)}).decode()[len('{"v":1,"c":') : -1]
        lines.append(f"R {f32bits(v)} {text}")
    (out / "samples.txt").write_text("\n".join(lines) + "\n")


def _credit_limiter(interval_ms: int, burst: int, times_ms: list[int]) -> list[bool]:
    """The firmware's integer token bucket (credit in ms), to check the sequences stay exact."""
    cap = max(1, burst) * interval_ms
    credit, last, out = cap, None, []
    for t in times_ms:
        if interval_ms <= 0:
            out.append(True)
            continue
        if last is not None:
            credit = min(cap, credit + (t - last))
        last = t
        ok = credit >= interval_ms
        credit -= interval_ms if ok else 0
        out.append(ok)
    return out


def write_rate_limits(out: Path) -> None:
    """``rate_limits.txt``: ``SampleRateLimiter`` decisions over timestamp sequences (ms).

    Python's bucket is float seconds, the firmware's integer ms; the sequences avoid the
    sub-microsecond float rounding at an exact refill boundary (checked here: generation
    fails when the two would disagree).
    """
    rng = random.Random(5150)
    seqs: list[tuple[int, int, list[int]]] = []
    steady = [i * 250 for i in range(40)]  # 4 items a second: every 8th passes
    seqs.append((2000, 1, steady))
    gaps = [0, 125, 2000, 2125, 4000, 4001, 9000, 9125, 9250, 11250, 11375, 30000, 30000, 32000]
    seqs.append((2000, 1, gaps))
    seqs.append((1500, 3, [0, 0, 0, 0, 500, 1000, 1500, 3000, 6000, 6000, 6000, 6000, 6125]))
    seqs.append((0, 1, [0, 0, 1, 1, 2]))
    for interval, burst in ((2000, 1), (2000, 2), (750, 1), (60000, 4)):
        t, times = 1000 + rng.randrange(5000), []
        for _ in range(60):
            t += rng.choice([0, rng.randrange(1, 400), rng.randrange(400, 3000), rng.randrange(3000, 20000)])
            times.append(t)
        seqs.append((interval, burst, times))
    lines = ["# interval_ms burst n times_ms... decisions(1 allowed / 0 skipped) dropped"]
    for interval, burst, times in seqs:
        lim = mqtt_contract.SampleRateLimiter(min_interval_s=interval / 1000.0, burst=burst)
        got = [lim.allow(t / 1000.0) for t in times]
        if got != _credit_limiter(interval, burst, times):
            raise RuntimeError(f"float and integer token buckets disagree on {times}: pick other timestamps")
        decisions = "".join("1" if g else "0" for g in got)
        lines.append(f"{interval} {burst} {len(times)} {' '.join(map(str, times))} {decisions} {lim.dropped}")
    (out / "rate_limits.txt").write_text("\n".join(lines) + "\n")


# --- commands ------------------------------------------------------------------------

CMD_TABLE: tuple[bytes, ...] = tuple(
    s.encode("utf-8") if isinstance(s, str) else s
    for s in (
        '{"cmd":"capture"}',
        '{"v":1,"cmd":"capture"}',
        ' \t\r\n{ "cmd" : "reboot" } \n',
        '{"cmd":"set","threshold":0.6}',
        '{"cmd":"set","threshold":1}',
        '{"cmd":"set","threshold":0}',
        '{"cmd":"set","threshold":-0.0}',
        '{"cmd":"set","threshold":1.0000000000000001}',
        '{"cmd":"set","threshold":1e-3}',
        '{"cmd":"set","threshold":5E-1}',
        '{"cmd":"set","trigger":"gpio"}',
        '{"cmd":"set","trigger":"command","interval_ms":250}',
        '{"cmd":"set","interval_ms":0}',
        '{"cmd":"set","interval_ms":60000}',
        '{"cmd":"set","interval_ms":-0}',
        '{"cmd":"\\u0063apture"}',
        '{"\\u0063md":"capture"}',
        '{"cmd":"capture","cmd":"reboot"}',
        '{"cmd":"set","threshold":[[1]],"threshold":0.5}',
        '{"cmd":"set","threshold":0.5,"trigger":"gpio","v":1}',
        # rejected
        "",
        " ",
        "{}",
        "[]",
        '"capture"',
        '{"cmd":"capture"',
        '{"cmd":"capture",}',
        '{"cmd":"capture"} x',
        '{"cmd":"Capture"}',
        '{"cmd":"capture","x":1}',
        '{"cmd":"reboot","threshold":0.5}',
        '{"cmd":"set"}',
        '{"cmd":"set","v":1}',
        '{"cmd":"set","threshold":1.5}',
        '{"cmd":"set","threshold":-0.01}',
        '{"cmd":"set","threshold":true}',
        '{"cmd":"set","threshold":"0.5"}',
        '{"cmd":"set","threshold":NaN}',
        '{"cmd":"set","threshold":Infinity}',
        '{"cmd":"set","threshold":-Infinity}',
        '{"cmd":"set","threshold":1e999}',
        '{"cmd":"set","threshold":.5}',
        '{"cmd":"set","threshold":0.}',
        '{"cmd":"set","threshold":05}',
        '{"cmd":"set","threshold":+0.5}',
        '{"cmd":"set","threshold":0x1}',
        '{"cmd":"set","trigger":"laser"}',
        '{"cmd":"set","trigger":1}',
        '{"cmd":"set","interval_ms":60001}',
        '{"cmd":"set","interval_ms":-1}',
        '{"cmd":"set","interval_ms":1.0}',
        '{"cmd":"set","interval_ms":1e3}',
        '{"cmd":"set","interval_ms":99999999999999999999999999}',
        '{"cmd":"set","foo":1,"threshold":0.5}',
        '{"v":2,"cmd":"capture"}',
        '{"v":1.0,"cmd":"capture"}',
        '{"v":true,"cmd":"capture"}',
        '{"v":"1","cmd":"capture"}',
        '{"cmd":null}',
        '{"cmd":1}',
        '{"cmd":""}',
        '{cmd:"capture"}',
        "{'cmd':'capture'}",
        '{"cmd":"cap\nture"}',
        '{"cmd":"capture\\x"}',
        '{"cmd":"capture\\u12"}',
        '{"cmd":"\\ud800"}',
        '\ufeff{"cmd":"capture"}',
        '{"cmd":"capture"}\x00',
        '{"cmd":"set","threshold":0.5,"trigger":"gpio","interval_ms":1,"extra":[1,{"a":null}]}',
        b'{"cmd":"capture","\xff":1}',
        b'{"cmd":"\xc3\x28"}',
        b'{"cmd":"\xed\xa0\x80"}',
        b'{"cmd":"\xf4\x90\x80\x80"}',
        b'{"cmd":"\xc0\xaf"}',
        b'{"x":"\xf0\x9f\x98\x80","cmd":"capture"}',
        b'{"cmd":"capture"' + b" " * 4080 + b"}",
        b'{"cmd":"capture"' + b" " * 4079 + b"}",
    )
)
CMD_ALPHABET = b'{}[]":,.-+0123456789eE \\utrfnaslcp_v\x00\x7f\xc3\xa9'


def _cmd_verdict(payload: bytes) -> str | None:
    """Case line for a payload, or None when the Python validator itself fails (skipped)."""
    try:
        d = mqtt_contract.validate_cmd(payload)
    except ContractError:
        return f"{payload.hex() or '-'} 0"
    except (OverflowError, ValueError):  # a Python-side bug, not a verdict: leave the case out
        return None
    thr = f"{float(d['threshold'])!r}" if "threshold" in d else "-"
    return f"{payload.hex() or '-'} 1 {d['cmd']} {thr} {d.get('trigger', '-')} {d.get('interval_ms', '-')}"


def _mutate(rng: random.Random, seed: bytes, alphabet: bytes, max_edits: int) -> bytearray:
    """``seed`` with 1..``max_edits`` random edits (replace, insert or delete one byte from ``alphabet``)."""
    data = bytearray(seed)
    for _ in range(rng.randint(1, max_edits)):
        op = rng.randrange(3)
        pos = rng.randrange(len(data) + (op == 1))
        if op == 0 and data:
            data[pos] = rng.choice(alphabet)
        elif op == 1:
            data.insert(pos, rng.choice(alphabet))
        elif data:
            del data[pos]
    return data


def write_cmds(out: Path, mutations: int = 1500) -> None:
    rng = random.Random(2024)
    lines = ["# payload_hex verdict(1 ok / 0 rejected) [cmd threshold trigger interval_ms]"]
    seen: set[bytes] = set()
    for payload in CMD_TABLE:
        seen.add(payload)
        if (line := _cmd_verdict(payload)) is not None:
            lines.append(line)
    valid = [p for p in CMD_TABLE[:20]]
    while len(seen) < len(CMD_TABLE) + mutations:
        payload = bytes(_mutate(rng, rng.choice(valid), CMD_ALPHABET, max_edits=3))
        if payload in seen:
            continue
        seen.add(payload)
        if (line := _cmd_verdict(payload)) is not None:
            lines.append(line)
    (out / "cmd_cases.txt").write_text("\n".join(lines) + "\n")


# --- serial --------------------------------------------------------------------------


def _serial_case(line: bytes) -> str:
    hx = hexs(line)
    try:
        body = serial_contract.decode(line)
    except serial_contract.ChecksumError as exc:
        return f"{hx} checksum {len(exc.body)}"
    except ContractError:
        return f"{hx} malformed"
    head = f"{hx} ok {len(body)}"
    try:
        m = serial_contract.parse(body)
    except ContractError:
        return head + " 0"
    return f"{head} 1 {m.verb} {m.item_id} {m.gate} {m.delay_ms} {m.bins} {hexs(m.reason)} {hexs(m.fw)} {hexs(m.text)}"


def _raw(body: str, cs: str) -> bytes:
    return f"{body}*{cs}\n".encode("ascii")


def _sealed(body: str) -> bytes:
    """A line with the right checksum, even for bodies ``serial_contract.encode`` refuses."""
    return _raw(body, f"{serial_contract.checksum(body):02X}")


SERIAL_TABLE: tuple[bytes, ...] = (
    serial_contract.sort_line(1, 0, 0),
    serial_contract.sort_line(4294967295, 15, 600000),
    serial_contract.sort_line(42, 3, 1500),
    serial_contract.ping_line(),
    serial_contract.ack_line(42),
    serial_contract.nak_line(42, "checksum"),
    serial_contract.nak_line(0, "syntax"),
    serial_contract.pong_line("0.1.0", 4),
    serial_contract.evt_line("JAM"),
    serial_contract.evt_line("BIN_FULL 3"),
    serial_contract.evt_line("READY"),
    b"PING*" + f"{serial_contract.checksum('PING'):02x}".encode() + b"\r\n",
    b"PING*00\n",
    b"PING\n",
    b"*00\n",
    b"PING*0\n",
    b"PING*000\n",
    b"PING*zz\n",
    b"\n",
    b"",
    b"PING*1A",
    _sealed("SORT 0 1 100"),
    _sealed("SORT 4294967296 1 100"),
    _sealed("SORT 7 16 100"),
    _sealed("SORT 7 1 600001"),
    _sealed("SORT 7 1"),
    _sealed("SORT  7 1 100"),
    _sealed("SORT 7 1 100 "),
    _sealed("SORT +7 1 100"),
    _sealed("SORT 00000000007 1 100"),
    _sealed("SORT 0000000007 01 0100"),
    _sealed("sort 7 1 100"),
    _sealed("PING extra"),
    _sealed("PONG 0.1.0 0"),
    _sealed("PONG 0.1.0 17"),
    _sealed("NAK 5"),
    _sealed("EVT"),
    _sealed("EVT "),
    _raw("SORT 7 1 100", " " + f"{serial_contract.checksum('SORT 7 1 100'):X}"[-1]),
    _raw("PING", "+" + f"{serial_contract.checksum('PING'):X}"[-1]),
    _raw("PING", "-0"),
    _raw("A*B", "00"),
    _raw("SORT 7 1 100", "00"),
    b"SORT 7 1 100*4\xff\n",
    b"\xffPING*00\n",
    b"PI\x00NG*00\n",
)
SERIAL_ALPHABET = b"SORTPINGACKEVT 0123456789*\r\n\t+-abcdefABCDEF\x00\x7f\x80"


def write_serial(out: Path, mutations: int = 1500) -> None:
    rng = random.Random(4242)
    lines = ["# line_hex decode(ok|checksum|malformed) [body_len [parsed(1|0) verb id gate delay bins reason fw text]]"]
    seen: set[bytes] = set()

    def add(line: bytes) -> None:
        if line in seen or len(line) > serial_contract.MAX_LINE + 1:
            return
        seen.add(line)
        lines.append(_serial_case(line))

    for line in SERIAL_TABLE:
        add(line)
    valid = list(SERIAL_TABLE[:11])
    target = len(seen) + mutations
    while len(seen) < target:
        data = _mutate(rng, rng.choice(valid), SERIAL_ALPHABET, max_edits=2)
        if rng.random() < 0.5 and b"*" in data:  # re-seal half of them so the parser sees them
            body = bytes(data).split(b"*")[0]
            if all(b < 0x80 for b in body):
                data = bytearray(body + b"*" + f"{serial_contract.checksum(body):02X}".encode() + b"\n")
        add(bytes(data))
    (out / "serial_cases.txt").write_text("\n".join(lines) + "\n")


# --- all -----------------------------------------------------------------------------


def load_photos(folder: Path) -> dict[str, npt.NDArray[np.uint8]]:
    return {name: pp.load_image(folder / name) for name in IMAGES}


def generate(out: Path) -> None:
    """Write every golden file under ``out`` (the photos must already be in ``out/images``)."""
    photos = load_photos(GOLDEN_DIR / "images")
    write_preprocess(out, photos)
    write_luts(out)
    items = write_decisions(out, photos)
    write_payloads(out, items)
    write_cmds(out)
    write_serial(out)
    write_samples(out)
    write_rate_limits(out)


GENERATED = (
    "preprocess.txt",
    "luts.txt",
    "decisions.txt",
    "payloads.txt",
    "cmd_cases.txt",
    "serial_cases.txt",
    "frames",
    "expected",
    "decisions",
    "samples.txt",
    "samples",
    "rate_limits.txt",
)


def compare(a: Path, b: Path) -> list[str]:
    """Relative paths of generated files that differ between two golden folders."""
    diffs: list[str] = []
    for name in GENERATED:
        pa, pb = a / name, b / name
        if pa.is_dir() or pb.is_dir():
            names = {p.name for p in pa.glob("*")} | {p.name for p in pb.glob("*")}
            for n in sorted(names):
                if not (pa / n).exists() or not (pb / n).exists() or not filecmp.cmp(pa / n, pb / n, shallow=False):
                    diffs.append(f"{name}/{n}")
        elif not pa.exists() or not pb.exists() or not filecmp.cmp(pa, pb, shallow=False):
            diffs.append(name)
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sortcam.tools.golden", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with tests/data/golden instead of writing")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        diffs = compare(Path(tmp), GOLDEN_DIR)
        if args.check:
            for d in diffs:
                print(f"differs: {d}")
            return 1 if diffs else 0
        for name in GENERATED:
            target = GOLDEN_DIR / name
            if target.is_dir():
                shutil.rmtree(target)
            src = Path(tmp) / name
            if src.is_dir():
                shutil.copytree(src, target)
            else:
                shutil.copy2(src, target)
    print(f"wrote {GOLDEN_DIR} ({len(diffs)} file(s) changed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
