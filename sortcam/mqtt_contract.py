"""MQTT contract, version 1 (docs/DESIGN.md, "MQTT contract").

Topics, payload fields and their validation live here and nowhere else in Python. The
C++ twin is ``firmware/lib/sortcam_core/include/sortcam/mqtt_contract.h``;
``tests/firmware/test_contract_agreement.py`` checks that the two agree.

Every validator takes the raw payload bytes and returns a plain ``dict`` or raises
:class:`ContractError` with a one-line reason. Booleans are never accepted as numbers,
an object holding a key twice is refused (:mod:`sortcam.strict_json`), and every pattern
matches the whole string (``re.fullmatch``: ``$`` would also match before a final
``\\n``, so ``"b00t0004\\n"`` would pass for a new boot and sort an item twice).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from sortcam import strict_json
from sortcam.errors import ContractError

VERSION = 1
DEFAULT_ROOT = "sortcam"
MAX_PAYLOAD = 4096
"""Bytes; anything larger is rejected before parsing."""
ID_PATTERN = r"[A-Za-z0-9_-]{1,32}"
"""Device, boot and line ids; only ever used with ``fullmatch``."""
DEVICE_ID_RE = re.compile(ID_PATTERN)
BOOT_ID_RE = re.compile(ID_PATTERN)
LINE_ID_RE = re.compile(ID_PATTERN)
MODEL_ID_RE = re.compile(r"[0-9a-f]{12}")
"""The ``model`` field: the first 12 hex digits of the .tflite's sha256."""
SHA256_RE = re.compile(r"[0-9a-f]{64}")
LABEL_MAX = 64
SEQ_MAX = 4294967295
LATENCY_MAX_MS = 600000
TOP_MAX = 5

QOS = 1
CLASSIFICATION = "classification"
STATUS = "status"
CMD = "cmd"
DECISION = "decision"
SAMPLE = "sample"
LINE_LEVEL = "line"
"""``<root>/line/<line>/...``: the topics of one sorting line (not of one device)."""
HOST = "host"
"""``<root>/line/<line>/host``: the line controller's retained status and Last Will."""

STATES: tuple[str, ...] = ("online", "offline")
COMMANDS: tuple[str, ...] = ("capture", "set", "reboot")
SET_KEYS: tuple[str, ...] = ("threshold", "trigger", "interval_ms", "collect_every_ms", "collect_for_s")
"""What ``set`` takes. The ``collect_*`` pair is the dataset-capture extension (see
:func:`encode_collect_cmd`); the firmware's ``kSetKeys`` is the same list (the agreement test checks it)."""
TRIGGERS: tuple[str, ...] = ("continuous", "gpio", "command")
REASONS: tuple[str, ...] = ("label", "low_confidence", "unknown_label")

CLASSIFICATION_FIELDS: tuple[str, ...] = (
    "v",
    "device",
    "boot",
    "seq",
    "label",
    "class_id",
    "confidence",
    "top",
    "latency_ms",
    "model",
)
"""In the order the device writes them."""
STATUS_FIELDS: tuple[str, ...] = ("v", "device", "state", "fw", "model", "uptime_s", "free_heap", "rssi", "fps")
DECISION_FIELDS: tuple[str, ...] = ("v", "device", "boot", "seq", "label", "bin", "reason", "ts")
HOST_STATUS_FIELDS: tuple[str, ...] = ("v", "state", "line", "client_id", "ts")


# --- topics -------------------------------------------------------------------------


def check_root(root: str) -> str:
    """A topic root: no wildcard, no control character (NUL, CR, LF...), no leading or trailing space or ``/``."""
    if (
        not isinstance(root, str)
        or not root
        or any(c in root for c in "+#")
        or root[0] in " /"
        or root[-1] in " /"
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in root)
    ):
        raise ContractError(f"bad topic root {root!r}")
    return root


def check_id(value: object, what: str) -> str:
    """``value`` when it is a string matching :data:`ID_PATTERN` as a whole, else :class:`ContractError`."""
    if not isinstance(value, str) or not DEVICE_ID_RE.fullmatch(value):
        raise ContractError(f"bad {what} {value!r}: must match {ID_PATTERN}")
    return value


