"""Fixtures of the host tests: a whole rig (mosquitto, pty sorter, MQTT client, controller process)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from host_helpers import ControllerProcess, Mqtt, ScriptedSorter, write_config  # noqa: E402


@dataclass
class Rig:
    broker: object
    pty: object
    sorter: ScriptedSorter
    mqtt: Mqtt
    controller: ControllerProcess
    workdir: Path

    def publish(self, payload: bytes, device: str = "cam1") -> None:
        self.mqtt.publish(f"sortcam/{device}/classification", payload).wait_for_publish(5)


@pytest.fixture()
def rig_factory(mqtt_broker, pty_pair, tmp_path: Path) -> Iterator[object]:  # noqa: ANN001 (shared fixtures)
    made: list[Rig] = []

    def make(behaviour=None, start: bool = True, extra: tuple[str, ...] = (), **config) -> Rig:  # noqa: ANN001
        cfg = write_config(tmp_path / "host.json", **config)
        sorter = ScriptedSorter(pty_pair.master, behaviour)
        client = Mqtt(mqtt_broker.url)
        ctl = ControllerProcess(tmp_path, mqtt_broker.url, str(pty_pair.path), cfg, extra=extra)
        rig = Rig(mqtt_broker, pty_pair, sorter, client, ctl, tmp_path)
        made.append(rig)
        if start:
            ctl.start()
        return rig

    yield make
    for rig in made:
        rig.controller.kill()
        rig.sorter.stop()
        rig.mqtt.close()
