"""A real install: build the wheel, install it (not editable, no extras) into a fresh venv, run it elsewhere.

Issue 16: ``pip install .`` installs ``sortcam/model/sortcam_trashnet.json``, but the card
was looked up in ``model/`` beside the ``sortcam`` package, so ``sortcam demo`` and
``sortcam host`` failed with "model card not found". Issue 14: a conveyor host's
``pip install sortcam`` pulls neither the demo's broker (amqtt) nor Flask; that lean
install runs the host controller against a real mosquitto and a pty sorter, and the demo
on mosquitto. The runtime dependencies come from the package index through pip's cache,
so a second run is quicker than the first. One install serves every test here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sortcam.mosquitto import find_mosquitto

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "host"))

from cli_errors import PREFIX  # noqa: E402
from host_helpers import ControllerProcess, Mqtt, ScriptedSorter, classification, wait_until, write_config  # noqa: E402

PACKAGE_FOLDERS = ("sortcam", "model", "host", "sim", "tools", "console")
"""The distribution's sources (pyproject.toml's package-dir), copied so the build never writes into the checkout."""


def _run(args: list[str], cwd: Path, timeout_s: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` folder of a fresh venv holding sortcam from its wheel."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copyfile(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for folder in PACKAGE_FOLDERS:
        shutil.copytree(REPO / folder, src / folder, ignore=ignore)
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work / "dist"), str(src)], work, 300
    )
    assert built.returncode == 0, built.stderr[-3000:]
    wheels = list((work / "dist").glob("sortcam-*.whl"))
    assert len(wheels) == 1, wheels
    venv = work / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)], work, 120)
    assert made.returncode == 0, made.stderr[-3000:]
    bin_dir = venv / "bin"
    pip = _run([str(bin_dir / "python"), "-m", "pip", "install", "-q", str(wheels[0])], work, 600)
    assert pip.returncode == 0, pip.stderr[-3000:]
    return bin_dir


def test_the_wheel_ships_the_model_and_finds_it(installed: Path, tmp_path: Path) -> None:
    probe = _run(
        [
            str(installed / "python"),
            "-c",
            "import sortcam, sortcam.card as c; print(sortcam.__file__); print(c.MODEL_DIR); "
            "card = c.load_card(); card.read_model(); print(card.model_id)",
        ],
        tmp_path,
        120,
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    package, model_dir, model_id = probe.stdout.split()
    venv = installed.parent.resolve()
    assert Path(package).resolve().is_relative_to(venv), f"sortcam was imported from {package}, not the wheel"
    assert Path(model_dir).resolve() == Path(package).resolve().parent / "model"
    assert len(model_id) == 12


def test_the_lean_install_has_no_demo_broker_or_flask(installed: Path, tmp_path: Path) -> None:
    probe = _run(
        [
            str(installed / "python"),
            "-c",
            "import importlib.util as u; print(*(bool(u.find_spec(m)) for m in ('amqtt', 'flask', 'paho')))",
        ],
        tmp_path,
        60,
    )
    assert probe.stdout.split() == ["False", "False", "True"], probe.stdout + probe.stderr
    helped = _run([str(installed / "sortcam"), "host", "--help"], tmp_path, 60)
    assert helped.returncode == 0 and "--broker" in helped.stdout, helped.stderr[-2000:]
    for argv, extra in (
        (["console", "--broker", "none", "--port", "0"], "sortcam[console]"),
        (["demo", "--items", "1", "--broker-kind", "amqtt"], "sortcam[demo]"),
    ):
        refused = _run([str(installed / "sortcam"), *argv], tmp_path, 120)
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 1 and len(lines) == 1, refused.stderr[-2000:]
        assert lines[0].startswith(PREFIX) and extra in lines[0], lines


def test_the_lean_install_runs_the_controller(installed: Path, mqtt_broker, pty_pair, tmp_path: Path) -> None:  # noqa: ANN001
    """The installed ``sortcam host`` (not this checkout's) routes an item to its gate, exactly once."""
    sorter = ScriptedSorter(pty_pair.master)
    client = Mqtt(mqtt_broker.url)
    ctl = ControllerProcess(tmp_path, mqtt_broker.url, str(pty_pair.path), write_config(tmp_path / "host.json"))
    ctl.args[:3] = [str(installed / "sortcam")]  # the fresh venv's console script instead of this interpreter
    try:
        ctl.start()
        client.publish("sortcam/cam1/classification", classification(seq=0, label="metal")).wait_for_publish(5)
        client.publish("sortcam/cam1/classification", classification(seq=0, label="metal")).wait_for_publish(5)
        acked = wait_until(lambda: client.decisions("acked"), 20, "an acked decision")
        assert acked[0]["bin"] == "metal" and acked[0]["gate"] == 3
        assert sorter.moves == {acked[0]["sort_id"]: 3}
        assert ctl.stop() == 0
    finally:
        ctl.kill()
        sorter.stop()
        client.close()


def test_the_installed_demo_runs_from_a_folder_outside_the_repository(installed: Path, tmp_path: Path) -> None:
    """Without the demo extra the demo runs on a mosquitto child process; scripts/demo.sh installs amqtt."""
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert not outside.resolve().is_relative_to(REPO)
    demo = _run([str(installed / "sortcam"), "demo", "--items", "3", "--broker-kind", "mosquitto"], outside, 300)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-3000:]
    assert "model card not found" not in demo.stderr
    assert "items 3  published 3  sorted 3  lost 0  duplicates 0" in demo.stdout, demo.stdout[-2000:]
    head = demo.stdout.splitlines()[0]  # the demo played the wheel's own sample images
    assert "3 items at 2/s from " in head and "/site-packages/sortcam/sim/samples" in head, head