def check_device_id(device: str) -> str:
    return check_id(device, "device id")


def check_boot_id(boot: str) -> str:
    return check_id(boot, "boot id")


def check_line_id(line: str) -> str:
    return check_id(line, "line id")


def device_topic(root: str, device: str, kind: str) -> str:
    """``<root>/<device>/<kind>`` with ``kind`` one of classification, status, cmd, sample."""
    return f"{check_root(root)}/{check_device_id(device)}/{kind}"


def classification_topic(root: str, device: str) -> str:
    return device_topic(root, device, CLASSIFICATION)


def status_topic(root: str, device: str) -> str:
    return device_topic(root, device, STATUS)


def cmd_topic(root: str, device: str) -> str:
    return device_topic(root, device, CMD)


def sample_topic(root: str, device: str) -> str:
    return device_topic(root, device, SAMPLE)


def line_topic(root: str, line: str, kind: str) -> str:
    """``<root>/line/<line>/<kind>`` with ``kind`` one of decision, host."""
    return f"{check_root(root)}/{LINE_LEVEL}/{check_line_id(line)}/{kind}"


def decision_topic(root: str, line: str) -> str:
    return line_topic(root, line, DECISION)


def host_status_topic(root: str, line: str) -> str:
    """Retained status of the line's controller (and its Last Will): ``<root>/line/<line>/host``."""
    return line_topic(root, line, HOST)


def subscription(root: str, kind: str) -> str:
    """Wildcard over all devices: ``<root>/+/<kind>``."""
    return f"{check_root(root)}/+/{kind}"


def parse_device_topic(root: str, topic: str) -> tuple[str, str]:
    """``<root>/<device>/<kind>`` to ``(device, kind)``; raises on any other shape."""
    prefix = check_root(root) + "/"
    if not topic.startswith(prefix):
        raise ContractError(f"topic {topic!r} is not under {root!r}")
    rest = topic[len(prefix) :].split("/")
    if len(rest) != 2:
        raise ContractError(f"topic {topic!r} is not <root>/<device>/<kind>")
    return check_device_id(rest[0]), rest[1]


# --- field checks -------------------------------------------------------------------


def _obj(payload: bytes | str, max_bytes: int = MAX_PAYLOAD, what: str = "payload") -> dict[str, Any]:
    """The payload's JSON object; an object holding a key twice (at any depth) is refused."""
    raw = payload.encode("utf-8") if isinstance(payload, str) else payload
    if len(raw) > max_bytes:
        raise ContractError(f"{what} of {len(raw)} bytes exceeds {max_bytes}")
    try:
        data = strict_json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise ContractError("payload is not UTF-8") from None
    except strict_json.DuplicateKeyError as exc:
        raise ContractError(f"payload holds {exc.key!r} twice") from None
    except json.JSONDecodeError as exc:
        raise ContractError(f"payload is not JSON: {exc.msg} at char {exc.pos}") from None
    except RecursionError:
        raise ContractError("payload nests too deeply") from None
    if not isinstance(data, dict):
        raise ContractError("payload is not a JSON object")
    return data


def _reject_constant(name: str) -> Any:
    raise ContractError(f"payload contains {name}, which is not JSON")


def _version(data: dict[str, Any], required: bool = True) -> None:
    if "v" not in data:
        if required:
            raise ContractError("missing 'v'")
        return
    v = data["v"]
    if type(v) is not int or v != VERSION:
        raise ContractError(f"unsupported version {v!r} (expected {VERSION})")


def _int(data: dict[str, Any], key: str, lo: int, hi: int) -> int:
    if key not in data:
        raise ContractError(f"missing {key!r}")
    v = data[key]
    if type(v) is not int:
        raise ContractError(f"{key!r} must be an integer, got {type(v).__name__}")
    if not lo <= v <= hi:
        raise ContractError(f"{key!r}={v} outside {lo}..{hi}")
    return v


