"""Retrain planning (no TensorFlow) and one real fine-tune job through the worker process."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from console_helpers import CLASSES, SAMPLES

from sortcam.console.retrain import RetrainSettings, plan_dataset, stage_dataset
from sortcam.errors import DataError


def make_folder(root: Path, per_class: int, prefix: str = "") -> Path:
    for c in CLASSES:
        d = root / c
        d.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(sorted((SAMPLES / c).glob("*.jpg"))[:per_class]):
            shutil.copyfile(f, d / f"{prefix}{i}_{f.name}")
    return root


def test_plan_oldnew_uses_old_val_and_merges_train(tmp_path: Path) -> None:
    labelled = make_folder(tmp_path / "labelled", 2, "new")
    old = tmp_path / "old"
    make_folder(old / "train", 3, "old")
    make_folder(old / "val", 1, "oldval")
    settings = RetrainSettings(old_data=old, min_per_class=4)
    plan = plan_dataset("oldnew", CLASSES, labelled, settings)
    assert plan.val_source.endswith("old/val")
    assert all(len(plan.train[c]) == 5 and len(plan.val[c]) == 1 for c in CLASSES)
    # from scratch on the labels alone: 2 per class is below the minimum of 4
    with pytest.raises(DataError, match="too few images per class"):
        plan_dataset("scratch", CLASSES, labelled, settings)
    stage_dataset(plan, tmp_path / "staged")
    staged = sorted(p.name for p in (tmp_path / "staged" / "train" / "glass").iterdir())
    assert len(staged) == 5 and all((tmp_path / "staged" / "train" / "glass" / n).is_symlink() for n in staged)


def test_plan_holds_out_labels_when_there_is_no_val(tmp_path: Path) -> None:
    labelled = make_folder(tmp_path / "labelled", 4)
    plan = plan_dataset("scratch", CLASSES, labelled, RetrainSettings(min_per_class=2))
    for c in CLASSES:
        assert plan.val[c] and not set(plan.val[c]) & set(plan.train[c])
        assert len(plan.val[c]) + len(plan.train[c]) == 4
    with pytest.raises(DataError, match="no validation images for: .*"):
        single = make_folder(tmp_path / "one", 1)
        plan_dataset("scratch", CLASSES, single, RetrainSettings(min_per_class=1))


@pytest.mark.slow
def test_finetune_job_runs_and_compares(console: Any) -> None:
    """A real fine-tune of the current model's float weights, quantized and scored in TFLM."""
    pytest.importorskip("tensorflow")
    make_folder(console.labels.root, 4)
    job = console.start_retrain("finetune")
    deadline = time.monotonic() + 400
    while job.state()["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
    st = job.state()
    assert st["status"] == "done", (st["result"], "\n".join(st["log"]))
    r = st["result"]
    assert r["mode"] == "finetune"
    assert r["metrics"]["candidate"]["images"] == r["metrics"]["current"]["images"] > 0
    assert set(r["metrics"]["candidate"]["recall"]) <= set(CLASSES)
    from sortcam.card import load_card

    cand = load_card(r["candidate_card"])
    assert cand.classes == CLASSES and cand.arena_bytes > 0 and cand.model_path.with_suffix(".keras").is_file()
