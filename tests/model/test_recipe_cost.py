"""The card's training cost: a warm-started run (--init) counts the run it started from."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sortcam.model.quantize import _recipe_facts


def _run(folder: Path, wall_s: float, teacher: Path, init: Path | None = None) -> Path:
    folder.mkdir(parents=True)
    summary = {"teacher": str(teacher), "teacher_kind": "fine-tuned (consistent distillation)",
               "teacher_val_accuracy": 0.9, "train_time_total_s": wall_s, "epochs_done": 3}  # fmt: skip
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "train_config.json").write_text(json.dumps({"init": str(init) if init else None}))
    return folder / "model.keras"


def test_a_warm_started_run_adds_the_cost_of_its_init(tmp_path: Path) -> None:
    cores = os.cpu_count() or 1
    teacher = tmp_path / "t" / "teacher.keras"
    teacher.parent.mkdir()
    (teacher.parent / "teacher.json").write_text(json.dumps({"train_time_s": 360.0}))
    first = _run(tmp_path / "first", 3600.0, teacher)
    second = _run(tmp_path / "second", 1800.0, teacher, init=first)
    one = _recipe_facts(first)["training_cost"]
    assert one["cpu_hours"] == pytest.approx(round((3600 + 360) * cores / 3600, 2))
    assert "init_cpu_hours" not in one
    two = _recipe_facts(second)["training_cost"]
    assert two["this_run_cpu_hours"] == pytest.approx(round((1800 + 360) * cores / 3600, 2))
    assert two["init_cpu_hours"] == one["cpu_hours"]
    assert two["cpu_hours"] == pytest.approx(two["this_run_cpu_hours"] + one["cpu_hours"])
    # An init whose run left no summary adds nothing (and says nothing about it).
    third = _run(tmp_path / "third", 600.0, teacher, init=tmp_path / "gone" / "model.keras")
    assert "init_cpu_hours" not in _recipe_facts(third)["training_cost"]
