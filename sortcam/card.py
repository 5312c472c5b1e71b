"""The model card: ``model/<name>.json`` beside ``model/<name>.tflite``.

The card is the one place that says how to feed and read a shipped model: the classes
in output order, the input shape and colour, the preprocessing (``sortcam.preprocess``),
the default label-to-bin map, measured metrics and sizes. Host, simulator, console and
the firmware export all read it; only ``sortcam quantize`` writes it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sortcam import strict_json
from sortcam.errors import ModelError
from sortcam.preprocess import DEFAULT_RANGE, FITS, RESIZE_METHOD


def _package_dir(name: str) -> Path:
    """The folder of package ``name`` without importing it (``sortcam.model``'s code needs TensorFlow)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"package {name} is not installed")  # pragma: no cover - a broken install
    return Path(next(iter(spec.submodule_search_locations))).resolve()


MODEL_DIR = _package_dir("sortcam.model")
"""Where the shipped model and its card live: the ``sortcam.model`` package, which is the
repository's ``model/`` folder in a checkout and ``site-packages/sortcam/model/`` in an
installed wheel (never a path computed from this file's location)."""

SHA256_RE = re.compile(r"[0-9a-f]{64}")

DEFAULT_MODEL_NAME = "sortcam_trashnet"

REJECT_BIN = "reject"
"""Bin for items the host will not route by label (low confidence, unknown label)."""

TRASHNET_BINS: dict[str, str] = {
    "cardboard": "paper",
    "paper": "paper",
    "plastic": "plastic",
    "metal": "metal",
    "glass": "glass",
    "trash": "landfill",
}
"""Default bin per TrashNet class: paper and cardboard share the paper stream."""

TRASHNET_BIODEGRADABLE: dict[str, bool] = {
    "cardboard": True,
    "paper": True,
    "plastic": False,
    "metal": False,
    "glass": False,
    "trash": False,
}


@dataclass(frozen=True)
class InputSpec:
    height: int
    width: int
    channels: int = 3
    color: str = "rgb"


@dataclass(frozen=True)
class PreprocessSpec:
    fit: str = "crop"
    resize: str = RESIZE_METHOD
    range: tuple[float, float] = DEFAULT_RANGE


@dataclass
class ModelCard:
    """In-memory form of the card; ``path`` is where it was read from (not serialised)."""

    tflite: str
    classes: list[str]
    input: InputSpec
    preprocess: PreprocessSpec = field(default_factory=PreprocessSpec)
    bins: dict[str, str] = field(default_factory=dict)
    biodegradable: dict[str, bool] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    flash_bytes: int = 0
    arena_bytes: int = 0
    macs: int = 0
    sha256: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def model_path(self) -> Path:
        """The ``.tflite`` next to the card."""
        base = self.path.parent if self.path is not None else MODEL_DIR
        return base / self.tflite

    @property
    def model_id(self) -> str:
        """First 12 hex digits of the model's sha256: the ``model`` field of MQTT payloads.

        Only a card that went through :meth:`read_model` is known to hold the file's hash.
        """
        return self.sha256[:12]

    def read_model(self) -> bytes:
        """The ``.tflite``'s bytes, after checking the card's sha256 claim against them.

        The hash is computed from the bytes, never taken from the card: a card whose
        ``sha256`` differs from its file's raises :class:`ModelError` (it describes
        another model, or was edited by hand); a card without one gets the computed hash.
        After this call ``sha256`` and :attr:`model_id` are the file's.
        """
        path = self.model_path
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ModelError(f"model not found: {path} (named by the card {self.path})") from None
        except OSError as exc:
            raise ModelError(f"cannot read model {path}: {exc.strerror or exc}") from None
        actual = hashlib.sha256(data).hexdigest()
        if self.sha256 and self.sha256 != actual:
            raise ModelError(
                f"model card {self.path} claims sha256 {self.sha256[:12]} but {path.name} hashes to "
                f"{actual[:12]}: the card describes another model (re-run sortcam quantize)"
            )
        self.sha256 = actual
        return data

    def bin_for(self, label: str) -> str:
        return self.bins.get(label, REJECT_BIN)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("path")
        extra = data.pop("extra")
        data["preprocess"]["range"] = list(self.preprocess.range)
        data.update(extra)
        return data

    def save(self, path: str | Path) -> None:
        """Write the card atomically (a temp file renamed into place)."""
        p = Path(path)
        tmp = p.with_suffix(p.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        tmp.replace(p)
        self.path = p


_KNOWN = {f for f in ModelCard.__dataclass_fields__ if f not in ("extra", "path")}


def parse_card(data: dict[str, Any], path: Path | None = None) -> ModelCard:
    """Validate a card's JSON object; raises :class:`ModelError` naming the bad key."""
    where = f" in {path}" if path else ""
    try:
        classes = data["classes"]
        if not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) and c for c in classes):
            raise ModelError(f"model card{where}: 'classes' must list at least 2 names")
        if len(set(classes)) != len(classes):
            raise ModelError(f"model card{where}: duplicate class names")
        inp = data["input"]
        spec = InputSpec(
            int(inp["height"]), int(inp["width"]), int(inp.get("channels", 3)), str(inp.get("color", "rgb"))
        )
        if spec.channels != 3 or spec.color != "rgb":
            raise ModelError(f"model card{where}: only 3-channel rgb input is supported")
        pre = data.get("preprocess", {})
        rng = pre.get("range", list(DEFAULT_RANGE))
        prep = PreprocessSpec(
            str(pre.get("fit", "crop")), str(pre.get("resize", RESIZE_METHOD)), (float(rng[0]), float(rng[1]))
        )
        if prep.fit not in FITS:
            raise ModelError(f"model card{where}: preprocess.fit must be one of {', '.join(FITS)}")
        if prep.resize != RESIZE_METHOD:
            raise ModelError(f"model card{where}: unsupported resize {prep.resize!r}")
        card = ModelCard(
            tflite=str(data["tflite"]),
            classes=list(classes),
            input=spec,
            preprocess=prep,
            bins={str(k): str(v) for k, v in data.get("bins", {}).items()},
            biodegradable={str(k): bool(v) for k, v in data.get("biodegradable", {}).items()},
            metrics=dict(data.get("metrics", {})),
            flash_bytes=int(data.get("flash_bytes", 0)),
            arena_bytes=int(data.get("arena_bytes", 0)),
            macs=int(data.get("macs", 0)),
            sha256=_sha256_claim(data.get("sha256", ""), where),
            extra={k: v for k, v in data.items() if k not in _KNOWN},
            path=path,
        )
    except KeyError as exc:
        raise ModelError(f"model card{where}: missing key {exc.args[0]!r}") from None
    except (TypeError, ValueError, IndexError) as exc:
        raise ModelError(f"model card{where}: {exc}") from None
    return card


def _sha256_claim(value: Any, where: str) -> str:
    if value in ("", None):
        return ""
    if not isinstance(value, str) or not SHA256_RE.fullmatch(value):
        raise ModelError(f"model card{where}: 'sha256' must be 64 lowercase hex digits")
    return value


def load_card(path: str | Path | None = None) -> ModelCard:
    """Read a card. ``None`` means the shipped one (``model/sortcam_trashnet.json``).

    A path to a ``.tflite`` reads the card beside it.
    """
    p = Path(path) if path is not None else MODEL_DIR / f"{DEFAULT_MODEL_NAME}.json"
    if p.suffix == ".tflite":
        p = p.with_suffix(".json")
    try:
        data = strict_json.loads(p.read_text())
    except FileNotFoundError:
        raise ModelError(f"model card not found: {p}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"cannot read model card {p}: {exc}") from None
    if not isinstance(data, dict):
        raise ModelError(f"model card {p} is not a JSON object")
    return parse_card(data, p)


def sha256_file(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
