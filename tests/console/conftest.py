"""Fixtures for the console tests: the tiny int8 model in a temp model dir, a real
mosquitto broker, a console app (Flask test client) and helpers to publish items."""

from __future__ import annotations

import io
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parent.parent / "data" / "console"
SAMPLES = Path(__file__).resolve().parent.parent.parent / "sim" / "samples"
CLASSES = ["cardboard", "glass", "metal", "paper", "plastic", "trash"]
TOKEN = "test-token-123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout_s: float = 10.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def jpeg(color: tuple[int, int, int] = (120, 90, 60), size: tuple[int, int] = (64, 48)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return buf.getvalue()


def sample_photos() -> list[Path]:
    """Real TrashNet photos bundled with the simulator (one per class), or generated ones."""
    out = []
    for c in CLASSES:
        files = sorted((SAMPLES / c).glob("*.jpg")) if (SAMPLES / c).is_dir() else []
        if files:
            out.append(files[0])
    return out


@pytest.fixture()
def model_dir(tmp_path: Path) -> Path:
    """A writable model dir holding the tiny model as ``line.tflite`` + ``line.json`` (+ ``.keras``)."""
    import json

    d = tmp_path / "model"
    d.mkdir()
    shutil.copyfile(DATA / "tiny.tflite", d / "line.tflite")
    shutil.copyfile(DATA / "tiny.keras", d / "line.keras")
    card = json.loads((DATA / "tiny.json").read_text())
    card["tflite"] = "line.tflite"
    (d / "line.json").write_text(json.dumps(card, indent=2))
    return d


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[str]:
    """A real mosquitto on a free loopback port; yields its URL."""
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(exe).exists():
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_port(port), "mosquitto did not start"
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture()
def console(tmp_path: Path, model_dir: Path) -> Iterator[Any]:
    """A :class:`Console` without MQTT (fed by calling ``console.feed``-less helpers) and its Flask app."""
    from sortcam.console.app import Console, ConsoleConfig, create_app
    from sortcam.console.retrain import RetrainSettings

    cfg = ConsoleConfig(broker_url=None, data_dir=tmp_path / "data", token=TOKEN, card=model_dir / "line.json",
                        firmware_dir=tmp_path / "fw", max_upload_mb=1.0,
                        retrain=RetrainSettings(min_per_class=2, weights="none", epochs=1, fine_tune_epochs=0,
                                                batch_size=8))
    con = Console(cfg)
    app = create_app(cfg, con)
    app.config["TESTING"] = True
    con.app = app  # type: ignore[attr-defined]
    try:
        yield con
    finally:
        con.stop()


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def classification(device: str, boot: str, seq: int, label: str, confidence: float) -> bytes:
    from sortcam import mqtt_contract as mc

    others = [c for c in CLASSES if c != label]
    return mc.encode_classification(device=device, boot=boot, seq=seq, label=label, class_id=CLASSES.index(label),
                                    confidence=confidence, top=[(label, confidence), (others[0], 1 - confidence),
                                                                (others[1], 0.0)], latency_ms=120, model="abcdef012345")


def decision(device: str, boot: str, seq: int, label: str, bin_name: str, reason: str, status: str) -> bytes:
    from sortcam import mqtt_contract as mc

    return mc.encode({"device": device, "boot": boot, "seq": seq, "label": label, "bin": bin_name, "reason": reason,
                      "ts": time.time(), "status": status, "gate": 1, "sort_id": seq + 1, "confidence": 0.5})
