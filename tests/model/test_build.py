"""`sortcam build` end to end on the tiny generated data set: the shipped recipe (two teachers,
consistent distillation, then the refinement with the full-size teacher), killed mid-refinement and
run again (it keeps what finished and continues), and the one-line refusals with nothing written
into the firmware folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_errors import one_line_error
from tinydata import make_dataset, tiny_backbone

from sortcam.card import load_card
from sortcam.cli import main


def _build_args(data: Path, out: Path, fw: Path, *extra: str) -> list[str]:
    return ["build", str(data), "--out", str(out), "--firmware-dir", str(fw), "--size", "32", *extra]


def _wide_weights(path: Path) -> Path:
    """Random MobileNetV2 1.0 backbone weights, the source of the shipped recipe's weight selection."""
    import keras

    keras.applications.MobileNetV2(alpha=1.0, weights=None, include_top=False, input_shape=(32, 32, 3)).save_weights(
        path
    )
    return path


def test_build_runs_end_to_end_and_continues_after_a_kill(tiny_dataset: Path, tmp_path: Path) -> None:
    bb = tiny_backbone(tmp_path / "bb.keras")
    wide = _wide_weights(tmp_path / "wide.weights.h5")
    out, fw = tmp_path / "build", tmp_path / "fw"
    args = _build_args(tiny_dataset, out, fw, "--recipe", "shipped", "--teacher-backbone", str(bb), "--epochs", "3",
                       "--teacher-epochs", "1", "--min-per-class", "5", "--init-select", str(wide),
                       "--refine-epochs", "2", "--refine-teacher-size", "64",
                       "--refine-teacher-epochs", "2")  # fmt: skip
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    log = open(tmp_path / "first.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "sortcam.cli", *args], stdout=log, stderr=subprocess.STDOUT, env=env)
    state = out / "refine" / "resume" / "state.json"
    deadline = time.time() + 600
    while not state.is_file() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    log.close()
    assert state.is_file(), (tmp_path / "first.log").read_text()[-3000:]
    assert f"weight selection: 260 tensors from {wide}" in (tmp_path / "first.log").read_text()
    stopped_at = json.loads(state.read_text())["epoch"]
    assert stopped_at < 2, "the first run was not interrupted mid-refinement"
    assert not fw.exists()  # nothing exported before the model passed every stage

    second = subprocess.run([sys.executable, "-m", "sortcam.cli", *args], capture_output=True, text=True, env=env,
                            timeout=900)  # fmt: skip
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "check: done earlier, skipped" in second.stdout and "teacher: done earlier, skipped" in second.stdout
    assert f"{out / 'student'} finished earlier (3 epochs), kept" in second.stdout
    assert f"continuing {out / 'refine'} after epoch {stopped_at}" in second.stdout
    assert "== sortcam build summary ==" in second.stdout and "(95% interval)" in second.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["recipe"] == "shipped" and 0.0 <= summary["int8_accuracy"] <= 1.0
    assert summary["flash_bytes"] > 0 and summary["latency_ms_estimate"] > 0
    assert Path(summary["report"]).is_file()
    assert sorted(p.name for p in fw.iterdir()) == ["model_data.cc", "model_data.h", "model_ops.h", "model_settings.h"]
    hist = json.loads((out / "student" / "history.json").read_text())
    assert [h["epoch"] for h in hist] == [1, 2, 3] and {h["run"] for h in hist} == {1}
    hist = json.loads((out / "refine" / "history.json").read_text())
    assert [h["epoch"] for h in hist] == [1, 2] and hist[-1]["run"] == 2  # one curve across the resume
    refine = json.loads((out / "refine" / "summary.json").read_text())
    assert refine["teacher_input"] == 64 and refine["teacher"] == str(out / "teacher_full" / "teacher.keras")
    assert json.loads((out / "refine" / "train_config.json").read_text())["bn_stats"] == "train"  # the measured choice
    # Each teacher trained its own epochs: --teacher-epochs the first, --refine-teacher-epochs the full-size one.
    assert json.loads((out / "teacher" / "teacher.json").read_text())["config"]["epochs"] == 1
    full = json.loads((out / "teacher_full" / "teacher.json").read_text())["config"]
    assert (full["epochs"], full["size"], full["via"]) == (2, 64, 0)
    assert json.loads((out / "refine" / "train_config.json").read_text())["init"] == str(out / "student/model.keras")
    assert json.loads((out / "build.json").read_text())["stages"]["train"]["model"] == str(out / "refine/model.keras")
    assert json.loads((out / "build.json").read_text())["stages"]["quantize"]["bias_correct"] is True
    assert load_card(out / "model.tflite").extra["bias_correction"]["layers_found"] == 53
    # A third run has nothing left to do.
    third = subprocess.run([sys.executable, "-m", "sortcam.cli", *args], capture_output=True, text=True, env=env,
                           timeout=600)  # fmt: skip
    assert third.returncode == 0 and "export: done earlier, skipped" in third.stdout


@pytest.mark.parametrize(
    ("flag", "value", "needle"),
    [
        ("--refine-teacher-size", "16", "--refine-teacher-size 16 outside 32..512"),
        ("--refine-teacher-epochs", "0", "--refine-teacher-epochs must be >= 1"),
        ("--teacher-epochs", "0", "--teacher-epochs and --refine-teacher-epochs must be >= 1"),
    ],
)
def test_build_refuses_a_bad_teacher_setting_before_training(
    tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, needle: str
) -> None:
    out = tmp_path / "b"
    args = _build_args(tiny_dataset, out, tmp_path / "fw", "--recipe", "shipped", "--min-per-class", "5", flag, value)
    assert main(args) == 2  # a usage error
    one_line_error(capsys, needle)
    assert not out.exists() and not (tmp_path / "fw").exists()  # refused before any stage ran


def test_build_refuses_too_few_photos(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_dataset(tmp_path / "d", per_class=6)
    assert main(_build_args(data, tmp_path / "b", tmp_path / "fw", "--recipe", "quick", "--weights", "none")) == 1
    one_line_error(capsys, "too few train photos", "need 10 per class")
    assert not (tmp_path / "fw").exists()


def test_build_refuses_a_class_missing_from_val(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_dataset(tmp_path / "d", per_class=16, splits=True)
    for p in (data / "val" / "red").iterdir():
        p.unlink()
    args = _build_args(data, tmp_path / "b", tmp_path / "fw", "--recipe", "quick", "--weights", "none")
    assert main([*args, "--min-per-class", "5"]) == 1
    one_line_error(capsys, "missing from the val split", "red")


def test_build_refuses_a_model_too_big_for_the_board(
    tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fw = tmp_path / "fw"
    fw.mkdir()
    (fw / "model_data.cc").write_text("// the board's current model\n")
    args = _build_args(tiny_dataset, tmp_path / "b", fw, "--recipe", "quick", "--weights", "none", "--alpha", "1.0",
                       "--epochs", "1", "--min-per-class", "5")  # fmt: skip
    assert main(args) == 1
    # Quantizing shows its progress on stderr; after it comes the one error line and nothing else.
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if not ln.startswith("int8 (TFLM):")]
    assert len(err) == 1 and err[0].startswith("sortcam: error: "), err
    line = err[0]
    for needle in ("does not fit esp32cam", "flash", "B over 1,000,000 B", "would fit"):
        assert needle in line, line
    assert "--alpha 0.35" in line or "--alpha 0.5" in line
    assert (fw / "model_data.cc").read_text() == "// the board's current model\n"
    assert sorted(p.name for p in fw.iterdir()) == ["model_data.cc"]


def test_build_refuses_another_build_in_the_same_folder(
    tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "b"
    out.mkdir()
    (out / "build.json").write_text(json.dumps({"build": {"recipe": "quick"}, "stages": {}}))
    assert main(_build_args(tiny_dataset, out, tmp_path / "fw", "--recipe", "shipped")) == 2
    one_line_error(capsys, "holds another build")
