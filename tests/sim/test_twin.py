"""The device twin against a real broker: contract, status and Last Will, commands, records."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_errors import one_line_error

from sortcam import device_core as dc
from sortcam import mqtt_contract as mc
from sortcam.card import ModelCard
from sortcam.cli import main
from sortcam.runtime import measure_arena
from sortcam.sim.broker import EmbeddedBroker
from sortcam.sim.sources import SAMPLES_DIR, list_folder
from sortcam.sim.twin import DeviceTwin, belt_frame


def test_bundled_samples_cover_every_class_with_attribution(tiny_card: ModelCard) -> None:
    items = list_folder(SAMPLES_DIR, tiny_card.classes)
    assert {i.truth for i in items} == set(tiny_card.classes)
    assert len(items) >= 2 * len(tiny_card.classes)
    # interleaved: the first six items are six different classes
    assert len({i.truth for i in items[: len(tiny_card.classes)]}) == len(tiny_card.classes)
    readme = (SAMPLES_DIR / "README.md").read_text()
    assert "Gary Thung" in readme and "MIT License" in readme


def test_twin_messages_follow_the_contract(mqtt_broker: Any, recorder_factory: Any, tiny_card: ModelCard) -> None:
    rec = recorder_factory(mqtt_broker.url, ["sortcam/#"])
    twin = DeviceTwin("cam-1", tiny_card)
    twin.connect(mqtt_broker.url)
    items = list_folder(SAMPLES_DIR, tiny_card.classes)[:6]
    played = twin.run_folder(items, rate=0)
    assert twin.flush(10)
    assert played == 6 and twin.stats.items == 6 and twin.stats.undetected == 0
    payloads = rec.wait_for("/cam-1/classification", 6)
    assert len(payloads) == 6
    seen = [mc.validate_classification(p, "cam-1") for p in payloads]
    assert [d["seq"] for d in seen] == list(range(6))
    assert len({d["boot"] for d in seen}) == 1 and re.fullmatch(r"[0-9a-f]{8}", seen[0]["boot"])
    assert all(d["model"] == tiny_card.sha256[:12] for d in seen)
    assert all(d["label"] == tiny_card.classes[d["class_id"]] and len(d["top"]) == 3 for d in seen)
    # the record maps (boot, seq) to the file that was on the belt
    for d, item in zip(seen, items, strict=True):
        record = twin.records[(d["boot"], d["seq"])]
        assert record.source == item.name and record.truth == item.truth and record.label == d["label"]
    # the bytes are exactly the firmware's encoding of the decided item
    first = twin.records[(seen[0]["boot"], 0)]
    assert payloads[0] == mc.encode_classification(
        device="cam-1",
        boot=first.boot,
        seq=0,
        label=first.label,
        class_id=first.class_id,
        confidence=first.confidence,
        top=first.top,
        latency_ms=first.latency_ms,
        model=tiny_card.sha256[:12],
    )
    status = [mc.validate_status(p, "cam-1") for p in rec.on("/cam-1/status")]
    assert status and status[0]["state"] == "online" and status[0]["model"] == tiny_card.sha256[:12]
    # arena_used is the runtime's real figure for this model (the tiny card records none)
    assert tiny_card.arena_bytes == 0
    assert json.loads(rec.on("/cam-1/status")[0])["arena_used"] == measure_arena(
        tiny_card.model_path.read_bytes(), verify=False
    )
    twin.close()
    offline = rec.wait_for("/cam-1/status", len(status) + 1)
    assert mc.validate_status(offline[-1], "cam-1")["state"] == "offline"


def test_commands_reboot_set_and_malformed(mqtt_broker: Any, recorder_factory: Any, tiny_card: ModelCard) -> None:
    rec = recorder_factory(mqtt_broker.url, ["sortcam/cam-2/#"])
    twin = DeviceTwin("cam-2", tiny_card)
    twin.connect(mqtt_broker.url)
    items = list_folder(SAMPLES_DIR, tiny_card.classes)
    twin.run_folder(items[:2], rate=0)
    boot1 = twin.sequencer.boot
    for bad in (
        b"not json",
        b'{"cmd":"explode"}',
        b'{"cmd":"set"}',
        b'{"cmd":"set","threshold":7}',
        b'{"v":2,"cmd":"capture"}',
        b'{"cmd":"reboot","now":true}',
    ):
        rec.publish("sortcam/cam-2/cmd", bad)
    rec.publish("sortcam/cam-2/cmd", b'{"cmd":"set","threshold":0.25}')
    rec.publish("sortcam/cam-2/cmd", b'{"cmd":"reboot"}')
    deadline = time.monotonic() + 10
    while twin.stats.reboots == 0 and time.monotonic() < deadline:
        twin.handle_pending()
        time.sleep(0.05)
    assert twin.stats.rejected_cmds == 6
    assert twin.stats.reboots == 1 and twin.sequencer.boot != boot1 and twin.config.threshold == 0.25
    twin.run_folder(items[2:3], rate=0)
    twin.flush(10)
    msgs = [mc.validate_classification(p) for p in rec.wait_for("/classification", 3)]
    assert [(m["boot"], m["seq"]) for m in msgs] == [(boot1, 0), (boot1, 1), (twin.sequencer.boot, 0)]
    states = [json.loads(p) for p in rec.on("/status")]
    assert "offline" in [s["state"] for s in states]  # the reset drops the connection
    online = [s for s in states if s["state"] == "online"]
    assert online[-1]["rejected_cmds"] == 6 and online[-1]["threshold"] == 0.25
    twin.close()


def test_command_trigger_waits_for_capture(mqtt_broker: Any, recorder_factory: Any, tiny_card: ModelCard) -> None:
    rec = recorder_factory(mqtt_broker.url, ["sortcam/cam-3/classification"])
    twin = DeviceTwin("cam-3", tiny_card, dc.DecisionConfig(trigger="command"))
    twin.connect(mqtt_broker.url)
    import threading

    runner = threading.Thread(target=twin.run_folder, args=(list_folder(SAMPLES_DIR)[:2],), kwargs={"rate": 0})
    runner.start()
    time.sleep(0.5)
    assert twin.stats.items == 0  # nothing without a capture
    rec.publish("sortcam/cam-3/cmd", b'{"cmd":"capture"}')
    assert len(rec.wait_for("/classification", 1)) == 1
    rec.publish("sortcam/cam-3/cmd", b'{"cmd":"capture"}')
    runner.join(20)
    assert not runner.is_alive() and twin.stats.items == 2
    twin.close()


def test_gpio_trigger_reports_each_item(tiny_card: ModelCard) -> None:
    twin = DeviceTwin("cam-4", tiny_card, dc.DecisionConfig(trigger="gpio"))
    assert twin.run_folder(list_folder(SAMPLES_DIR)[:3], rate=0) == 3
    assert twin.stats.items == 3  # no broker: still decided, published nowhere


def test_item_too_close_to_the_belt_is_counted_not_dropped_silently(tiny_card: ModelCard) -> None:
    twin = DeviceTwin("cam-5", tiny_card)
    from sortcam.sim.twin import BELT_RGB

    ghost = belt_frame(120, 160)
    ghost[:] = [min(255, c + 5) for c in BELT_RGB]
    assert twin.play_item(ghost, "ghost.png", "trash") is None
    assert twin.stats.undetected == 1 and twin.stats.undetected_sources == ["ghost.png"]


def test_last_will_fires_when_the_twin_process_dies(
    mqtt_broker: Any, recorder_factory: Any, tiny_card: ModelCard
) -> None:
    rec = recorder_factory(mqtt_broker.url, ["sortcam/cam-kill/#"])
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sortcam.cli",
            "sim",
            "camera",
            "--source",
            str(SAMPLES_DIR),
            "--broker",
            mqtt_broker.url,
            "--device",
            "cam-kill",
            "--card",
            str(tiny_card.path),
            "--rate",
            "5",
            "--loop",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert len(rec.wait_for("/classification", 2, timeout_s=30)) >= 2
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 40  # keepalive 15 s x 1.5 at worst; a killed socket is seen at once
        while time.monotonic() < deadline:
            states = [json.loads(p)["state"] for p in rec.on("/status")]
            if states and states[-1] == "offline":
                break
            time.sleep(0.1)
        assert states[0] == "online" and states[-1] == "offline", (states, proc.stdout.read() if proc.stdout else "")
        assert mc.validate_status(rec.on("/status")[-1], "cam-kill") == json.loads(mc.offline_status("cam-kill"))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_twin_runs_on_the_embedded_amqtt_broker(recorder_factory: Any, tiny_card: ModelCard) -> None:
    with EmbeddedBroker() as broker:
        rec = recorder_factory(broker.url, ["sortcam/#"])
        twin = DeviceTwin("cam-a", tiny_card)
        twin.connect(broker.url)
        twin.run_folder(list_folder(SAMPLES_DIR)[:2], rate=0)
        twin.flush(10)
        assert len(rec.wait_for("/classification", 2)) == 2
        twin.close()
        rec.close()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--source", "/nonexistent/dir"], "source not found"),
        (["--source", "webcam:x"], "bad webcam source"),
        (["--source", str(SAMPLES_DIR), "--items", "0"], "--items"),
        (["--source", str(SAMPLES_DIR), "--threshold", "3"], "threshold"),
        (["--source", str(SAMPLES_DIR), "--device", "bad id!"], "device id"),
        (["--source", str(SAMPLES_DIR), "--broker", "mqtt://127.0.0.1:1"], "broker"),
        (["--source", str(SAMPLES_DIR), "--card", "/nonexistent/card.json"], "model card not found"),
    ],
)
def test_camera_bad_input_is_one_line(
    argv: list[str], needle: str, tiny_card: ModelCard, capsys: pytest.CaptureFixture[str]
) -> None:
    base = {"--broker": "mqtt://127.0.0.1:1", "--device": "cam-x", "--card": str(tiny_card.path)}
    for i in range(0, len(argv), 2):
        base[argv[i]] = argv[i + 1]
    args = ["sim", "camera"] + [t for kv in base.items() for t in kv]
    assert main(args) != 0
    one_line_error(capsys, needle)


def test_video_without_opencv_is_one_line(
    tmp_path: Path, tiny_card: ModelCard, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    video = tmp_path / "belt.mp4"
    video.write_bytes(b"\x00" * 64)
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 -> ImportError, as without the extra
    rc = main(
        [
            "sim",
            "camera",
            "--source",
            str(video),
            "--broker",
            "mqtt://127.0.0.1:1",
            "--device",
            "c",
            "--card",
            str(tiny_card.path),
        ]
    )
    assert rc != 0
    one_line_error(capsys, "sortcam[video]")


def test_missing_webcam_is_one_line(tiny_card: ModelCard, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("cv2")
    rc = main(
        [
            "sim",
            "camera",
            "--source",
            "webcam:97",
            "--broker",
            "mqtt://127.0.0.1:1",
            "--device",
            "c",
            "--card",
            str(tiny_card.path),
        ]
    )
    assert rc != 0
    one_line_error(capsys, "camera webcam:97")


def test_video_source_finds_items_by_presence(tmp_path: Path, tiny_card: ModelCard) -> None:
    cv2 = pytest.importorskip("cv2")
    from sortcam.preprocess import fit_resize, load_image
    from sortcam.sim.sources import VideoFrames

    path = tmp_path / "belt.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (160, 120))
    if not writer.isOpened():
        pytest.skip("OpenCV cannot write MJPG here")
    belt = belt_frame(120, 160)
    photos = [fit_resize(load_image(i.path), 120, 160, "stretch") for i in list_folder(SAMPLES_DIR)[:3]]
    for photo in photos:  # belt, item for 12 frames, belt ...
        for frame in [belt] * 4 + [photo] * 12:
            writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
    for _ in range(4):
        writer.write(np.ascontiguousarray(belt[:, :, ::-1]))
    writer.release()
    frames = VideoFrames(str(path))
    twin = DeviceTwin("cam-v", tiny_card)
    try:
        n = twin.run_video(frames)
    finally:
        frames.close()
    assert n == 3 * 16 + 4
    assert twin.stats.items == 3  # one per item, none twice while it stays in view
