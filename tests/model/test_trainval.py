"""Fitting on train + val: scripts/merge_splits.py, and figures on photos a model trained on are marked."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tinydata import TinyModel, make_dataset

from sortcam.card import load_card
from sortcam.cli import main

ROOT = Path(__file__).resolve().parents[2]
MERGE = ROOT / "scripts" / "merge_splits.py"


def _merge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(MERGE), *args], capture_output=True, text=True, cwd=ROOT)


def test_merge_splits_links_every_photo_once_and_refuses_clashes(tmp_path: Path) -> None:
    src = make_dataset(tmp_path / "src", per_class=8, splits=True)
    dst = tmp_path / "merged"
    r = _merge(str(src), str(dst))
    assert r.returncode == 0, r.stderr
    photos = sorted(p for p in (dst / "train").rglob("*") if p.is_file())
    originals = sorted(p for s in ("train", "val") for p in (src / s).rglob("*") if p.is_file())
    assert len(photos) == len(originals) == 24 and not (dst / "val").exists()
    assert all(p.is_symlink() for p in photos)
    assert sorted(p.resolve() for p in photos) == sorted(p.resolve() for p in originals)
    manifest = json.loads((dst / "MERGED.json").read_text())
    assert manifest["splits"] == ["train", "val"] and manifest["photos"] == 24
    assert manifest["source_name"] == "src"
    # Again: the same merge is recognised, nothing rewritten.
    r = _merge(str(src), str(dst))
    assert r.returncode == 0 and "already" in r.stdout
    # A folder that holds something else is refused, untouched.
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    r = _merge(str(src), str(other))
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and "not this merge" in r.stderr
    assert sorted(p.name for p in other.iterdir()) == ["keep.txt"]
    # Two photos of one class with one name would silently lose one: refused before writing.
    shutil.copy(next((src / "train" / "red").iterdir()), src / "val" / "red")
    clash = tmp_path / "clash"
    r = _merge(str(src), str(clash))
    assert r.returncode != 0 and "would both be" in r.stderr and not clash.exists()
    r = _merge(str(src), str(tmp_path / "x"), "--splits", "train,nope")
    assert r.returncode != 0 and "nope" in r.stderr and not (tmp_path / "x").exists()


def test_evaluate_marks_the_photos_a_model_trained_on(tiny_model: TinyModel, tmp_path: Path) -> None:
    """The tiny model trained with --seed 1 on a folder without split folders: evaluation draws
    the split with that seed (the default seed's val would hold photos it trained on)."""
    for split, seen in (("train", True), ("val", False)):
        out = tmp_path / split
        args = ["evaluate", str(tiny_model.tflite), str(tiny_model.data), "--split", split, "--out", str(out)]
        assert main(args) == 0
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["seen_in_training"] == (metrics["images"] if seen else 0)
        assert ("not a held-out figure" in metrics["data"]) is seen


def test_a_train_val_fit_card_says_val_was_trained_on(
    tiny_model: TinyModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model whose training folder is a merge of train and val: quantize's figures on val, and a
    later evaluation where the merged folder is gone (a fresh clone), both say the photos were seen."""
    src = make_dataset(tmp_path / "photos", per_class=8, splits=True)
    merged = tmp_path / "photos_trainval"
    assert _merge(str(src), str(merged)).returncode == 0
    run = tmp_path / "run"
    shutil.copytree(tiny_model.run, run)
    cfg = json.loads((run / "train_config.json").read_text())
    cfg["data_dir"] = str(merged)
    (run / "train_config.json").write_text(json.dumps(cfg))
    # The merged folder has no val: the card gets no figures, and says why.
    bare = tmp_path / "bare.tflite"
    rc = main(["quantize", str(run / "model.keras"), str(merged), "--out", str(bare), "--representative", "20"])
    assert rc == 0 and "no val photos" in capsys.readouterr().out
    assert load_card(bare).metrics == {}
    out = tmp_path / "tv.tflite"
    rc = main(
        [
            "quantize",
            str(run / "model.keras"),
            str(merged),
            "--out",
            str(out),
            "--representative",
            "20",
            "--eval-data",
            str(src),
            "--recipe-card",
            str(tiny_model.card),
        ]
    )
    assert rc == 0
    card = load_card(out)
    assert card.extra["training"]["merged_from"]["splits"] == ["train", "val"]
    assert card.metrics["seen_in_training"] == card.metrics["int8"]["images"] == 6
    assert "not a held-out figure" in card.metrics["data"]
    recipe = card.extra["recipe_metrics"]
    assert recipe["int8"] == load_card(tiny_model.card).metrics["int8"] and recipe["model"]
    # The benchmark puts the budget against the recipe's held-out figure, not the trained-on one.
    bench = tmp_path / "bench"
    assert main(["bench", "model", "--card", str(out), "--runs", "1", "--out", str(bench)]) == 0
    md = (bench / "model.md").read_text()
    assert "the recipe fitted without val" in md and "| not held out |" in md
    assert json.loads((bench / "model.json").read_text())["recipe_metrics"]["model"] == recipe["model"]
    # A card whose figures were on trained photos is no recipe figure: refused, nothing written.
    again = tmp_path / "again.tflite"
    argv = ["quantize", str(run / "model.keras"), str(merged), "--out", str(again), "--recipe-card", str(out)]
    assert main(argv) == 2 and not again.exists()
    shutil.rmtree(merged)
    ev = tmp_path / "ev"
    assert main(["evaluate", str(out), str(src), "--out", str(ev)]) == 0
    assert json.loads((ev / "metrics.json").read_text())["seen_in_training"] == 6
    assert "not a measurement of unseen photos" in capsys.readouterr().out
