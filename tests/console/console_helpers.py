"""Constants and helpers of the console tests (fixtures are in conftest.py).

A module of its own name, so ``from console_helpers import ...`` finds it whichever test
folders one pytest run collects (``conftest`` is ambiguous between folders).
"""

from __future__ import annotations

import io
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "console"
SAMPLES = Path(__file__).resolve().parent.parent.parent / "sim" / "samples"
CLASSES = ["cardboard", "glass", "metal", "paper", "plastic", "trash"]
TOKEN = "test-token-123"


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


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def classification(device: str, boot: str, seq: int, label: str, confidence: float) -> bytes:
    from sortcam import mqtt_contract as mc

    others = [c for c in CLASSES if c != label]
    return mc.encode_classification(
        device=device,
        boot=boot,
        seq=seq,
        label=label,
        class_id=CLASSES.index(label),
        confidence=confidence,
        top=[(label, confidence), (others[0], 1 - confidence), (others[1], 0.0)],
        latency_ms=120,
        model="abcdef012345",
    )


def decision(device: str, boot: str, seq: int, label: str, bin_name: str, reason: str, status: str) -> bytes:
    from sortcam import mqtt_contract as mc

    return mc.encode(
        {
            "device": device,
            "boot": boot,
            "seq": seq,
            "label": label,
            "bin": bin_name,
            "reason": reason,
            "ts": time.time(),
            "status": status,
            "gate": 1,
            "sort_id": seq + 1,
            "confidence": 0.5,
        }
    )