def _num(data: dict[str, Any], key: str, lo: float, hi: float) -> float:
    if key not in data:
        raise ContractError(f"missing {key!r}")
    v = data[key]
    # a JSON integer can be longer than any float: compare ints as ints (no OverflowError)
    if type(v) not in (int, float) or (type(v) is float and not math.isfinite(v)):
        raise ContractError(f"{key!r} must be a number")
    if not lo <= v <= hi:
        raise ContractError(f"{key!r}={v} outside {lo}..{hi}")
    return float(v)


def _str(data: dict[str, Any], key: str, pattern: re.Pattern[str] | None = None, max_len: int = 64) -> str:
    if key not in data:
        raise ContractError(f"missing {key!r}")
    v = data[key]
    if not isinstance(v, str) or not v or len(v) > max_len:
        raise ContractError(f"{key!r} must be a non-empty string of at most {max_len} characters")
    if pattern is not None and not pattern.fullmatch(v):
        raise ContractError(f"{key!r}={v!r} does not match {pattern.pattern}")
    return v


def _device(d: dict[str, Any], topic_device: str | None) -> None:
    """Check the payload's ``device``; it must equal ``topic_device`` when that is given."""
    device = check_device_id(_str(d, "device", max_len=32))
    if topic_device is not None and device != topic_device:
        raise ContractError(f"payload device {device!r} differs from topic device {topic_device!r}")


def _item_key(d: dict[str, Any], topic_device: str | None) -> None:
    """Check the fields that name one item: ``device`` (see :func:`_device`), ``boot`` and ``seq``."""
    _device(d, topic_device)
    check_boot_id(_str(d, "boot", max_len=32))
    _int(d, "seq", 0, SEQ_MAX)


# --- payloads -----------------------------------------------------------------------


def validate_classification(payload: bytes | str, topic_device: str | None = None) -> dict[str, Any]:
    """Check a ``classification`` payload; ``topic_device`` must equal its ``device``."""
    d = _obj(payload)
    _version(d)
    _item_key(d, topic_device)
    _str(d, "label", max_len=LABEL_MAX)
    _int(d, "class_id", 0, 255)
    _num(d, "confidence", 0.0, 1.0)
    top = d.get("top")
    if not isinstance(top, list) or not 1 <= len(top) <= TOP_MAX:
        raise ContractError(f"'top' must be a list of 1..{TOP_MAX} [label, p] pairs")
    for pair in top:
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not isinstance(pair[0], str)
            or not pair[0]
            or type(pair[1]) not in (int, float)
            or not 0.0 <= pair[1] <= 1.0
        ):
            raise ContractError(f"bad 'top' entry {pair!r}: expected [label, p] with p in 0..1")
    _num(d, "latency_ms", 0, LATENCY_MAX_MS)
    _str(d, "model", re.compile(r"[0-9a-f]{1,64}"), 64)
    return d


def validate_status(payload: bytes | str, topic_device: str | None = None) -> dict[str, Any]:
    """Check a ``status`` payload. An ``offline`` status (the Last Will) needs only ``state``."""
    d = _obj(payload)
    _version(d)
    state = _str(d, "state", max_len=16)
    if state not in STATES:
        raise ContractError(f"'state' must be one of {', '.join(STATES)}")
    if "device" in d:
        _device(d, topic_device)
    if state == "online":
        _str(d, "fw", max_len=32)
        _str(d, "model", max_len=64)
        _num(d, "uptime_s", 0, 1e10)
        _int(d, "free_heap", 0, 1 << 32)
        _int(d, "rssi", -127, 0)
        _num(d, "fps", 0, 1000)
    return d


