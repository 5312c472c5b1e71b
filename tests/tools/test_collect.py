"""``sortcam collect``: frames from the twin through a real mosquitto, or from a video, into a folder
the console's labelling queue opens; bounded rate and size, nothing overwritten, a full disk is one line."""

from __future__ import annotations

import errno
import io
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_errors import one_line_error

from sortcam import mqtt_contract as mc
from sortcam.cli import main
from sortcam.errors import ContractError, DataError
from sortcam.frames import encode_jpeg
from sortcam.sim.sources import SAMPLES_DIR, list_folder
from sortcam.sim.twin import DeviceTwin
from sortcam.tools.collect import FrameFolder


def jpeg_of(width: int = 64, height: int = 48) -> bytes:
    frame = np.zeros((height, width, 3), np.uint8)
    frame[:, : width // 2] = (200, 30, 30)
    return encode_jpeg(frame, 1600, mc.SAMPLE_JPEG_MAX)[0]


# --- the contract --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ('{"cmd":"set","collect_every_ms":1999,"collect_for_s":60}', "collect_every_ms"),
        ('{"cmd":"set","collect_every_ms":600001,"collect_for_s":60}', "collect_every_ms"),
        ('{"cmd":"set","collect_every_ms":2000,"collect_for_s":3601}', "collect_for_s"),
        ('{"cmd":"set","collect_every_ms":2000}', "needs 'collect_for_s'"),
        ('{"cmd":"set","collect_for_s":true}', "collect_for_s"),
        ('{"cmd":"set","collect_for_s":60,"collect_for_s":0}', "twice"),
    ],
)
def test_collect_commands_out_of_bounds_are_refused(payload: str, why: str) -> None:
    with pytest.raises(ContractError, match=why):
        mc.validate_cmd(payload)


def test_collect_commands_start_renew_and_stop() -> None:
    assert mc.validate_cmd(mc.encode_collect_cmd(2000, 60)) == {
        "v": 1,
        "cmd": "set",
        "collect_every_ms": 2000,
        "collect_for_s": 60,
    }
    assert mc.validate_cmd(mc.encode_collect_cmd(2000, 0)) == {"v": 1, "cmd": "set", "collect_for_s": 0}
    frame = mc.validate_sample(mc.encode_sample(device="cam1", boot="b00t", seq=3, jpeg=jpeg_of(), width=64, height=48))
    item = mc.validate_sample(
        mc.encode_sample(
            device="cam1", boot="b00t", seq=4, jpeg=jpeg_of(), label="paper", confidence=0.3, width=64, height=48
        )
    )
    assert mc.is_collected_frame(frame) and not mc.is_collected_frame(item)


def test_a_frame_is_scaled_and_compressed_into_one_sample_message() -> None:
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (1200, 2400, 3), dtype=np.uint8)  # noise: the worst case for JPEG
    jpeg, width, height = encode_jpeg(noisy, mc.COLLECT_MAX_SIDE, mc.SAMPLE_JPEG_MAX)
    assert max(width, height) <= mc.COLLECT_MAX_SIDE and width == 2 * height
    assert len(mc.encode_sample(device="cam1", boot="b", seq=1, jpeg=jpeg, width=width, height=height)) <= (
        mc.SAMPLE_MAX_PAYLOAD
    )


# --- the folder ----------------------------------------------------------------------------------


def test_the_folder_never_overwrites_and_opens_in_the_labelling_queue(tmp_path: Path) -> None:
    folder = FrameFolder(tmp_path / "photos")
    first, other = jpeg_of(64, 48), jpeg_of(32, 24)
    path = folder.add("cam1", "b00t0001", 7, first, 64, 48)
    assert path == tmp_path / "photos" / "samples" / "cam1" / "b00t0001" / "7.jpg"
    assert folder.add("cam1", "b00t0001", 7, other, 32, 24) is None  # a redelivery, or the same name again
    assert path.read_bytes() == first and folder.stats.frames == 1 and folder.stats.duplicates == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["7.jpg"]  # no temp file left behind
    with pytest.raises(ContractError, match="1600"):
        folder.add("cam1", "b00t0001", 8, first, 1601, 48)
    with pytest.raises(ContractError, match="not a JPEG"):
        folder.add("cam1", "b00t0001", 8, b"\x89PNG" + first, 64, 48)
    with pytest.raises(ContractError, match="device id"):
        folder.add("../cam1", "b00t0001", 8, first, 64, 48)
    queue = folder.store.queue()
    assert [(q["device"], q["boot"], q["seq"], q["sample"]) for q in queue] == [
        ("cam1", "b00t0001", 7, "samples/cam1/b00t0001/7.jpg")
    ]
    folder.close()


