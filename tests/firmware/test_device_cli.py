"""``sortcam flash`` / ``sortcam monitor``: the PlatformIO wrappers (tools/device_cli.py).

PlatformIO itself cannot build ESP32 firmware on these machines (no toolchain download),
so these tests put a recording ``pio`` script on PATH and check what the verbs run, and
that a missing PlatformIO or missing model sources give one-line errors.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from sortcam import cli
from sortcam.tools import device_cli


def fake_pio(bin_dir: Path, log: Path, rc: int = 0) -> None:
    script = bin_dir / "pio"
    script.write_text(f'#!/bin/sh\necho "$PWD|$*" >> {log}\nexit {rc}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "firmware" / "src").mkdir(parents=True)
    (root / "platformio.ini").write_text("[platformio]\n")
    for name in device_cli.MODEL_SOURCES:
        (root / "firmware" / "src" / name).write_text("// generated\n")
    return root


@pytest.fixture()
def pio_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "pio.log"
    fake_pio(bin_dir, log)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return log


def test_flash_runs_pio_upload_in_the_project(project: Path, pio_on_path: Path) -> None:
    rc = cli.main(["flash", "--port", "/dev/ttyUSB0", "--project-dir", str(project)])
    assert rc == 0
    cwd, args = pio_on_path.read_text().strip().split("|")
    assert Path(cwd) == project
    assert args == "run -e esp32cam -t upload --upload-port /dev/ttyUSB0"


def test_monitor_and_sorter_build(project: Path, pio_on_path: Path) -> None:
    assert cli.main(["monitor", "--baud", "9600", "--project-dir", str(project)]) == 0
    assert cli.main(["flash", "--env", "sorter", "--no-upload", "--project-dir", str(project)]) == 0
    lines = [line.split("|")[1] for line in pio_on_path.read_text().splitlines()]
    assert lines == ["device monitor -e esp32cam -b 9600", "run -e sorter"]


def test_esp32s3_camera_env_with_short_flag(project: Path, pio_on_path: Path) -> None:
    assert cli.main(["flash", "-e", "esp32s3cam", "--no-upload", "--project-dir", str(project)]) == 0
    assert cli.main(["monitor", "-e", "esp32s3cam", "--project-dir", str(project)]) == 0
    lines = [line.split("|")[1] for line in pio_on_path.read_text().splitlines()]
    assert lines == ["run -e esp32s3cam", "device monitor -e esp32s3cam -b 115200"]


def test_s3_build_needs_the_model_sources_too(project: Path, pio_on_path: Path) -> None:
    (project / "firmware" / "src" / "model_data.cc").unlink()
    assert cli.main(["flash", "-e", "esp32s3cam", "--project-dir", str(project)]) == 1
    assert not pio_on_path.exists()


def test_missing_model_sources_are_named(project: Path, pio_on_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "firmware" / "src" / "model_ops.h").unlink()
    assert cli.main(["flash", "--project-dir", str(project)]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("sortcam: error: firmware/src lacks model_ops.h") and "sortcam export" in err
    assert not pio_on_path.exists()


def test_pio_failure_is_one_line(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bin_dir = tmp_path / "failbin"
    bin_dir.mkdir()
    fake_pio(bin_dir, tmp_path / "fail.log", rc=3)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert cli.main(["flash", "--project-dir", str(project)]) == 1
    # pio's own output comes first (that is the point of showing it); sortcam's reason is the last line
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("sortcam: error: ") and "failed with exit code 3" in last, last


def test_without_platformio_says_how_to_install(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setitem(sys.modules, "platformio", None)  # makes `import platformio` fail
    assert cli.main(["monitor", "--project-dir", str(project)]) == 1
    assert "pip install 'sortcam[firmware]'" in capsys.readouterr().err


def test_no_platformio_ini_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["monitor", "--project-dir", str(tmp_path)]) == 2
    assert "no platformio.ini" in capsys.readouterr().err


def test_envs_are_platformio_ini_envs() -> None:
    import re

    text = (Path(__file__).resolve().parents[2] / "platformio.ini").read_text()
    assert set(re.findall(r"^\[env:(\w+)\]", text, re.M)) == set(device_cli.ENVS)
    for env in device_cli.CAMERA_ENVS:
        assert f"[env:{env}]" in text


def test_repository_platformio_ini_has_both_envs() -> None:
    text = (device_cli.REPO / "platformio.ini").read_text()
    for section in (
        "[env:esp32cam]",
        "[env:sorter]",
        "board = esp32cam",
        "framework = espidf",
        "src_dir = firmware/src",
        "lib_dir = firmware/lib",
    ):
        assert section in text
    manifest = (device_cli.REPO / "firmware" / "src" / "idf_component.yml").read_text()
    assert 'espressif/esp-tflite-micro: "1.3.8"' in manifest and 'espressif/esp32-camera: "2.1.5"' in manifest