def validate_cmd(payload: bytes | str) -> dict[str, Any]:
    """Check a ``cmd`` payload. ``v`` may be left out by people typing commands by hand.

    A key given twice is refused, as everywhere, and as the firmware's parser refuses it
    (``firmware/lib/sortcam_core/src/command.cc``).
    """
    d = _obj(payload)
    _version(d, required=False)
    cmd = _str(d, "cmd", max_len=16)
    if cmd not in COMMANDS:
        raise ContractError(f"unknown command {cmd!r}: expected one of {', '.join(COMMANDS)}")
    if cmd == "set":
        keys = set(d) - {"v", "cmd"}
        if not keys:
            raise ContractError(f"'set' needs at least one of {', '.join(SET_KEYS)}")
        unknown = keys - set(SET_KEYS)
        if unknown:
            raise ContractError(f"'set' got unknown keys: {', '.join(sorted(unknown))}")
        if "threshold" in d:
            _num(d, "threshold", 0.0, 1.0)
        if "trigger" in d and d["trigger"] not in TRIGGERS:
            raise ContractError(f"'trigger' must be one of {', '.join(TRIGGERS)}")
        if "interval_ms" in d:
            _int(d, "interval_ms", 0, 60000)
        if "collect_every_ms" in d:
            if "collect_for_s" not in d:
                raise ContractError("'collect_every_ms' needs 'collect_for_s' (how long to send frames)")
            _int(d, "collect_every_ms", COLLECT_EVERY_MIN_MS, COLLECT_EVERY_MAX_MS)
        if "collect_for_s" in d:
            _int(d, "collect_for_s", 0, COLLECT_FOR_MAX_S)
    elif set(d) - {"v", "cmd"}:
        raise ContractError(f"{cmd!r} takes no arguments")
    return d


def validate_decision(payload: bytes | str) -> dict[str, Any]:
    """Check a host ``decision`` payload."""
    d = _obj(payload)
    _version(d)
    _item_key(d, None)
    _str(d, "label", max_len=LABEL_MAX)
    _str(d, "bin", max_len=32)
    reason = _str(d, "reason", max_len=32)
    if reason not in REASONS:
        raise ContractError(f"'reason' must be one of {', '.join(REASONS)}")
    _num(d, "ts", 0, 1e11)
    return d


# --- encoding -----------------------------------------------------------------------


def json_string(text: str) -> str:
    """JSON string literal exactly as the firmware writes it (``json.dumps``, no ASCII escaping)."""
    return json.dumps(text, ensure_ascii=False)


def fmt_prob(p: float) -> str:
    """Probabilities and confidences go on the wire with 4 decimals (``%.4f``)."""
    return f"{p:.4f}"


def encode_classification(
    *,
    device: str,
    boot: str,
    seq: int,
    label: str,
    class_id: int,
    confidence: float,
    top: list[tuple[str, float]],
    latency_ms: int,
    model: str,
) -> bytes:
    """The classification payload, byte for byte what the firmware's core writes."""
    top_text = ",".join(f"[{json_string(name)},{fmt_prob(p)}]" for name, p in top)
    text = (
        f'{{"v":{VERSION},"device":{json_string(device)},"boot":{json_string(boot)},"seq":{seq},'
        f'"label":{json_string(label)},"class_id":{class_id},"confidence":{fmt_prob(confidence)},'
        f'"top":[{top_text}],"latency_ms":{latency_ms},"model":{json_string(model)}}}'
    )
    return text.encode("utf-8")


def encode(obj: dict[str, Any]) -> bytes:
    """Any other payload: compact JSON with ``v`` first."""
    body = {"v": VERSION, **{k: v for k, v in obj.items() if k != "v"}}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def offline_status(device: str) -> bytes:
    """The Last Will payload a device registers at connect."""
    return encode({"device": device, "state": "offline"})


def encode_host_status(*, state: str, line: str, client_id: str, ts: float) -> bytes:
    """The controller's ``host`` payload (``online`` at connect, ``offline`` as its Will and on stop)."""
    if state not in STATES:
        raise ContractError(f"'state' must be one of {', '.join(STATES)}")
    return encode({"state": state, "line": check_line_id(line), "client_id": client_id, "ts": ts})