def test_a_full_disk_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match="is full: .* MiB free"):
        FrameFolder(tmp_path / "photos", min_free_bytes=1 << 62)
    folder = FrameFolder(tmp_path / "photos")

    def no_space(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("sortcam.tools.collect.os.link", no_space)
    with pytest.raises(DataError, match=r"is full: cannot write .*7\.jpg \(0 frames written\)"):
        folder.add("cam1", "b00t0001", 7, jpeg_of(), 64, 48)
    assert not any((tmp_path / "photos" / "samples").rglob("*.jpg")) and not any(
        (tmp_path / "photos" / "samples").rglob("*.tmp")
    )
    folder.close()


def test_collect_on_a_full_disk_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 << 30, (10 << 30) - (5 << 20), 5 << 20))
    assert main(["collect", "--broker", "mqtt://127.0.0.1:1", "--device", "cam1", "--out", str(tmp_path / "o")]) == 1
    one_line_error(capsys, "is full: 5 MiB free, collect needs 64 MiB")


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["--out", "o"], ["needs --broker URL and --device ID, or --source"]),
        (["--out", "o", "--broker", "mqtt://h:1", "--device", "c", "--source", "webcam:0"], ["either --source"]),
        (["--out", "o", "--broker", "mqtt://h:1", "--device", "c", "--every", "1"], ["--every 1", "2..600"]),
        (["--out", "o", "--broker", "mqtt://h:1", "--device", "c", "--every", "601"], ["--every 601"]),
        (["--out", "o", "--broker", "mqtt://h:1", "--device", "c", "--minutes", "0"], ["--minutes 0"]),
        (["--out", "o", "--source", "webcam:x"], ["bad webcam source"]),
        (["--out", "o", "--source", "photos.txt"], ["source not found"]),
    ],
)
def test_bad_collect_arguments_get_one_line(
    argv: list[str],
    needles: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["collect", *argv]) in (1, 2)
    one_line_error(capsys, *needles)


# --- through a real broker -----------------------------------------------------------------------


def test_collect_writes_frames_from_the_twin_through_a_real_broker(mqtt_broker: Any, tmp_path: Path) -> None:
    twin = DeviceTwin("cam1")
    twin.connect(mqtt_broker.url)
    items = list_folder(SAMPLES_DIR, twin.card.classes)
    player = threading.Thread(target=twin.run_folder, args=(items,), kwargs={"rate": 4.0, "loop": True}, daemon=True)
    player.start()
    out = tmp_path / "belt"
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "sortcam.cli",
                "collect",
                "--broker",
                mqtt_broker.url,
                "--device",
                "cam1",
                "--out",
                str(out),
                "--every",
                "2",
                "--minutes",
                "0.09",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        deadline = time.monotonic() + 10
        while twin._collect_until and time.monotonic() < deadline:  # the collector's stop command, at its end
            time.sleep(0.05)
        assert twin._collect_until == 0.0
    finally:
        twin.stop()
        player.join(10)
        twin.close()
    frames = sorted((out / "samples" / "cam1" / twin.sequencer.boot).glob("*.jpg"), key=lambda p: int(p.stem))
    assert 2 <= len(frames) <= 4, (frames, done.stdout)  # 5.4 s at one per 2 s: at 0, 2, 4 s
    assert twin.stats.collected == len(frames)
    from PIL import Image

    for path in frames:  # full frames (the 256x192 sample photos), not the model's 84x84 input
        with Image.open(io.BytesIO(path.read_bytes())) as img:
            assert img.format == "JPEG" and img.size == (256, 192)
    items_seqs = {seq for (_, seq) in twin.records}
    assert not items_seqs & {int(p.stem) for p in frames}, "a frame and an item share a seq"
    assert f"{len(frames)} frames" in done.stdout and f"sortcam console --data {out}" in done.stdout
    from sortcam.console.store import Store

    store = Store(out / "console.db")
    assert len(store.queue()) == len(frames)  # the console's labelling queue holds every frame
    store.close()


def test_the_console_opens_a_collected_folder(tmp_path: Path) -> None:
    pytest.importorskip("flask")
    from sortcam.console.app import ConsoleConfig, create_app

    folder = FrameFolder(tmp_path / "belt")
    folder.add("cam1", "b00t0001", 3, jpeg_of(), 64, 48)
    folder.close()
    app = create_app(ConsoleConfig(broker_url=None, data_dir=tmp_path / "belt", token="t0ken"))
    client = app.test_client()
    queue = client.get("/api/queue").get_json()
    assert [q["key"] for q in queue["items"]] == ["cam1/b00t0001/3"]
    assert client.get("/samples/cam1/b00t0001/3.jpg").status_code == 200
    labelled = client.post(
        "/api/label",
        data=json.dumps({"device": "cam1", "boot": "b00t0001", "seq": 3, "label": "glass"}),
        content_type="application/json",
        headers={"Authorization": "Bearer t0ken"},
    )
    assert labelled.status_code == 200, labelled.get_json()
    assert (tmp_path / "belt" / "labelled" / "glass" / "cam1_b00t0001_3.jpg").is_file()


def test_collect_from_a_video_file(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    video = tmp_path / "belt.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (160, 120))
    for n in range(45):  # 4.5 s of video at 10 frames/s
        frame = np.full((120, 160, 3), 40, np.uint8)
        frame[:, : 3 * n % 160] = 220
        writer.write(frame)
    writer.release()
    out = tmp_path / "belt"
    assert main(["collect", "--source", str(video), "--out", str(out), "--every", "2"]) == 0
    frames = sorted((out / "samples" / "video").rglob("*.jpg"))
    assert [p.name for p in frames] == ["0.jpg", "1.jpg", "2.jpg"]  # video time 0, 2 and 4 s
    assert main(["collect", "--source", str(video), "--out", str(out), "--every", "2", "--minutes", "0.05"]) == 0
    boots = sorted(p.name for p in (out / "samples" / "video").iterdir())
    assert len(boots) == 2 and len(list((out / "samples" / "video").rglob("*.jpg"))) == 5  # a second run adds
