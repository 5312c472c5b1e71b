"""Fixtures for the console tests: the tiny int8 model in a temp model dir, a real
mosquitto broker, a console app (Flask test client). Helpers: console_helpers.py."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from console_helpers import DATA, TOKEN


@pytest.fixture()
def model_dir(tmp_path: Path) -> Path:
    """A writable model dir holding the tiny model as ``line.tflite`` + ``line.json`` (+ ``.keras``)."""
    d = tmp_path / "model"
    d.mkdir()
    shutil.copyfile(DATA / "tiny.tflite", d / "line.tflite")
    shutil.copyfile(DATA / "tiny.keras", d / "line.keras")
    card = json.loads((DATA / "tiny.json").read_text())
    card["tflite"] = "line.tflite"
    (d / "line.json").write_text(json.dumps(card, indent=2))
    return d


@pytest.fixture()
def broker(mqtt_broker: Any) -> str:
    """The URL of a real mosquitto on a free loopback port (``mqtt_broker`` of tests/conftest.py)."""
    return mqtt_broker.url


@pytest.fixture()
def console(tmp_path: Path, model_dir: Path) -> Iterator[Any]:
    """A :class:`Console` without MQTT (fed by calling ``console.feed``-less helpers) and its Flask app."""
    from sortcam.console.app import Console, ConsoleConfig, create_app
    from sortcam.console.retrain import RetrainSettings

    cfg = ConsoleConfig(
        broker_url=None,
        data_dir=tmp_path / "data",
        token=TOKEN,
        card=model_dir / "line.json",
        firmware_dir=tmp_path / "fw",
        max_upload_mb=1.0,
        retrain=RetrainSettings(min_per_class=2, weights="none", epochs=1, fine_tune_epochs=0, batch_size=8),
    )
    con = Console(cfg)
    app = create_app(cfg, con)
    app.config["TESTING"] = True
    con.app = app  # type: ignore[attr-defined]
    try:
        yield con
    finally:
        con.stop()