def validate_host_status(payload: bytes | str, topic_line: str | None = None) -> dict[str, Any]:
    """Check a ``host`` payload; ``topic_line`` must equal its ``line`` when given."""
    d = _obj(payload)
    _version(d)
    state = _str(d, "state", max_len=16)
    if state not in STATES:
        raise ContractError(f"'state' must be one of {', '.join(STATES)}")
    line = check_line_id(_str(d, "line", max_len=32))
    if topic_line is not None and line != topic_line:
        raise ContractError(f"payload line {line!r} differs from topic line {topic_line!r}")
    _str(d, "client_id", max_len=64)
    _num(d, "ts", 0, 1e11)
    return d


# --- extension: sample frames and model announcements (console, docs/console.md) -----

MODEL = "model"
SAMPLE_MAX_PAYLOAD = 98304
"""Bytes of one ``sample`` message (JSON with a base64 JPEG: about 72 KiB of JPEG)."""
SAMPLE_MIN_INTERVAL_S = 2.0
"""A device publishes at most one sample per this many seconds (see :class:`SampleRateLimiter`)."""
SAMPLE_FIELDS: tuple[str, ...] = ("v", "device", "boot", "seq", "label", "confidence", "width", "height", "jpeg")
MODEL_FIELDS: tuple[str, ...] = ("v", "model", "sha256", "classes", "card", "ts")


def model_topic(root: str) -> str:
    """``<root>/model``: retained announcement of the line's current model (console promote)."""
    return f"{check_root(root)}/{MODEL}"


class SampleRateLimiter:
    """Token bucket for sample frames: ``burst`` at once, then one per ``min_interval_s`` seconds.

    Devices call :meth:`allow` with a monotonic clock in seconds before publishing a
    sample; a ``False`` means skip this frame (the classification is still published).
    """

    def __init__(self, min_interval_s: float = SAMPLE_MIN_INTERVAL_S, burst: int = 1) -> None:
        self.min_interval_s = float(min_interval_s)
        self.burst = max(1, int(burst))
        self._tokens = float(self.burst)
        self._last: float | None = None
        self.dropped = 0

    def allow(self, now_s: float) -> bool:
        if self._last is not None and self.min_interval_s > 0:
            self._tokens = min(float(self.burst), self._tokens + (now_s - self._last) / self.min_interval_s)
        elif self.min_interval_s <= 0:
            self._tokens = float(self.burst)
        self._last = now_s
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        self.dropped += 1
        return False


def encode_sample(
    *,
    device: str,
    boot: str,
    seq: int,
    jpeg: bytes,
    label: str | None = None,
    confidence: float | None = None,
    width: int = 0,
    height: int = 0,
) -> bytes:
    """The ``sample`` payload: the item's identity and its frame as base64 JPEG.

    ``width``/``height`` are the frame's pixels (0 = unknown). Raises
    :class:`ContractError` when the encoded message would exceed ``SAMPLE_MAX_PAYLOAD``,
    the bytes are not a JPEG (``FF D8`` start), or the device or boot id is invalid.
    """
    import base64

    check_device_id(device)
    check_boot_id(boot)
    if not jpeg.startswith(b"\xff\xd8"):
        raise ContractError("sample frame is not a JPEG (no FF D8 start marker)")
    body: dict[str, Any] = {"device": device, "boot": boot, "seq": int(seq)}
    if label is not None:
        body["label"] = label
    if confidence is not None:
        body["confidence"] = round(float(confidence), 4)
    body["width"] = int(width)
    body["height"] = int(height)
    body["jpeg"] = base64.b64encode(jpeg).decode("ascii")
    out = encode(body)
    if len(out) > SAMPLE_MAX_PAYLOAD:
        raise ContractError(f"sample of {len(out)} bytes exceeds {SAMPLE_MAX_PAYLOAD}; lower the JPEG quality or size")
    return out


