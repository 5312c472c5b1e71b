"""Fixtures of the simulator tests: a model to run and an MQTT message recorder.

The real mosquitto broker (``mqtt_broker``) and pty pairs come from ``tests/conftest.py``.

``tiny_card``: a 6-class full-int8 model built here with TensorFlow (32x32 input, a few
hundred parameters, random weights), written with its card by ``ModelCard.save``; fast
enough for every test that is about plumbing rather than accuracy. ``demo_card``: the
shipped ``model/sortcam_trashnet`` when it is there (the demo test runs what users run),
else the tiny one.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sortcam.card import MODEL_DIR, TRASHNET_BINS, TRASHNET_BIODEGRADABLE, InputSpec, ModelCard, load_card
from sortcam.errors import ModelError

CLASSES = ["cardboard", "glass", "metal", "paper", "plastic", "trash"]


def build_tiny_model(folder: Path, size: int = 32, seed: int = 0) -> ModelCard:
    """A full-int8 6-class classifier with a card, in ``folder`` (needs TensorFlow)."""
    tf = pytest.importorskip("tensorflow")
    tf.keras.utils.set_random_seed(seed)
    inputs = tf.keras.Input((size, size, 3))
    x = tf.keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inputs)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    x = tf.keras.layers.Dense(len(CLASSES))(x)
    outputs = tf.keras.layers.Softmax()(x)
    model = tf.keras.Model(inputs, outputs)
    from sortcam.model.quantize import convert_full_int8

    rep = np.random.default_rng(seed).uniform(-1, 1, (16, size, size, 3)).astype(np.float32)
    data = convert_full_int8(model, rep)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.tflite").write_bytes(data)
    card = ModelCard(
        tflite="tiny.tflite",
        classes=list(CLASSES),
        input=InputSpec(size, size),
        bins=dict(TRASHNET_BINS),
        biodegradable=dict(TRASHNET_BIODEGRADABLE),
        flash_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    card.save(folder / "tiny.json")
    return card


@pytest.fixture(scope="session")
def tiny_card(tmp_path_factory: pytest.TempPathFactory) -> ModelCard:
    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


def shipped_card() -> ModelCard | None:
    """The shipped model's card when the model is there and loads."""
    try:
        card = load_card(None)
    except ModelError:
        return None
    return card if card.model_path.is_file() else None


@pytest.fixture(scope="session")
def demo_card(request: pytest.FixtureRequest) -> ModelCard:
    card = shipped_card()
    return card if card is not None else request.getfixturevalue("tiny_card")


@pytest.fixture(scope="session")
def shipped_model_dir() -> Path:
    return MODEL_DIR


class Recorder:
    """An MQTT client that keeps every message it receives: ``(topic, payload, retain)``."""

    def __init__(self, url: str, topics: list[str]) -> None:
        from sortcam.mqtt_link import make_client, parse_broker_url

        broker = parse_broker_url(url)
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = make_client(broker, f"rec-{time.monotonic_ns()}")
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe([(t, 1) for t in topics])
        assert self._subscribed.wait(10), "recorder could not subscribe"

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def on(self, suffix: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _ in self.messages if t.endswith(suffix)]

    def wait_for(self, suffix: str, n: int, timeout_s: float = 20.0) -> list[bytes]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = self.on(suffix)
            if len(got) >= n:
                return got
            time.sleep(0.02)
        return self.on(suffix)

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture()
def recorder_factory() -> Iterator[Any]:
    made: list[Recorder] = []

    def make(url: str, topics: list[str]) -> Recorder:
        rec = Recorder(url, topics)
        made.append(rec)
        return rec

    yield make
    for rec in made:
        rec.close()