def validate_sample(payload: bytes | str, topic_device: str | None = None) -> dict[str, Any]:
    """Check a ``sample`` payload; the returned dict's ``jpeg`` holds the decoded JPEG bytes."""
    import base64
    import binascii

    d = _obj(payload, SAMPLE_MAX_PAYLOAD, "sample")
    _version(d)
    _item_key(d, topic_device)
    if "label" in d:
        _str(d, "label", max_len=LABEL_MAX)
    if "confidence" in d:
        _num(d, "confidence", 0.0, 1.0)
    for key in ("width", "height"):
        if key in d:
            _int(d, key, 0, 65535)
    text = d.get("jpeg")
    if not isinstance(text, str) or not text:
        raise ContractError("'jpeg' must be a non-empty base64 string")
    try:
        jpeg = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ContractError("'jpeg' is not valid base64") from None
    if not jpeg.startswith(b"\xff\xd8"):
        raise ContractError("'jpeg' is not a JPEG (no FF D8 start marker)")
    d["jpeg"] = jpeg
    return d


# --- extension: dataset capture (``sortcam collect``, docs/DESIGN.md) ------------------
#
# ``{"cmd":"set","collect_every_ms":N,"collect_for_s":S}`` asks a device to publish its full
# camera frame every N ms for the next S seconds, as ``sample`` messages without ``label`` and
# ``confidence`` (that absence is what tells a collected frame from a low-confidence item's
# sample). Each frame takes the next ``seq`` of the boot, so ``(device, boot, seq)`` names one
# item or one frame, never both. ``collect_for_s`` 0 stops; a new command restarts the clock,
# so a collector renews a short lease and a collector that dies leaves no camera streaming.

COLLECT_EVERY_MIN_MS = round(SAMPLE_MIN_INTERVAL_S * 1000)
"""Fastest frame rate a collector may ask for: one frame per 2,000 ms, the sample topic's pace."""
COLLECT_EVERY_MAX_MS = 600000
COLLECT_EVERY_DEFAULT_MS = COLLECT_EVERY_MIN_MS
"""When ``collect_every_ms`` is left out of a ``collect_for_s`` command."""
COLLECT_FOR_MAX_S = 3600
"""Longest lease one command grants (a collector renews it)."""
COLLECT_MAX_SIDE = 1600
"""Largest width or height of a collected frame in pixels (the OV2640's UXGA, 1600x1200);
with ``SAMPLE_MAX_PAYLOAD`` it bounds what a collector stores per frame."""
SAMPLE_JPEG_MAX = (SAMPLE_MAX_PAYLOAD - 512) * 3 // 4
"""Bytes of JPEG that fit in one ``sample`` message beside its other fields (base64 takes 4/3)."""


def encode_collect_cmd(every_ms: int, for_s: int) -> bytes:
    """The ``set`` command that starts (``for_s`` > 0), renews or stops (``for_s`` 0) frame collection."""
    body: dict[str, Any] = {"cmd": "set", "collect_for_s": int(for_s)}
    if for_s > 0:
        body = {"cmd": "set", "collect_every_ms": int(every_ms), "collect_for_s": int(for_s)}
    out = encode(body)
    validate_cmd(out)
    return out


def is_collected_frame(sample: dict[str, Any]) -> bool:
    """A validated ``sample`` that is a collected frame, not the frame of a low-confidence item."""
    return "label" not in sample and "confidence" not in sample


def encode_model_announcement(*, sha256: str, classes: list[str], card: str, ts: float) -> bytes:
    """Retained ``<root>/model`` payload: twins reload ``card`` when its sha256 differs from theirs."""
    if not isinstance(sha256, str) or not SHA256_RE.fullmatch(sha256):
        raise ContractError("model sha256 must be 64 lowercase hex digits")
    return encode({"model": sha256[:12], "sha256": sha256, "classes": list(classes), "card": card, "ts": round(ts, 3)})


def validate_model_announcement(payload: bytes | str) -> dict[str, Any]:
    """Check a ``<root>/model`` announcement."""
    d = _obj(payload)
    _version(d)
    _str(d, "model", MODEL_ID_RE, 12)
    sha = _str(d, "sha256", SHA256_RE, 64)
    if not sha.startswith(d["model"]):
        raise ContractError("'model' must be the first 12 hex digits of 'sha256'")
    classes = d.get("classes")
    if not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) and c for c in classes):
        raise ContractError("'classes' must list at least 2 names")
    _str(d, "card", max_len=1024)
    _num(d, "ts", 0, 1e11)
    return d
